import Diagnostics
import Foundation
import SweepAnalysis
import SweepCore
import SweepStore
import Testing
import TrainingCore

#if canImport(FoundationXML)
import FoundationXML
#endif

/// Aggregation, scaling fits, figures and the report, on fixture sweeps whose answer is known.
@Suite struct AnalysisTests {
    /// A cell of n, d, width, seed whose support bound follows C (p/(n d))^(-1/2) times log-normal noise.
    func cell(n: Int, d: Int, width: Int, seed: Int, eps: Double, lip: Double, fit: Double = 1) -> CellResult {
        let parameters = CellParameters(n: n, d: d, width: width, seed: seed).resolved()
        let p = parameters.parameterCount
        let lawScale = (Double(n * d) / Double(p)).squareRoot()
        let metrics = CellMetrics(
            p: p,
            trainMSE: 1 - eps,
            noiseLevel: 1,
            eps: eps,
            fitFraction: fit,
            testMSE: 1.5,
            lipLower: lip * 1.05,
            lipUpper: lip * 4,
            lipSupportLower: lip,
            gradMean: lip / 2,
            lawScale: lawScale,
            lawRatio: eps > 0 ? lip / (eps * lawScale) : nil,
            steps: 100,
            stopReason: .targetReached,
            trainSeconds: 0.5,
            lipSeconds: 0.1,
            flops: 1e9,
            gflops: 2,
            scienceVersion: 1,
            initialisation: "test",
            host: "h",
            blas: "b"
        )
        return CellResult(parameters: parameters, metrics: metrics)
    }

    /// Rows following the law with constant 3 and 5% noise, plus rows below the noise level whose
    /// Lipschitz values would wreck the slope if they were included.
    func lawFixture() -> [CellResult] {
        var rng = SeededGenerator(seed: 11, stream: .probes)
        var rows: [CellResult] = []
        for (n, d) in [(256, 16), (1024, 16), (256, 64)] {
            for width in [64, 128, 256, 512, 1024, 2048] {
                for seed in 0..<3 {
                    let p = Double(width * (d + 2) + 1)
                    let lip = 3 * (p / Double(n * d)).squareRoot().reciprocal * (1 + 0.05 * rng.nextGaussian())
                    rows.append(cell(n: n, d: d, width: width, seed: seed, eps: 0.999, lip: lip))
                }
            }
            for width in [1, 2] {
                for seed in 0..<3 {
                    rows.append(cell(n: n, d: d, width: width, seed: seed, eps: 0.2, lip: 1000, fit: 0.6))
                }
            }
        }
        return rows
    }

    @Test func lawFixtureIsFittedToMinusOneHalf() throws {
        let analysis = ScalingAnalysis(results: lawFixture())
        #expect(analysis.fits.count == 4)  // three (n, d) series and all together
        for fit in analysis.fits {
            let line = try #require(fit.lipSupportLower)
            let half = try #require(line.slopeHalfWidth95)
            #expect(abs(line.slope + 0.5) <= half, "\(fit.series): \(line.slope) ± \(half)")
            #expect(half < 0.1)
            #expect(fit.cells == (fit.series == "all" ? 54 : 18))  // the eps = 0.2 rows are out
            #expect(fit.minWidth == 64 && fit.maxWidth == 2048)
            #expect(abs(try #require(fit.lawLineConstant) - 3) < 0.1)
            let verdict = ScalingAnalysis.verdict(fit)
            #expect(verdict.contains("consistent with the law") && verdict.contains("bounds the constant from below"))
            #expect(verdict.contains("the theorem's is 1 / (2⁹ √c)"), "the wording quotes the theorem's constant")
            #expect(!verdict.contains("violat") && !verdict.contains("follow") && !verdict.contains("shallower"))
        }
        // Networks smoother than eps·√(n d / p): law_ratio below 1 is said as such, not as a
        // contradiction, and no slope is read as the law.
        let smooth = lawFixture().map { row -> CellResult in
            var copy = row
            copy.metrics.lipSupportLower = copy.metrics.lipSupportLower.map { $0 / 6 }
            copy.metrics.lawRatio = copy.metrics.lawRatio.map { $0 / 6 }
            return copy
        }
        let below = try #require(ScalingAnalysis(results: smooth).fits.first { $0.series == "all" })
        #expect(below.lawRatioBelowOne == 54)
        let words = ScalingAnalysis.verdict(below)
        #expect(words.contains("54 of the 54 fitted cells have law_ratio < 1") && words.contains("does not contradict"))
        #expect(words.contains("the theorem's is 1 / (2⁹ √c)"))
        #expect(!words.contains("violat") && !words.contains("consistent"))
        // Interpolation starts at the first width whose mean fit_fraction reaches 0.99: width 64.
        let series = try #require(analysis.fits.first { $0.series == "n=256, d=16" })
        #expect(abs(try #require(series.interpolationThresholdPOverN) - Double(64 * 18 + 1) / 256) < 1e-12)
    }

    @Test func includingRowsAboveTheNoiseLevelWouldChangeTheSlope() throws {
        let everything = ScalingAnalysis(results: lawFixture(), epsFraction: 0.1)
        let slope = try #require(everything.fits.first { $0.series == "all" }?.lipSupportLower?.slope)
        #expect(slope < -0.8)
    }

    @Test func theNoiseLevelFilterIsRelativeAndTheFiguresUseTheSameCells() throws {
        // Teacher-like labels: noise level 0.01. Seeds 0 and 1 fit to eps 0.008 (counted), seed 2
        // only to 0.002 (below half the noise level: left out), with a wild Lipschitz value.
        func quiet(_ seed: Int, eps: Double, lip: Double) -> CellResult {
            var row = cell(n: 64, d: 8, width: 16, seed: seed, eps: eps, lip: lip)
            row.metrics.noiseLevel = 0.01
            return row
        }
        let rows = [quiet(0, eps: 0.008, lip: 10), quiet(1, eps: 0.008, lip: 12), quiet(2, eps: 0.002, lip: 1000)]
        let analysis = ScalingAnalysis(results: rows + [cell(n: 64, d: 8, width: 32, seed: 0, eps: 0.9, lip: 9)])
        #expect(analysis.excludedCells == 1 && analysis.configurationsWithExcludedSeeds == 1)
        let quietConfiguration = try #require(analysis.configurations.first { $0.width == 16 })
        #expect(quietConfiguration.seeds == 3 && quietConfiguration.counted == 2)
        #expect(abs(try #require(quietConfiguration.countedLipSupportLower?.mean) - 11) < 1e-12)
        let firstFit = try #require(analysis.fits.first)
        #expect(firstFit.cells == 3)
        // An absolute rule (eps >= 0.5) would drop every teacher cell; the relative rule drops one.
        #expect(ScalingAnalysis.counts(rows[0].metrics, epsFraction: 0.5))
        #expect(!ScalingAnalysis.counts(rows[2].metrics, epsFraction: 0.5))
    }

    @Test func configurationsAggregateSeeds() throws {
        let rows = [
            cell(n: 64, d: 8, width: 4, seed: 0, eps: 0.9, lip: 10),
            cell(n: 64, d: 8, width: 4, seed: 1, eps: 0.8, lip: 12),
            cell(n: 64, d: 8, width: 4, seed: 2, eps: 0.7, lip: 14),
            cell(n: 64, d: 8, width: 8, seed: 0, eps: 0.95, lip: 9),
        ]
        let analysis = ScalingAnalysis(results: rows)
        #expect(analysis.configurations.count == 2)
        let first = analysis.configurations[0]
        #expect(first.width == 4 && first.seeds == 3)
        #expect(abs(first.eps!.mean - 0.8) < 1e-12 && abs(first.eps!.standardDeviation - 0.1) < 1e-12)
        #expect(abs(first.eps!.halfWidth95! - 4.302652729749464 * 0.1 / 3.0.squareRoot()) < 1e-9)
        #expect(abs(first.pOverND - Double(4 * 10 + 1) / 512) < 1e-12)
        let markdown = try analysis.renderConfigurations(.markdown)
        #expect(markdown.contains("0.8 ± 0.24841"))
        let csv = try analysis.renderConfigurations(.csv)
        #expect(csv.split(separator: "\n").count == 3)
        let header = csv.split(separator: "\n")[0]
        #expect(header.hasPrefix("series,n,d,width,p,p_over_nd,seeds,eps_mean"))
    }

    @Test func figuresAreValidSVGShowingEveryConfiguration() throws {
        let analysis = ScalingAnalysis(results: lawFixture())
        let figures = analysis.figures()
        #expect(figures.map(\.name) == ["lipschitz", "eps", "law-ratio"])
        for (name, chart) in figures {
            let svg = chart.svg()
            let parser = XMLParser(data: Data(svg.utf8))
            #expect(parser.parse(), "\(name) is not well-formed XML: \(parser.parserError.map { "\($0)" } ?? "")")
            for series in ["n=256, d=16", "n=1024, d=16", "n=256, d=64"] {
                #expect(svg.contains(">\(series)</text>"), "\(name) lacks \(series)")
            }
        }
        // Every configuration is a point: 6 fitted widths x 3 series in (a); 8 widths x 3 in (b).
        let lipschitz = figures[0].chart.svg()
        #expect(lipschitz.components(separatedBy: "<circle cx").count - 1 == 18 + 3)  // points + legend markers
        // The law's bound with the fitted cells' eps (0.999 here), not a line fitted to the data
        // (whose constant would be 3). Text in SVG is escaped: the apostrophe is &#39;.
        #expect(lipschitz.contains("law&#39;s bound: eps·(p/nd)^-1/2, eps = 0.999"), "\(lipschitz.prefix(300))")
        #expect(lipschitz.contains("p / (n d)") && lipschitz.contains("lip_support_lower"))
        // law_ratio with the law's bound at 1 (the fixture's cells sit near 3).
        #expect(figures[2].chart.svg().contains("law&#39;s bound: law_ratio = 1"))
        let eps = figures[1].chart.svg()
        #expect(eps.components(separatedBy: "<circle cx").count - 1 == 24 + 3)
        #expect(eps.contains("p = n"))
    }

    /// Version 2 results carry the baselines: the tables gain their columns, the figures draw
    /// them beside the trained values (in both units), and the words say how much of the
    /// constant the initial network had and how far above the floor the networks sit: the
    /// interpolants above the interpolation floor, the partial fits above their own floor.
    @Test func baselinesAppearInTheTablesTheFiguresAndTheWords() throws {
        var rows: [CellResult] = []
        for width in [16, 64] {
            for seed in 0..<3 {
                // Width 64 interpolates; width 16 gets one sign in ten wrong: a partial fit.
                var row = cell(
                    n: 64,
                    d: 8,
                    width: width,
                    seed: seed,
                    eps: 0.995,
                    lip: 10 + Double(seed),
                    fit: width == 64 ? 1 : 0.9
                )
                row.metrics.scienceVersion = 2
                row.metrics.lipInitSupportLower = 4 + Double(seed)  // 40%, 45.5%, 50% of the trained value
                row.metrics.interpFloor = 2.5  // 4x, 4.4x, 4.8x below it
                row.metrics.fitFloor = 5  // the partial fits' own floor: 2x, 2.2x, 2.4x below it
                rows.append(row)
            }
        }
        let analysis = ScalingAnalysis(results: rows)
        let fit = try #require(analysis.fits.first)
        #expect(abs(try #require(fit.initialShareMedian) - 5.0 / 11) < 1e-12)
        #expect(fit.interpolants == 3 && fit.partialFits == 3)
        #expect(abs(try #require(fit.floorMultipleMedian) - 11 / 2.5) < 1e-12)
        #expect(abs(try #require(fit.partialFloorMultipleMedian) - 11 / 5.0) < 1e-12)
        #expect(analysis.findings[0].contains("the initial networks already had 45% of the trained lip_support_lower"))
        #expect(analysis.findings[0].contains("the 3 interpolants' constant is 4.4× the interpolation floor"))
        #expect(analysis.findings[0].contains("the 3 partial fits' constant is 2.2× their own floor"))
        let configuration = analysis.configurations[0]
        #expect(abs(try #require(configuration.countedLipInitSupportLower?.mean) - 5) < 1e-12)
        let expectedInitRatio = 5 / (0.995 * configuration.lawScale)
        #expect(abs(try #require(configuration.countedInitLawRatio?.mean) - expectedInitRatio) < 1e-12)
        #expect(
            abs(try #require(configuration.countedFloorLawRatio?.mean) - 2.5 / (0.995 * configuration.lawScale))
                < 1e-12
        )

        let markdown = try analysis.renderConfigurations(.markdown)
        #expect(markdown.contains("| lip_init_support_lower | interp_floor |"))
        let table = SweepTable(results: rows)
        #expect(
            try table.render(.csv).split(separator: "\n")[0].contains(
                "lip_upper,lip_init_support_lower,interp_floor,law_scale"
            )
        )
        // Version 1 results have no baselines: no columns for them.
        let old = SweepTable(
            results: rows.map {
                var r = $0
                r.metrics.scienceVersion = 1
                return r
            }
        )
        #expect(!(try old.render(.csv)).contains("interp_floor"))

        for (name, chart) in analysis.figures() where name != "eps" {
            let svg = chart.svg()
            #expect(
                svg.contains(">initial network (same search)</text>") && svg.contains(">interpolation floor</text>")
            )
            #expect(svg.contains("stroke-dasharray=\"5 3\"><title>n=64, d=8: initial network"), "\(name)")
            #expect(svg.contains("stroke-dasharray=\"1.5 3\"><title>n=64, d=8: interpolation floor"), "\(name)")
        }
    }

    /// The frontier takes, at each p, the smallest counted lip_support_lower over the training
    /// methods measured at that p, never a value carried from a smaller p, and keeps plain Adam,
    /// the floor and the law's bound beside it.
    @Test func theFrontierIsTheBestMethodAtEachP() throws {
        var rows: [CellResult] = []
        for (width, plainLip, smoothLip) in [(16, 10.0, 6.0), (64, 8.0, 5.0), (256, 9.0, 7.0)] {
            for seed in 0..<2 {
                var plain = cell(n: 64, d: 8, width: width, seed: seed, eps: 0.9, lip: plainLip)
                plain.metrics.interpFloor = 2
                rows.append(plain)
                var smooth = plain
                smooth.parameters.gradPenalty = 0.01
                smooth.parameters.extraSteps = 100
                smooth.metrics.lipSupportLower = smoothLip
                rows.append(smooth)
                // A penalised cell that lost the fit is not counted, however smooth.
                var unfit = smooth
                unfit.parameters.gradPenalty = 1
                unfit.metrics.eps = 0.1
                unfit.metrics.lipSupportLower = 0.5
                rows.append(unfit)
            }
        }
        let analysis = ScalingAnalysis(results: rows)
        #expect(analysis.comparesMethods)
        let frontier = analysis.frontier
        #expect(frontier.map(\.p) == [16 * 10 + 1, 64 * 10 + 1, 256 * 10 + 1])
        // Measured at each p: at the widest p the best network is 7, although width 64 reached 5.
        #expect(frontier.map(\.lipSupportLower) == [6, 5, 7])
        #expect(frontier.allSatisfy { $0.method == "trainer=adam, grad_penalty=0.01, extra_steps=100" })
        #expect(frontier.map(\.plainAdam) == [10, 8, 9] && frontier.allSatisfy { $0.interpFloor == 2 })
        let configuration = try #require(analysis.configurations.first { $0.width == 16 && $0.isPlainAdam })
        #expect(abs(try #require(frontier[0].lawBound) - 0.9 * configuration.lawScale) < 1e-12)
        #expect(analysis.frontierFindings[0].contains("below plain Adam at 3 of 3 widths (down to 60% of it)"))
        let figure = try #require(analysis.figures().first { $0.name == "frontier" }).chart.svg()
        #expect(figure.contains(">plain adam</text>") && figure.contains(">interpolation floor</text>"))
        #expect(figure.contains("law&#39;s bound eps·√(n d / p)"))
        let widest = try #require(analysis.renderFrontier().split(separator: "\n").first { $0.contains("| 2561 ") })
        let columns = widest.split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) }
        #expect(columns[3] == "7 ± 0" && columns[4] == "2", "the value with its interval over 2 datasets")
        #expect(frontier.allSatisfy { $0.cells == 2 && $0.lipSupportLowerHalfWidth95 == 0 })
        // A sweep of one method has no frontier figure.
        #expect(!ScalingAnalysis(results: lawFixture()).figures().contains { $0.name == "frontier" })
    }

    /// The headline exponents: networks exactly 3x the law's bound give the law's slopes, -1/2
    /// against p at fixed (n, d) and +1/2 against d at fixed p/n, and points where the floor is
    /// above the bound stay out of the fit against p.
    @Test func theFrontierExponentsAreTheLawsOnNetworksThatFollowIt() throws {
        var rows: [CellResult] = []
        for (d, widths) in [(8, [16, 64, 256]), (18, [8, 32, 128])] {  // p = 161, 641, 2561 for both
            for width in widths {
                for seed in 0..<2 {
                    let p = width * (d + 2) + 1
                    let bound = 0.995 * (Double(64 * d) / Double(p)).squareRoot()
                    var plain = cell(n: 64, d: d, width: width, seed: seed, eps: 0.995, lip: 10 * bound)
                    // The floor binds at d = 8's widest network only.
                    plain.metrics.interpFloor = d == 8 && width == 256 ? 1 : 0.01
                    rows.append(plain)
                    var smooth = plain
                    smooth.parameters.gradPenalty = 0.01
                    smooth.metrics.lipSupportLower = 3 * bound
                    rows.append(smooth)
                }
            }
        }
        let analysis = ScalingAnalysis(results: rows)
        #expect(Set(analysis.frontier.map(\.p)) == [161, 641, 2561])
        let againstP = try #require(analysis.frontierExponents.againstP)
        let againstD = try #require(analysis.frontierExponents.againstD)
        #expect(abs(againstP.slope + 0.5) < 1e-9 && againstP.count == 5)
        #expect(abs(againstD.slope - 0.5) < 1e-9 && againstD.count == 6)
        #expect(try #require(againstP.slopeHalfWidth95) < 1e-6)
        #expect(analysis.exponentFindings.count == 2 && analysis.exponentFindings[0].contains("-0.5 ± "))
        #expect(analysis.exponentFindings[1].contains("0.5 ± ") && analysis.exponentFindings[1].contains("d^(1/2)"))
    }

    /// The frontier compares at a matched fit: at a p where some method interpolates, a smoother
    /// partial fit does not take the point; where none does, the partial fit does and says so, and
    /// the exponents are read on interpolating points only.
    @Test func theFrontierPrefersInterpolantsAndMarksPartialFits() throws {
        var rows: [CellResult] = []
        for width in [16, 64, 256] {
            for seed in 0..<2 {
                let p = width * 10 + 1
                let bound = 0.995 * (Double(64 * 8) / Double(p)).squareRoot()
                // Width 16: nothing interpolates; wider: plain Adam interpolates, and a smoother
                // partial fit sits beside it.
                var plain = cell(n: 64, d: 8, width: width, seed: seed, eps: width == 16 ? 0.9 : 0.995, lip: 4 * bound)
                plain.metrics.interpFloor = 0.01
                rows.append(plain)
                var partial = plain
                partial.parameters.gradPenalty = 0.01
                partial.metrics.eps = 0.9
                partial.metrics.fitFraction = 0.95
                partial.metrics.lipSupportLower = 2 * bound
                rows.append(partial)
            }
        }
        let analysis = ScalingAnalysis(results: rows)
        let frontier = analysis.frontier
        #expect(frontier.map(\.p) == [161, 641, 2561])
        #expect(frontier.map(\.interpolates) == [false, true, true])
        #expect(frontier[0].method.contains("grad_penalty"), "where nothing interpolates the smoothest partial fit")
        #expect(frontier[1...].allSatisfy { !$0.method.contains("grad_penalty") }, "else the interpolant")
        let againstP = try #require(analysis.frontierExponents.againstP)
        #expect(againstP.count == 2 && abs(againstP.slope + 0.5) < 1e-9)
        #expect(analysis.renderFrontier().contains("| partial"))
    }

    /// The report lists every cell whatever its eps, with its law_ratio and whether the fits count
    /// it; a sweep too large to list says where the rest are.
    @Test func everyCellIsListedWhateverItsEps() throws {
        let results = lawFixture()
        let text = ScalingAnalysis.renderEveryCell(results, epsFraction: 0.5, limit: 10_000)
        let rows = text.split(separator: "\n").dropFirst(2)
        #expect(rows.count == results.count)
        let uncounted = results.filter { !ScalingAnalysis.counts($0.metrics, epsFraction: 0.5) }
        func fitColumn(_ row: Substring) -> String {
            row.split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) }.last ?? ""
        }
        #expect(!uncounted.isEmpty && rows.filter { fitColumn($0) == "no" }.count == uncounted.count)
        let interpolants = results.filter {
            ScalingAnalysis.counts($0.metrics, epsFraction: 0.5) && ScalingAnalysis.isInterpolant($0.metrics)
        }
        #expect(rows.filter { fitColumn($0) == "interpolant" }.count == interpolants.count)
        // Their law_ratio is there, as the cells' own (columns: ..., law_ratio, counted).
        let listed = rows.filter { fitColumn($0) == "no" }.compactMap { row in
            Double(row.split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) }[9])
        }
        let expected = uncounted.compactMap(\.metrics.lawRatio)
        #expect(listed.count == expected.count && !expected.isEmpty)
        #expect(zip(listed.sorted(), expected.sorted()).allSatisfy { abs($0 - $1) <= 1e-4 * abs($1) })
        let cut = ScalingAnalysis.renderEveryCell(results, epsFraction: 0.5, limit: 5)
        #expect(cut.split(separator: "\n").count == 2 + 5 + 1)  // header, rule, rows, the sentence
        #expect(cut.hasSuffix("The first 5 of \(results.count) cells; `isosweep table DB` lists them all."))
    }

    /// The law's bound at a frontier point is eps sqrt(n d / p) with the eps of the cells whose
    /// Lipschitz values the point reports (the counted ones), not the eps of every seed.
    @Test func theLawsBoundAtAFrontierPointUsesThatPointsEps() throws {
        var rows: [CellResult] = []
        for method in [0.0, 0.01] {
            // Seed 0 fits (eps 0.9) and counts; seed 1 lost the fit (eps 0.2) and does not.
            for (seed, eps) in [(0, 0.9), (1, 0.2)] {
                var row = cell(n: 64, d: 8, width: 32, seed: seed, eps: eps, lip: method == 0 ? 10 : 4)
                row.parameters.gradPenalty = method == 0 ? nil : method
                rows.append(row)
            }
        }
        let analysis = ScalingAnalysis(results: rows)
        let point = try #require(analysis.frontier.first)
        let configuration = try #require(analysis.configurations.first { $0.method.contains("grad_penalty") })
        #expect(point.lipSupportLower == 4 && point.method == configuration.method)
        #expect(abs(try #require(configuration.eps).mean - 0.55) < 1e-12, "every seed's eps")
        #expect(abs(try #require(point.lawBound) - 0.9 * configuration.lawScale) < 1e-12)
    }

    /// A refine round: midpoints where the condition holds between neighbours, every seed,
    /// deterministic, within the budget; the sweep file's errors name the fix.
    @Test func refineRoundsAddGeometricMidpointsWhereTheConditionHolds() throws {
        var rows: [CellResult] = []
        for (width, fit, spread) in [(4, 0.5, 0.0), (16, 0.995, 0.0), (64, 0.999, 3.0)] {
            for seed in 0..<2 {
                var row = cell(n: 64, d: 8, width: width, seed: seed, eps: 0.9, lip: 5, fit: fit)
                row.metrics.lawRatio = 2 + (seed == 0 ? -spread : spread)
                rows.append(row)
            }
        }
        let text = { (condition: String, cap: Int) in
            """
            name: r
            method: grid
            parameters:
              n: {value: 64}
              d: {value: 8}
              width: {values: [4, 16, 64]}
              seed: {values: [0, 1]}
            refine: {axis: width, where: \(condition), rounds: 2, max_new_cells: \(cap)}
            """
        }
        let crossing = try #require(try SweepSpec.parse(text("fit_fraction crosses 0.99", 10), file: "r.yaml").refine)
        let existing = Set(rows.map { CellWork.train($0.parameters).key })
        let added = crossing.round(results: rows, existing: existing, budget: 10)
        #expect(added.compactMap(\.parameters).map(\.width) == [8, 8])
        #expect(added.compactMap(\.parameters).map(\.seed) == [0, 1])
        #expect(crossing.round(results: rows, existing: existing, budget: 10).map(\.key) == added.map(\.key))
        #expect(crossing.round(results: rows, existing: existing, budget: 1).count == 1)
        #expect(crossing.round(results: rows, existing: existing.union(added.map(\.key)), budget: 10).isEmpty)
        // ci_width: the seeds disagree at 64 (law_ratio -1 and 5), so (16, 64) gets 32.
        let wide = try #require(try SweepSpec.parse(text("law_ratio ci_width > 0.2", 10), file: "r.yaml").refine)
        #expect(
            wide.round(results: rows, existing: existing, budget: 10).compactMap(\.parameters).map(\.width) == [32, 32]
        )
        for (condition, fragment) in [
            ("fit_fraction above 0.99", "expected METRIC crosses VALUE"), ("colour crosses 1", "unknown metric colour"),
        ] {
            do {
                _ = try SweepSpec.parse(text(condition, 10), file: "r.yaml")
                Issue.record("accepted \(condition)")
            } catch {
                #expect(error.message.contains(fragment), "\(error.message)")
            }
        }
        #expect(throws: IsosweepError.self) {
            try SweepSpec.parse(
                text("fit_fraction crosses 0.99", 10).replacingOccurrences(of: "axis: width", with: "axis: d"),
                file: "r.yaml"
            )
        }
    }

    static let renderer = ["/usr/bin/rsvg-convert", "/usr/local/bin/rsvg-convert"].first {
        FileManager.default.isExecutableFile(atPath: $0)
    }

    @Test(.enabled(if: renderer != nil, "rsvg-convert (Debian's librsvg2-bin) renders the SVG figures to PNG"))
    func reportIsWrittenWithRenderedFigures() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("isosweep-report-\(UUID().uuidString)")
            .path
        let db = dir + "/sweep.db"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let store = try ResultStore(path: db)
        let rows = lawFixture()
        let cells = rows.map { CellWork.train($0.parameters) }
        _ = try store.prepare(name: "fixture", cells: cells)
        let encoder = JSONEncoder()
        try store.apply(
            updates: [],
            commits: try rows.map {
                Scheduler.Commit(
                    key: CellWork.train($0.parameters).key,
                    payload: Array(try encoder.encode($0)),
                    worker: "w",
                    attempt: 1,
                    identity: []
                )
            },
            workers: []
        )
        let index = try ReportWriter.write(store: store, directory: dir + "/report")
        #expect(index.hasSuffix("report/index.html"))
        let markdown = try String(contentsOfFile: dir + "/report/report.md", encoding: .utf8)
        #expect(markdown.contains("consistent with the law"))
        #expect(markdown.contains("## Every cell") && markdown.contains("the proven constant (Bubeck and Sellke"))
        #expect(markdown.contains("![lipschitz](lipschitz.png)"))
        // The headline first: law_ratio against p / (n d).
        #expect(markdown.range(of: "![law-ratio]")!.lowerBound < markdown.range(of: "![lipschitz]")!.lowerBound)
        for figure in ["lipschitz", "eps", "law-ratio"] {
            let png = try Data(contentsOf: URL(fileURLWithPath: dir + "/report/\(figure).png"))
            #expect(png.starts(with: [0x89, 0x50, 0x4E, 0x47]))  // the PNG signature
            #expect(png.count > 5000)
        }
        let html = try String(contentsOfFile: dir + "/report/index.html", encoding: .utf8)
        #expect(html.contains("<img src=\"lipschitz.svg\"") && html.contains("<table>"))
        let json =
            try JSONSerialization.jsonObject(
                with: Data(contentsOf: URL(fileURLWithPath: dir + "/report/analysis.json"))
            ) as? [String: Any]
        #expect((json?["fits"] as? [Any])?.count == 4)
    }
}

extension Double {
    var reciprocal: Double { 1 / self }
}
