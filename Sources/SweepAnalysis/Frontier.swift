import Foundation
public import SweepCore

/// The achievable frontier: for each series without its training method (an (n, d) pair, plus
/// whatever else varies) and each p, the smallest Lipschitz constant on the support that any
/// trainer or regulariser *measured* at that p, among cells that fit below the noise level, beside
/// the law's bound (with that configuration's own eps), the interpolation floor and plain Adam.
/// Nothing is carried from a smaller p: a wider network could in principle copy a narrower one,
/// but the frontier reports networks that were trained and measured, not ones that might exist.
/// The law says smooth interpolation *needs* p ~ n d; the frontier is what this sweep's networks
/// achieved.
extension ScalingAnalysis {
    /// One point of the frontier.
    public struct FrontierPoint: Sendable, Codable {
        public var group: String
        public var n: Int
        public var d: Int
        public var p: Int
        public var pOverND: Double
        /// The smallest mean lip_support_lower over the counted cells of the configurations at p,
        /// and the 95% half-width of that mean over its cells' independent datasets (nil with
        /// one cell).
        public var lipSupportLower: Double
        public var lipSupportLowerHalfWidth95: Double?
        /// Its counted cells (one per dataset).
        public var cells: Int
        /// The training method that measured it, at this p.
        public var method: String
        /// Whether every one of its cells interpolates (`isInterpolant`). The frontier takes the
        /// best interpolating configuration at p; a partial fit only where none interpolates.
        public var interpolates: Bool
        /// The law's bound eps sqrt(n d / p), with eps the mean over the same counted cells.
        public var lawBound: Double?
        /// The interpolation floor (mean over its seeds) and plain Adam's value at the same p.
        public var interpFloor: Double?
        public var plainAdam: Double?

        enum CodingKeys: String, CodingKey {
            case group, n, d, p, method, interpolates
            case pOverND = "p_over_nd"
            case lipSupportLower = "lip_support_lower"
            case lipSupportLowerHalfWidth95 = "lip_support_lower_ci95_half_width"
            case cells
            case lawBound = "law_bound"
            case interpFloor = "interp_floor"
            case plainAdam = "plain_adam"
        }
    }

    /// Whether the sweep compares training methods (otherwise the frontier is just its series).
    public var comparesMethods: Bool { Set(configurations.map(\.method)).count > 1 }

    /// The frontier, by group and then p.
    public var frontier: [FrontierPoint] {
        var points: [FrontierPoint] = []
        let groups = Dictionary(grouping: configurations.filter { $0.counted > 0 }, by: \.group)
        for (group, rows) in groups {
            for (p, atP) in Dictionary(grouping: rows, by: \.p).sorted(by: { $0.key < $1.key }) {
                let candidates = atP.compactMap { row in row.countedLipSupportLower.map { (row: row, summary: $0) } }
                // Compared at a matched fit: interpolants first, a partial fit only where none is.
                let interpolating = candidates.filter { $0.row.countedInterpolants == $0.row.counted }
                guard
                    let best = (interpolating.isEmpty ? candidates : interpolating)
                        .min(by: { $0.summary.mean < $1.summary.mean })
                else { continue }
                let lawScale = (Double(best.row.n) * Double(best.row.d) / Double(p)).squareRoot()
                points.append(
                    FrontierPoint(
                        group: group,
                        n: best.row.n,
                        d: best.row.d,
                        p: p,
                        pOverND: Double(p) / (Double(best.row.n) * Double(best.row.d)),
                        lipSupportLower: best.summary.mean,
                        lipSupportLowerHalfWidth95: best.summary.halfWidth95,
                        cells: best.summary.count,
                        method: best.row.method,
                        interpolates: best.row.countedInterpolants == best.row.counted,
                        lawBound: best.row.countedEps.flatMap { $0.mean > 0 ? $0.mean * lawScale : nil },
                        interpFloor: atP.compactMap { $0.interpFloor?.mean }.first ?? best.row.interpFloor?.mean,
                        plainAdam: atP.first { $0.isPlainAdam }?.countedLipSupportLower?.mean
                    )
                )
            }
        }
        let order = configurations.map(\.group)
        return points.sorted {
            (order.firstIndex(of: $0.group) ?? 0, $0.p) < (order.firstIndex(of: $1.group) ?? 0, $1.p)
        }
    }

    /// The headline: the frontier's log-log slopes with their 95% intervals (one intercept per
    /// series, a common slope: `Statistics.fitLine(x:y:groups:)`), over its interpolating points
    /// only, so that every point is a network fitting at the same level (a partial fit is
    /// compared with its own floor instead). Against p at fixed (n, d),
    /// over the points where the law's bound clears the interpolation floor (where the floor binds
    /// the law says nothing); the law's bound falls as p^(-1/2). Against d at fixed n and p/n
    /// (p/n binned by quarter octaves, since p = k (d + 2) + 1 rarely matches exactly); the
    /// bound grows as d^(1/2). Nil where no series has two points with spread.
    public struct FrontierExponents: Sendable, Codable {
        public var againstP: Statistics.Line?
        public var againstD: Statistics.Line?

        enum CodingKeys: String, CodingKey {
            case againstP = "against_p"
            case againstD = "against_d"
        }
    }

    public var frontierExponents: FrontierExponents {
        // Interpolants only: a partial fit's constant answers another question (its own floor).
        let points = frontier.filter { $0.lipSupportLower > 0 && $0.interpolates }
        let clear = points.filter { point in
            guard let law = point.lawBound, let floor = point.interpFloor else { return true }
            return law > floor
        }
        func fit(
            _ chosen: [FrontierPoint],
            x: (FrontierPoint) -> Double,
            key: (FrontierPoint) -> String
        ) -> Statistics.Line? {
            let keys = Array(Set(chosen.map(key))).sorted()
            return Statistics.fitLine(
                x: chosen.map { log(x($0)) },
                y: chosen.map { log($0.lipSupportLower) },
                groups: chosen.map { keys.firstIndex(of: key($0))! }
            )
        }
        return FrontierExponents(
            againstP: fit(clear, x: { Double($0.p) }, key: \.group),
            againstD: fit(
                points,
                x: { Double($0.d) },
                key: { "n=\($0.n), log2(p/n)≈\(Int((4 * log2(Double($0.p) / Double($0.n))).rounded()))" }
            )
        )
    }

    /// The headline exponents in words, each against the law's.
    public var exponentFindings: [String] {
        func words(_ line: Statistics.Line?, _ what: String, _ law: String) -> String? {
            guard let line else { return nil }
            let interval =
                line.slopeHalfWidth95.map { String(format: " ± %.2g (95%%)", $0) } ?? " (no interval: too few points)"
            return String(
                format: "%@: %.3g%@ over %d frontier points; the law's bound goes as %@",
                what,
                line.slope,
                interval,
                line.count,
                law
            )
        }
        return [
            words(
                frontierExponents.againstP,
                "The frontier's exponent against p at fixed (n, d), where the bound clears the floor",
                "p^(-1/2)"
            ),
            words(frontierExponents.againstD, "Its exponent against d at fixed n and p/n", "d^(1/2)"),
        ].compactMap { $0 }
    }

    /// The frontier as a markdown table.
    public func renderFrontier() -> String {
        let rows = frontier.map { point -> [String] in
            [
                point.group, "\(point.p)", fmt(point.pOverND),
                fmt(point.lipSupportLower) + (point.lipSupportLowerHalfWidth95.map { " ± " + fmt($0) } ?? ""),
                "\(point.cells)",
                point.method, point.interpolates ? "interpolants" : "partial",
                fmt(point.lawBound), fmt(point.lawBound.map { point.lipSupportLower / $0 }), fmt(point.interpFloor),
                fmt(point.plainAdam),
            ]
        }
        return TextTable.markdown(
            header: [
                "series", "p", "p/(n d)", "smallest lip_support_lower at p (± 95% over datasets)", "datasets",
                "measured by", "fit", "eps·√(n d / p)",
                "ratio",
                "interp_floor", "plain adam",
            ],
            rows: rows
        )
    }

    /// One sentence per group: where the frontier ends against the law and the floor.
    public var frontierFindings: [String] {
        var sentences: [String] = []
        var seen: [String] = []
        for point in frontier where !seen.contains(point.group) { seen.append(point.group) }
        for group in seen {
            let points = frontier.filter { $0.group == group }
            guard let first = points.first, let last = points.last else { continue }
            var sentence = String(
                format:
                    "%@: the smallest lip_support_lower measured goes from %.3g at p/(n d) = %.3g (%@) to %.3g at %.3g (%@)",
                group,
                first.lipSupportLower,
                first.pOverND,
                first.method,
                last.lipSupportLower,
                last.pOverND,
                last.method
            )
            if let closest = points.compactMap({ point in point.lawBound.map { (point, point.lipSupportLower / $0) } })
                .min(by: { $0.1 < $1.1 })
            {
                sentence += String(
                    format: "; it comes closest to the law's bound at p/(n d) = %.3g, %.3g× eps·√(n d / p)",
                    closest.0.pOverND,
                    closest.1
                )
            }
            if let law = last.lawBound {
                sentence += String(format: "; at the largest p it is %.3g× the law's bound", last.lipSupportLower / law)
            }
            if let floor = last.interpFloor, floor > 0 {
                sentence += String(format: " and %.3g× the interpolation floor", last.lipSupportLower / floor)
            }
            let beaten = points.filter { point in point.plainAdam.map { point.lipSupportLower < $0 } ?? false }
            if !beaten.isEmpty {
                let gains = beaten.compactMap { point in point.plainAdam.map { point.lipSupportLower / $0 } }
                sentence += String(
                    format: "; below plain Adam at %d of %d widths (down to %.0f%% of it)",
                    beaten.count,
                    points.filter { $0.plainAdam != nil }.count,
                    100 * (gains.min() ?? 1)
                )
            }
            sentences.append(sentence + ".")
        }
        return sentences
    }

    /// The frontier figure: per group, the smallest lip_support_lower at each p, with plain Adam
    /// and the interpolation floor beside it and the law's bound (fixed, not fitted) across.
    func frontierFigure() -> Chart {
        var chart = Chart(
            title: "The smoothest interpolant found, over every trainer and regulariser",
            xLabel: "p / (n d)",
            yLabel: "smallest lip_support_lower (cells with eps ≥ \(fmt(epsFraction)) × noise level)"
        )
        let points = frontier
        var groups: [String] = []
        for point in points where !groups.contains(point.group) { groups.append(point.group) }
        for group in groups {
            let mine = points.filter { $0.group == group }
            var series = Chart.Series(name: group, points: mine.map { ($0.pOverND, $0.lipSupportLower, nil, nil) })
            let plain = mine.compactMap { point in point.plainAdam.map { (x: point.pOverND, y: $0) } }
            if plain.count >= 1 { series.baselines.append(Chart.Baseline(kind: .plainAdam, points: plain)) }
            let floors = mine.compactMap { point in point.interpFloor.map { (x: point.pOverND, y: $0) } }
            if !floors.isEmpty { series.baselines.append(Chart.Baseline(kind: .interpolationFloor, points: floors)) }
            chart.series.append(series)
            // The law's bound for this group, eps sqrt(n d / p) = eps (p / (n d))^(-1/2), with the
            // median eps of the cells on the frontier: a straight line, not fitted.
            let eps = Statistics.median(
                mine.compactMap { point in point.lawBound.map { $0 * point.pOverND.squareRoot() } }
            )
            let law = eps.map { eps in mine.map { (x: $0.pOverND, y: eps / $0.pOverND.squareRoot()) } } ?? []
            if law.count >= 2 {
                // One legend entry for all groups' lines.
                let label = chart.references.isEmpty ? "law's bound eps·√(n d / p)" : ""
                chart.references.append(Chart.ReferenceLine(label: label, points: law))
            }
        }
        return chart
    }
}
