import Foundation
public import SweepCore
public import TrainingCore

/// What a sweep says about the law: configurations aggregated over seeds, log-log slopes of the
/// Lipschitz bounds against p, the empirical constant, and where interpolation starts.
public struct ScalingAnalysis: Sendable, Codable {
    /// One configuration (every parameter but the seed), summarised over its seeds.
    public struct Configuration: Sendable, Codable {
        public var series: String
        public var n: Int
        public var d: Int
        public var width: Int
        public var p: Int
        /// p / (n d): the law's x-axis.
        public var pOverND: Double
        /// p / n: the interpolation threshold's x-axis.
        public var pOverN: Double
        public var seeds: Int
        public var diverged: Int
        public var eps: Statistics.Summary?
        public var fitFraction: Statistics.Summary?
        public var lipSupportLower: Statistics.Summary?
        public var lipLower: Statistics.Summary?
        public var lipUpper: Statistics.Summary?
        public var lawScale: Double
        public var lawRatio: Statistics.Summary?
        public var testMSE: Statistics.Summary?
        /// Seconds per cell (training and Lipschitz bounds).
        public var cost: Statistics.Summary?
        /// Its cells that fit below the noise level (`ScalingAnalysis.counts`), and their
        /// Lipschitz bounds: what the fits and the figures use, the same cells for both.
        public var counted = 0
        /// How many of the counted cells interpolate (`ScalingAnalysis.isInterpolant`).
        public var countedInterpolants = 0
        /// eps over the counted cells: what the law's bound of their Lipschitz values uses.
        public var countedEps: Statistics.Summary?
        public var countedLipSupportLower: Statistics.Summary?
        public var countedLipLower: Statistics.Summary?
        public var countedLipUpper: Statistics.Summary?
        /// Baselines (science version 2 on): the initial network's support bound and the
        /// interpolation floor, over all seeds and over the counted cells; law_ratio, and the
        /// baselines in units of the law's bound eps sqrt(n d / p), over the counted cells.
        public var lipInitSupportLower: Statistics.Summary?
        public var interpFloor: Statistics.Summary?
        public var countedLipInitSupportLower: Statistics.Summary?
        public var countedLawRatio: Statistics.Summary?
        public var countedInitLawRatio: Statistics.Summary?
        public var countedFloorLawRatio: Statistics.Summary?
        /// The series without the training method ("n=256, d=32"), the training method's own
        /// varying parameters ("trainer=adam, grad_penalty=0.01"), and whether it is plain Adam
        /// (no regulariser, default initialisation): what the frontier compares.
        public var group = ""
        public var method = ""
        public var isPlainAdam = false

        enum CodingKeys: String, CodingKey {
            case series, n, d, width, p, seeds, diverged, eps, cost
            case pOverND = "p_over_nd"
            case pOverN = "p_over_n"
            case fitFraction = "fit_fraction"
            case lipSupportLower = "lip_support_lower"
            case lipLower = "lip_lower"
            case lipUpper = "lip_upper"
            case lawScale = "law_scale"
            case lawRatio = "law_ratio"
            case testMSE = "test_mse"
            case counted
            case countedInterpolants = "counted_interpolants"
            case countedEps = "counted_eps"
            case countedLipSupportLower = "counted_lip_support_lower"
            case countedLipLower = "counted_lip_lower"
            case countedLipUpper = "counted_lip_upper"
            case lipInitSupportLower = "lip_init_support_lower"
            case interpFloor = "interp_floor"
            case countedLipInitSupportLower = "counted_lip_init_support_lower"
            case countedLawRatio = "counted_law_ratio"
            case countedInitLawRatio = "counted_init_law_ratio"
            case countedFloorLawRatio = "counted_floor_law_ratio"
            case group, method
            case isPlainAdam = "plain_adam"
        }
    }

    /// Slopes of log(bound) against log(p) over the cells that fit below the noise level.
    public struct Fit: Sendable, Codable {
        /// "n=256, d=32" (plus any other parameter that varies), or "all" (x = log(p/(n d))).
        public var series: String
        public var cells: Int
        public var minWidth: Int?
        public var maxWidth: Int?
        public var lipSupportLower: Statistics.Line?
        public var lipLower: Statistics.Line?
        public var lipUpper: Statistics.Line?
        /// law_ratio over the fitted cells: the empirical constant of Lip >= C eps sqrt(n d / p).
        public var lawRatioMin: Double?
        public var lawRatioMedian: Double?
        /// Constant C of lip_support_lower = C (p / (n d))^(-1/2) with the slope held at the law's.
        public var lawLineConstant: Double?
        /// Smallest p / n at which the mean fit_fraction reaches 0.99 (per series only).
        public var interpolationThresholdPOverN: Double?
        /// Fitted cells with law_ratio below 1, and the median law_ratio at the smallest and at
        /// the largest p among them (how the ratio trends as p grows).
        public var lawRatioBelowOne = 0
        public var lawRatioAtSmallestP: Double?
        public var lawRatioAtLargestP: Double?
        /// Median eps of the fitted cells: the law's fixed line is eps sqrt(n d / p).
        public var epsMedian: Double?
        /// Medians over the fitted cells of lip_init_support_lower / lip_support_lower (how much
        /// of the constant was there before training) and of lip_support_lower / interp_floor
        /// (how far above the smoothest exact interpolant the networks sit).
        public var initialShareMedian: Double?
        public var floorMultipleMedian: Double?
        /// Interpolants among the fitted cells (`isInterpolant`): the floor multiple above is over
        /// them alone, since the interpolation floor bounds exact interpolants only; the others
        /// (partial fits) are compared with their own floor, lip_support_lower / fit_floor.
        public var interpolants = 0
        public var partialFits = 0
        public var partialFloorMultipleMedian: Double?

        enum CodingKeys: String, CodingKey {
            case series, cells
            case minWidth = "min_width"
            case maxWidth = "max_width"
            case lipSupportLower = "lip_support_lower"
            case lipLower = "lip_lower"
            case lipUpper = "lip_upper"
            case lawRatioMin = "law_ratio_min"
            case lawRatioMedian = "law_ratio_median"
            case lawLineConstant = "law_line_constant"
            case lawRatioBelowOne = "law_ratio_below_one"
            case lawRatioAtSmallestP = "law_ratio_at_smallest_p"
            case lawRatioAtLargestP = "law_ratio_at_largest_p"
            case epsMedian = "eps_median"
            case initialShareMedian = "initial_share_median"
            case floorMultipleMedian = "floor_multiple_median"
            case interpolants
            case partialFits = "partial_fits"
            case partialFloorMultipleMedian = "partial_floor_multiple_median"
            case interpolationThresholdPOverN = "interpolation_threshold_p_over_n"
        }
    }

    /// A cell fits below the noise level, and enters the fits and figures, when its eps is at
    /// least this fraction of its noise level (relative: teacher and file labels have noise
    /// levels far below 1, and an absolute threshold dropped them all).
    public var epsFraction: Double
    /// Cells left out by that rule (or without a positive lip_support_lower), and the
    /// configurations that lost at least one seed to it.
    public var excludedCells = 0
    public var configurationsWithExcludedSeeds = 0
    public var configurations: [Configuration]
    public var fits: [Fit]

    enum CodingKeys: String, CodingKey {
        case configurations, fits
        case epsFraction = "eps_fraction"
        case excludedCells = "excluded_cells"
        case configurationsWithExcludedSeeds = "configurations_with_excluded_seeds"
    }

    /// Whether a cell enters the fits and figures: eps >= fraction x noise_level, and a positive
    /// lip_support_lower (a logarithm is taken).
    public static func counts(_ metrics: CellMetrics, epsFraction: Double) -> Bool {
        guard let eps = metrics.eps, let lip = metrics.lipSupportLower, lip > 0 else { return false }
        return eps >= epsFraction * metrics.noiseLevel
    }

    /// The fit-fraction at which a configuration counts as interpolating.
    public static let interpolationFitFraction = 0.99

    /// Whether a cell interpolates: eps >= 0.99 x its noise level and every training sign right.
    /// The interpolation floor bounds such networks; a partial fit has only its own floor.
    public static func isInterpolant(_ metrics: CellMetrics) -> Bool {
        guard let eps = metrics.eps, let fraction = metrics.fitFraction else { return false }
        return eps >= 0.99 * metrics.noiseLevel && fraction >= 1
    }

    /// Analyses committed results.
    public init(results: [CellResult], epsFraction: Double = 0.5) {
        self.epsFraction = epsFraction
        let labels = SeriesLabeler(results.map(\.parameters))
        // Configurations: every parameter but the seed.
        var groups: [String: [CellResult]] = [:]
        for result in results {
            var key = result.parameters
            key.seed = 0
            groups[CellWork.train(key).key, default: []].append(result)
        }
        configurations = groups.values.map { cells in
            let p = cells[0].parameters
            let m = cells.map(\.metrics)
            let pCount = m[0].p
            func summary(_ value: (CellMetrics) -> Double?) -> Statistics.Summary? {
                Statistics.summary(m.compactMap(value))
            }
            let kept = m.filter { Self.counts($0, epsFraction: epsFraction) }
            var configuration = Configuration(
                series: labels.label(p),
                n: p.n,
                d: p.d,
                width: p.width,
                p: pCount,
                pOverND: Double(pCount) / (Double(p.n) * Double(p.d)),
                pOverN: Double(pCount) / Double(p.n),
                seeds: cells.count,
                diverged: m.filter { $0.stopReason == .diverged }.count,
                eps: summary(\.eps),
                fitFraction: summary(\.fitFraction),
                lipSupportLower: summary(\.lipSupportLower),
                lipLower: summary(\.lipLower),
                lipUpper: summary(\.lipUpper),
                lawScale: m[0].lawScale,
                lawRatio: summary(\.lawRatio),
                testMSE: summary(\.testMSE),
                cost: summary { $0.trainSeconds + $0.lipSeconds }
            )
            configuration.counted = kept.count
            configuration.countedInterpolants = kept.filter(Self.isInterpolant).count
            configuration.countedEps = Statistics.summary(kept.compactMap(\.eps))
            configuration.countedLipSupportLower = Statistics.summary(kept.compactMap(\.lipSupportLower))
            configuration.countedLipLower = Statistics.summary(kept.compactMap(\.lipLower))
            configuration.countedLipUpper = Statistics.summary(kept.compactMap(\.lipUpper))
            configuration.lipInitSupportLower = summary(\.lipInitSupportLower)
            configuration.interpFloor = summary(\.interpFloor)
            configuration.countedLipInitSupportLower = Statistics.summary(kept.compactMap(\.lipInitSupportLower))
            configuration.countedLawRatio = Statistics.summary(kept.compactMap(\.lawRatio))
            func inLawUnits(_ value: (CellMetrics) -> Double?) -> Statistics.Summary? {
                Statistics.summary(
                    kept.compactMap { m in
                        guard let v = value(m), let eps = m.eps, eps > 0 else { return nil }
                        return v / (eps * m.lawScale)
                    }
                )
            }
            configuration.countedInitLawRatio = inLawUnits(\.lipInitSupportLower)
            configuration.countedFloorLawRatio = inLawUnits { $0.interpFloor.flatMap { $0.isFinite ? $0 : nil } }
            configuration.group = labels.label(p, excluding: SeriesLabeler.methodParameters)
            configuration.method = labels.methodLabel(p)
            configuration.isPlainAdam =
                p.trainer == .adam && p.weightDecay == nil && p.gradPenalty == nil && p.initScale == nil
                && p.extraSteps == nil && p.smoothAfterFit == nil
            return configuration
        }.sorted { ($0.n, $0.d, $0.series, $0.width) < ($1.n, $1.d, $1.series, $1.width) }

        let included = results.filter { Self.counts($0.metrics, epsFraction: epsFraction) }
        excludedCells = results.count - included.count
        configurationsWithExcludedSeeds = configurations.filter { $0.counted < $0.seeds }.count
        var fits: [Fit] = []
        var seriesNames: [String] = []
        for configuration in configurations where !seriesNames.contains(configuration.series) {
            seriesNames.append(configuration.series)
        }
        for name in seriesNames {
            let cells = included.filter { labels.label($0.parameters) == name }
            var fit = Self.fit(cells, series: name, x: { log(Double($0.metrics.p)) })
            fit.interpolationThresholdPOverN =
                configurations
                .filter { $0.series == name && ($0.fitFraction?.mean ?? 0) >= Self.interpolationFitFraction }
                .map(\.pOverN).min()
            fits.append(fit)
        }
        if seriesNames.count > 1 {
            // One slope, an intercept per series: series sit at different heights (the initial
            // network's constant grows like sqrt(d)), which a single intercept reads as slope.
            let series = Dictionary(uniqueKeysWithValues: seriesNames.enumerated().map { ($1, $0) })
            fits.append(
                Self.fit(
                    included,
                    series: "all",
                    x: { log(Double($0.metrics.p) / (Double($0.parameters.n) * Double($0.parameters.d))) },
                    group: { series[labels.label($0.parameters)] ?? 0 }
                )
            )
        }
        self.fits = fits
    }

    static func fit(
        _ cells: [CellResult],
        series: String,
        x: (CellResult) -> Double,
        group: ((CellResult) -> Int)? = nil
    ) -> Fit {
        let xs = cells.map(x)
        let groups = group.map { cells.map($0) }
        func line(_ value: (CellMetrics) -> Double?) -> Statistics.Line? {
            let points = cells.indices.compactMap { i -> (x: Double, y: Double, group: Int)? in
                guard let y = value(cells[i].metrics), y > 0 else { return nil }
                return (xs[i], log(y), groups?[i] ?? 0)
            }
            guard groups != nil else { return Statistics.fitLine(x: points.map(\.x), y: points.map(\.y)) }
            return Statistics.fitLine(x: points.map(\.x), y: points.map(\.y), groups: points.map(\.group))
        }
        let ratios = cells.compactMap(\.metrics.lawRatio)
        let constants = cells.compactMap { cell -> Double? in
            guard let lip = cell.metrics.lipSupportLower, lip > 0 else { return nil }
            let pOverND = Double(cell.metrics.p) / (Double(cell.parameters.n) * Double(cell.parameters.d))
            return log(lip) + 0.5 * log(pOverND)
        }
        let ps = cells.map(\.metrics.p)
        func ratioMedian(at p: Int?) -> Double? {
            Statistics.median(cells.filter { $0.metrics.p == p }.compactMap(\.metrics.lawRatio))
        }
        var fit = Fit(
            series: series,
            cells: cells.count,
            minWidth: cells.map(\.parameters.width).min(),
            maxWidth: cells.map(\.parameters.width).max(),
            lipSupportLower: line(\.lipSupportLower),
            lipLower: line(\.lipLower),
            lipUpper: line(\.lipUpper),
            lawRatioMin: ratios.min(),
            lawRatioMedian: Statistics.median(ratios),
            lawLineConstant: constants.isEmpty ? nil : exp(constants.reduce(0, +) / Double(constants.count)),
            interpolationThresholdPOverN: nil
        )
        fit.lawRatioBelowOne = ratios.filter { $0 < 1 }.count
        fit.lawRatioAtSmallestP = ratioMedian(at: ps.min())
        fit.lawRatioAtLargestP = ratioMedian(at: ps.max())
        fit.epsMedian = Statistics.median(cells.compactMap(\.metrics.eps))
        fit.initialShareMedian = Statistics.median(
            cells.compactMap { cell in
                cell.metrics.lipInitSupportLower.flatMap { initial in
                    cell.metrics.lipSupportLower.map { initial / $0 }
                }
            }
        )
        let interpolants = cells.filter { Self.isInterpolant($0.metrics) }
        let partial = cells.filter { !Self.isInterpolant($0.metrics) }
        func medianMultiple(_ chosen: [CellResult], of floor: (CellMetrics) -> Double?) -> Double? {
            Statistics.median(
                chosen.compactMap { cell in
                    guard let floor = floor(cell.metrics), floor > 0, floor.isFinite else { return nil }
                    return cell.metrics.lipSupportLower.map { $0 / floor }
                }
            )
        }
        fit.interpolants = interpolants.count
        fit.partialFits = partial.count
        fit.floorMultipleMedian = medianMultiple(interpolants) { $0.interpFloor }
        fit.partialFloorMultipleMedian = medianMultiple(partial) { $0.fitFloor }
        return fit
    }

    /// The fit's verdict in words. The law is a lower bound, Lip >= C eps sqrt(n d / p), and the
    /// proven theorem's C (Bubeck and Sellke, Theorem 3: 1 / (2^9 sqrt(c)), with a logarithmic
    /// factor) is far below 1, so law_ratio (Lip over the bound with C = 1) can say how close the
    /// networks come to the bound and how that moves as p grows, never that the law breaks; the
    /// slope of log Lip against log p is reported as measured, never read as following it.
    public static func verdict(_ fit: Fit) -> String {
        guard fit.cells > 0 else { return "no cell fits below the noise level: nothing to compare with the law" }
        var text: String
        if fit.lawRatioBelowOne == 0, let minimum = fit.lawRatioMin {
            text = String(
                format:
                    "every one of the %d fitted cells has law_ratio ≥ 1 (min %.3g, median %.3g): consistent with the law, which bounds the constant from below (law_ratio takes its constant as 1; the theorem's is 1 / (2⁹ √c) with a logarithmic factor, far below 1)",
                fit.cells,
                minimum,
                fit.lawRatioMedian ?? minimum
            )
        } else {
            text = String(
                format:
                    "%d of the %d fitted cells have law_ratio < 1 (min %.3g): below eps·√(n d / p), which does not contradict the law: law_ratio takes its constant as 1, the theorem's is 1 / (2⁹ √c) with a logarithmic factor, far below 1",
                fit.lawRatioBelowOne,
                fit.cells,
                fit.lawRatioMin ?? 0
            )
        }
        if let low = fit.lawRatioAtSmallestP, let high = fit.lawRatioAtLargestP, fit.minWidth != fit.maxWidth {
            text += String(format: "; law_ratio goes from %.3g at the smallest p to %.3g at the largest", low, high)
        }
        if let share = fit.initialShareMedian {
            text +=
                share <= 1
                ? String(
                    format: "; the initial networks already had %.0f%% of the trained lip_support_lower (median)",
                    100 * share
                )
                : String(
                    format:
                        "; training made the networks smoother than at initialisation (initial / trained lip_support_lower %.3g, median)",
                    share
                )
        }
        if let multiple = fit.floorMultipleMedian {
            text += String(
                format:
                    "; the %d interpolants' constant is %.3g× the interpolation floor, the least any exact interpolant can have (median)",
                fit.interpolants,
                multiple
            )
        }
        if let multiple = fit.partialFloorMultipleMedian {
            text += String(
                format:
                    "; the %d partial fits' constant is %.3g× their own floor, max |f(x_i) - f(x_j)| / dist over training pairs (median)",
                fit.partialFits,
                multiple
            )
        }
        if let line = fit.lipSupportLower {
            let range = fit.minWidth.map { " over widths \($0)..\(fit.maxWidth ?? $0)" } ?? ""
            text +=
                line.slopeHalfWidth95.map {
                    String(format: "; log-log slope of lip_support_lower against p %.2f ± %.2f", line.slope, $0)
                } ?? String(format: "; log-log slope of lip_support_lower against p %.2f (no interval)", line.slope)
            text += range
        }
        return text
    }
}

extension ScalingAnalysis {
    /// Every cell, whatever its eps, as a markdown table: its series, width, p, seed, eps,
    /// fit_fraction, lip_support_lower, interp_floor, fit_floor, law_ratio and its fit: an
    /// interpolant, a partial fit the fits count, or "no" (at most `limit` rows; beyond, where to
    /// find them all).
    public static func renderEveryCell(_ results: [CellResult], epsFraction: Double, limit: Int) -> String {
        let labels = SeriesLabeler(results.map(\.parameters))
        let sorted = results.sorted {
            (labels.label($0.parameters), $0.metrics.p, $0.parameters.seed)
                < (labels.label($1.parameters), $1.metrics.p, $1.parameters.seed)
        }
        let rows = sorted.prefix(limit).map { cell -> [String] in
            let m = cell.metrics
            return [
                labels.label(cell.parameters, excluding: ["width"]), "\(cell.parameters.width)", "\(m.p)",
                "\(cell.parameters.seed)", fmt(m.eps), fmt(m.fitFraction), fmt(m.lipSupportLower), fmt(m.interpFloor),
                fmt(m.fitFloor), fmt(m.lawRatio),
                !counts(m, epsFraction: epsFraction) ? "no" : isInterpolant(m) ? "interpolant" : "partial",
            ]
        }
        let table = TextTable.markdown(
            header: [
                "series", "width", "p", "seed", "eps", "fit_fraction", "lip_support_lower", "interp_floor", "fit_floor",
                "law_ratio", "fit",
            ],
            rows: Array(rows)
        )
        guard results.count > limit else { return table }
        return table + "\n\nThe first \(limit) of \(results.count) cells; `isosweep table DB` lists them all."
    }
}

/// Names the series of a sweep: (n, d) plus whatever else varies besides width and seed.
struct SeriesLabeler {
    let varying: [CellParameter]

    init(_ cells: [CellParameters]) {
        varying = VaryingParameters(cells).parameters
    }

    /// The parameters of the training method: what the frontier takes the best over.
    static let methodParameters: Set = [
        "trainer", "lr", "weight_decay", "grad_penalty", "init_scale", "extra_steps", "smooth_after_fit", "max_steps",
        "target_mse",
    ]

    /// (n, d), the other varying parameters, then the training method's parameters that differ
    /// from their defaults (`methodLabel`), so that a sweep over methods reads
    /// "n=256, d=32, trainer=adam, grad_penalty=0.01, extra_steps=2000".
    func label(_ p: CellParameters, excluding excluded: Set<String> = []) -> String {
        let named = varying.filter { !excluded.contains($0.name) && !Self.methodParameters.contains($0.name) }
        var parts = ["n=\(p.n)", "d=\(p.d)"] + named.map { "\($0.name)=\($0.value(p)?.description ?? "-")" }
        if !excluded.contains("trainer") && varying.contains(where: { Self.methodParameters.contains($0.name) }) {
            parts.append(methodLabel(p))
        }
        return parts.joined(separator: ", ")
    }

    /// The trainer and those of the training method's varying parameters that differ from
    /// their defaults: "trainer=adam", "trainer=adam, grad_penalty=0.01, extra_steps=1000".
    func methodLabel(_ p: CellParameters) -> String {
        // A parameter at its default for this trainer says nothing (lr is the trainer's own default).
        var defaults = CellParameters(n: 1, d: 1, width: 1)
        defaults.trainer = p.trainer
        defaults = defaults.resolved()
        let named = varying.filter {
            Self.methodParameters.contains($0.name) && $0.name != "trainer" && $0.value(p) != $0.value(defaults)
        }
        return (["trainer=\(p.trainer.rawValue)"] + named.map { "\($0.name)=\($0.value(p)?.description ?? "-")" })
            .joined(separator: ", ")
    }
}
