import Foundation
import SweepCore

/// A small SVG chart: log or linear axes with ticks, points with error bars per series, shaded
/// bands, reference lines and a legend. Enough for a paper's figure; nothing more.
public struct Chart: Sendable {
    public struct Series: Sendable {
        public var name: String
        /// (x, y, yLow, yHigh): a point with its error bar.
        public var points: [(x: Double, y: Double, low: Double?, high: Double?)]
        /// A shaded band (x, lower, upper), drawn under the points.
        public var band: [(x: Double, lower: Double, upper: Double)] = []
        /// Lines beside the points, in the series' colour with their kind's dashes.
        public var baselines: [Baseline] = []
    }

    /// A line drawn beside a series' points: what the values are compared with.
    public struct Baseline: Sendable {
        public var kind: BaselineKind
        public var points: [(x: Double, y: Double)]
    }

    /// The kinds of baseline, each with its dashes and legend entry.
    public enum BaselineKind: String, Sendable, CaseIterable {
        case initialNetwork = "initial network (same search)"
        case interpolationFloor = "interpolation floor"
        case plainAdam = "plain adam"

        var dashes: String {
            switch self {
            case .initialNetwork: "5 3"
            case .interpolationFloor: "1.5 3"
            case .plainAdam: "8 3 2 3"
            }
        }
    }

    public struct ReferenceLine: Sendable {
        public var label: String
        public var points: [(x: Double, y: Double)]
    }

    public var title: String
    public var xLabel: String
    public var yLabel: String
    public var logX = true
    public var logY = true
    public var series: [Series] = []
    public var references: [ReferenceLine] = []
    /// Vertical marker lines (x, label).
    public var markers: [(x: Double, label: String)] = []

    static let palette = [
        "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac",
    ]
    static let width = 830.0
    static let height = 500.0
    static let left = 80.0
    static let right = 270.0
    static let top = 50.0
    static let bottom = 65.0

    /// The chart as a standalone SVG document.
    public func svg() -> String {
        let area = plotArea()
        var out = """
            <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(Self.width))" height="\(Int(Self.height))" viewBox="0 0 \(Int(Self.width)) \(Int(Self.height))" font-family="Helvetica, Arial, sans-serif" font-size="12">
            <rect width="100%" height="100%" fill="white"/>
            <text x="\(f(Self.left + area.width / 2))" y="28" text-anchor="middle" font-size="15" font-weight="bold">\(escapeHTML(title))</text>

            """
        out += axes(area)
        // Bands, then markers and reference lines, then points on top.
        out += bandsMarkersAndReferences(area)
        out += baselineLines(area)
        out += seriesPoints(area)
        out += legend(area)
        return out + "</svg>\n"
    }

    /// Where the plot is drawn, and how data values map onto it.
    private struct PlotArea {
        var width: Double
        var height: Double
        var xRange: (Double, Double)
        var yRange: (Double, Double)
        var logX: Bool
        var logY: Bool

        /// The SVG x coordinate of the data value `x`.
        func px(_ x: Double) -> Double { Chart.left + width * Axis.fraction(x, xRange, log: logX) }
        /// The SVG y coordinate of the data value `y` (SVG's y grows downwards).
        func py(_ y: Double) -> Double { Chart.top + height * (1 - Axis.fraction(y, yRange, log: logY)) }
    }

    /// The plot area, with axes that span everything drawn: points with their error bars, bands,
    /// reference lines, baselines and markers.
    private func plotArea() -> PlotArea {
        let xs =
            series.flatMap { $0.points.map(\.x) + $0.band.map(\.x) } + references.flatMap { $0.points.map(\.x) }
            + markers.map(\.x)
        var ys = series.flatMap { s in
            s.points.flatMap { [$0.y, $0.low ?? $0.y, $0.high ?? $0.y] } + s.band.flatMap { [$0.lower, $0.upper] }
        }
        ys += references.flatMap { $0.points.map(\.y) }
        ys += series.flatMap { $0.baselines.flatMap { $0.points.map(\.y) } }
        return PlotArea(
            width: Self.width - Self.left - Self.right,
            height: Self.height - Self.top - Self.bottom,
            xRange: Axis.range(xs, log: logX),
            yRange: Axis.range(ys, log: logY),
            logX: logX,
            logY: logY
        )
    }

    /// The grid lines, the tick labels of the major ticks, the plot's frame and the axis labels.
    private func axes(_ area: PlotArea) -> String {
        var out = ""
        for tick in Axis.ticks(area.xRange, log: logX) {
            let x = area.px(tick.value)
            out +=
                "<line x1=\"\(f(x))\" y1=\"\(f(Self.top))\" x2=\"\(f(x))\" y2=\"\(f(Self.top + area.height))\" stroke=\"\(tick.major ? "#ddd" : "#f0f0f0")\"/>\n"
            if tick.major {
                out +=
                    "<text x=\"\(f(x))\" y=\"\(f(Self.top + area.height + 18))\" text-anchor=\"middle\">\(escapeHTML(tick.label))</text>\n"
            }
        }
        for tick in Axis.ticks(area.yRange, log: logY) {
            let y = area.py(tick.value)
            out +=
                "<line x1=\"\(f(Self.left))\" y1=\"\(f(y))\" x2=\"\(f(Self.left + area.width))\" y2=\"\(f(y))\" stroke=\"\(tick.major ? "#ddd" : "#f0f0f0")\"/>\n"
            if tick.major {
                out +=
                    "<text x=\"\(f(Self.left - 8))\" y=\"\(f(y + 4))\" text-anchor=\"end\">\(escapeHTML(tick.label))</text>\n"
            }
        }
        out +=
            "<rect x=\"\(f(Self.left))\" y=\"\(f(Self.top))\" width=\"\(f(area.width))\" height=\"\(f(area.height))\" fill=\"none\" stroke=\"#333\"/>\n"
        out +=
            "<text x=\"\(f(Self.left + area.width / 2))\" y=\"\(f(Self.height - 18))\" text-anchor=\"middle\" font-size=\"13\">\(escapeHTML(xLabel))</text>\n"
        out +=
            "<text transform=\"translate(22 \(f(Self.top + area.height / 2))) rotate(-90)\" text-anchor=\"middle\" font-size=\"13\">\(escapeHTML(yLabel))</text>\n"
        return out
    }

    /// The series' shaded bands, the vertical markers and the reference lines: drawn before the
    /// points, so that the points stay on top.
    private func bandsMarkersAndReferences(_ area: PlotArea) -> String {
        var out = ""
        for (index, s) in series.enumerated() where s.band.count >= 2 {
            let color = Self.palette[index % Self.palette.count]
            let sorted = s.band.sorted { $0.x < $1.x }
            let upper = sorted.map { "\(f(area.px($0.x))),\(f(area.py($0.upper)))" }
            let lower = sorted.reversed().map { "\(f(area.px($0.x))),\(f(area.py($0.lower)))" }
            out +=
                "<polygon points=\"\((upper + lower).joined(separator: " "))\" fill=\"\(color)\" fill-opacity=\"0.12\" stroke=\"none\"/>\n"
        }
        for marker in markers {
            let x = area.px(marker.x)
            out +=
                "<line x1=\"\(f(x))\" y1=\"\(f(Self.top))\" x2=\"\(f(x))\" y2=\"\(f(Self.top + area.height))\" stroke=\"#555\" stroke-dasharray=\"2 4\"/>\n"
            out +=
                "<text x=\"\(f(x + 4))\" y=\"\(f(Self.top + 14))\" fill=\"#555\">\(escapeHTML(marker.label))</text>\n"
        }
        for reference in references where reference.points.count >= 2 {
            let path = reference.points.sorted { $0.x < $1.x }.map { "\(f(area.px($0.x))),\(f(area.py($0.y)))" }
                .joined(separator: " ")
            out +=
                "<polyline points=\"\(path)\" fill=\"none\" stroke=\"#111\" stroke-width=\"1.5\" stroke-dasharray=\"6 4\"/>\n"
        }
        return out
    }

    /// Each series' baselines, in the series' colour with their kind's dashes.
    private func baselineLines(_ area: PlotArea) -> String {
        var out = ""
        for (index, s) in series.enumerated() {
            let color = Self.palette[index % Self.palette.count]
            for baseline in s.baselines where baseline.points.count >= 2 {
                let path = baseline.points.sorted { $0.x < $1.x }.map { "\(f(area.px($0.x))),\(f(area.py($0.y)))" }
                out +=
                    "<polyline points=\"\(path.joined(separator: " "))\" fill=\"none\" stroke=\"\(color)\" stroke-width=\"1.3\" stroke-dasharray=\"\(baseline.kind.dashes)\"><title>\(escapeHTML(s.name)): \(baseline.kind.rawValue)</title></polyline>\n"
            }
        }
        return out
    }

    /// Each series' points with their error bars, joined by a faint line.
    private func seriesPoints(_ area: PlotArea) -> String {
        var out = ""
        for (index, s) in series.enumerated() {
            let color = Self.palette[index % Self.palette.count]
            let sorted = s.points.sorted { $0.x < $1.x }
            if sorted.count >= 2 {
                out +=
                    "<polyline points=\"\(sorted.map { "\(f(area.px($0.x))),\(f(area.py($0.y)))" }.joined(separator: " "))\" fill=\"none\" stroke=\"\(color)\" stroke-width=\"1.2\" stroke-opacity=\"0.6\"/>\n"
            }
            for point in sorted {
                let x = area.px(point.x)
                if let low = point.low, let high = point.high {
                    out +=
                        "<line x1=\"\(f(x))\" y1=\"\(f(area.py(low)))\" x2=\"\(f(x))\" y2=\"\(f(area.py(high)))\" stroke=\"\(color)\" stroke-width=\"1.5\"/>\n"
                }
                out +=
                    "<circle cx=\"\(f(x))\" cy=\"\(f(area.py(point.y)))\" r=\"3.5\" fill=\"\(color)\"><title>\(escapeHTML(s.name)): (\(point.x), \(point.y))</title></circle>\n"
            }
        }
        return out
    }

    /// The legend, right of the plot: the series, the labelled reference lines, the kinds of
    /// baseline drawn, and the band if any series has one.
    private func legend(_ area: PlotArea) -> String {
        var out = ""
        var y = Self.top + 8
        let lx = Self.left + area.width + 16
        for (index, s) in series.enumerated() {
            let color = Self.palette[index % Self.palette.count]
            out +=
                "<circle cx=\"\(f(lx + 6))\" cy=\"\(f(y))\" r=\"4\" fill=\"\(color)\"/><text x=\"\(f(lx + 16))\" y=\"\(f(y + 4))\">\(escapeHTML(s.name))</text>\n"
            y += 18
        }
        for reference in references where !reference.label.isEmpty {
            out +=
                "<line x1=\"\(f(lx))\" y1=\"\(f(y))\" x2=\"\(f(lx + 12))\" y2=\"\(f(y))\" stroke=\"#111\" stroke-dasharray=\"6 4\"/><text x=\"\(f(lx + 16))\" y=\"\(f(y + 4))\">\(escapeHTML(reference.label))</text>\n"
            y += 18
        }
        for kind in BaselineKind.allCases where series.contains(where: { $0.baselines.contains { $0.kind == kind } }) {
            out +=
                "<line x1=\"\(f(lx))\" y1=\"\(f(y))\" x2=\"\(f(lx + 12))\" y2=\"\(f(y))\" stroke=\"#555\" stroke-width=\"1.3\" stroke-dasharray=\"\(kind.dashes)\"/><text x=\"\(f(lx + 16))\" y=\"\(f(y + 4))\">\(escapeHTML(kind.rawValue))</text>\n"
            y += 18
        }
        if series.contains(where: { !$0.band.isEmpty }) {
            out +=
                "<rect x=\"\(f(lx))\" y=\"\(f(y - 6))\" width=\"12\" height=\"12\" fill=\"#888\" fill-opacity=\"0.25\"/><text x=\"\(f(lx + 16))\" y=\"\(f(y + 4))\">[lip_lower, lip_upper]</text>\n"
        }
        return out
    }
}

/// An SVG coordinate as text, to a tenth of a pixel.
private func f(_ v: Double) -> String { String(format: "%.1f", v) }

/// Axis ranges and ticks.
enum Axis {
    struct Tick {
        var value: Double
        var label: String
        var major: Bool
    }

    /// Padded range of the finite (and, on a log axis, positive) values.
    static func range(_ values: [Double], log: Bool) -> (Double, Double) {
        let usable = values.filter { $0.isFinite && (!log || $0 > 0) }
        guard var low = usable.min(), var high = usable.max() else { return log ? (0.1, 10) : (0, 1) }
        if log {
            if low == high {
                low /= 2
                high *= 2
            }
            let pad = pow(high / low, 0.05)
            return (low / pad, high * pad)
        }
        if low == high {
            low -= 0.5
            high += 0.5
        }
        let pad = (high - low) * 0.05
        return (low - pad, high + pad)
    }

    static func fraction(_ value: Double, _ range: (Double, Double), log: Bool) -> Double {
        if log {
            return (Foundation.log10(max(value, 1e-300)) - Foundation.log10(range.0))
                / (Foundation.log10(range.1) - Foundation.log10(range.0))
        }
        return (value - range.0) / (range.1 - range.0)
    }

    static func ticks(_ range: (Double, Double), log: Bool) -> [Tick] {
        if log {
            var ticks: [Tick] = []
            let first = Int(Foundation.floor(Foundation.log10(range.0)))
            let last = Int(Foundation.ceil(Foundation.log10(range.1)))
            let decades = last - first
            for exponent in first...last {
                let base = pow(10, Double(exponent))
                for multiple in 1...9 {
                    let value = base * Double(multiple)
                    guard value >= range.0 && value <= range.1 else { continue }
                    // With few decades, label 2 and 5 too, so every axis shows at least two labels.
                    let major = multiple == 1 || (decades <= 1 && (multiple == 2 || multiple == 5))
                    ticks.append(Tick(value: value, label: label(value), major: major))
                }
            }
            return ticks
        }
        let span = range.1 - range.0
        let step = pow(10, Foundation.floor(Foundation.log10(span / 5)))
        let nice = [1.0, 2, 5, 10].map { $0 * step }.first { span / $0 <= 8 } ?? step * 10
        var value = Foundation.ceil(range.0 / nice) * nice
        var ticks: [Tick] = []
        while value <= range.1 {
            ticks.append(Tick(value: value, label: label(abs(value) < nice / 1e6 ? 0 : value), major: true))
            value += nice
        }
        return ticks
    }

    static func label(_ value: Double) -> String {
        if value == 0 { return "0" }
        if abs(value) >= 1e4 || abs(value) < 1e-3 {
            return String(format: "%.0e", value).replacingOccurrences(of: "e+0", with: "e").replacingOccurrences(
                of: "e-0",
                with: "e-"
            )
        }
        return String(format: "%g", value)
    }
}

extension ScalingAnalysis {
    /// The three figures of a sweep: (a) the support Lipschitz bound against p / (n d) with the
    /// [lip_lower, lip_upper] band, the law's line and the baselines (initial network,
    /// interpolation floor), (b) eps against p / n, (c) law_ratio with the baselines in the same
    /// units.
    public func figures() -> [(name: String, chart: Chart)] {
        var seriesNames: [String] = []  // in the order of the configurations: by n, then d
        for configuration in configurations where !seriesNames.contains(configuration.series) {
            seriesNames.append(configuration.series)
        }
        func errorBar(_ s: Statistics.Summary) -> (Double?, Double?) {
            guard let half = s.halfWidth95 else { return (nil, nil) }
            return (s.mean - half, s.mean + half)
        }
        var lip = Chart(
            title: "Lipschitz constant of networks that fit below the noise level",
            xLabel: "p / (n d)   (parameters per data dimension)",
            yLabel: "lip_support_lower (mean ± 95% CI over seeds)"
        )
        var eps = Chart(
            title: "How far below the noise level the networks fit",
            xLabel: "p / n   (parameters per training point)",
            yLabel: "eps = noise level − train MSE"
        )
        eps.logY = false
        eps.markers = [(1, "p = n")]
        var ratio = Chart(
            title: "The law's constant, cell by cell: it should stay at or above about 1",
            xLabel: "p / (n d)",
            yLabel: "law_ratio = lip_support_lower / (eps √(n d / p))"
        )
        for name in seriesNames {
            let rows = configurations.filter { $0.series == name }.sorted { $0.p < $1.p }
            // The cells the fits use, and only those (`ScalingAnalysis.counts`).
            let fitted = rows.filter { $0.counted > 0 }
            var a = Chart.Series(name: name, points: [])
            for row in fitted {
                guard let s = row.countedLipSupportLower, s.mean > 0 else { continue }
                let (low, high) = errorBar(s)
                a.points.append((row.pOverND, s.mean, low.map { max($0, s.mean * 1e-3) }, high))
                if let l = row.countedLipLower?.mean, let u = row.countedLipUpper?.mean {
                    a.band.append((row.pOverND, l, u))
                }
            }
            a.baselines = Self.baselines(
                fitted,
                initial: { $0.countedLipInitSupportLower },
                floor: { $0.interpFloor }
            )
            lip.series.append(a)
            var b = Chart.Series(name: name, points: [])
            for row in rows {
                guard let s = row.eps else { continue }
                let (low, high) = errorBar(s)
                b.points.append((row.pOverN, s.mean, low, high))
            }
            eps.series.append(b)
            var c = Chart.Series(name: name, points: [])
            for row in fitted {
                guard let s = row.countedLawRatio, s.mean > 0 else { continue }
                let (low, high) = errorBar(s)
                c.points.append((row.pOverND, s.mean, low.map { max($0, s.mean * 1e-3) }, high))
            }
            c.baselines = Self.baselines(
                fitted,
                initial: { $0.countedInitLawRatio },
                floor: { $0.countedFloorLawRatio }
            )
            ratio.series.append(c)
        }
        // The law's bound itself, not a line fitted to the data: Lip = eps (p / (n d))^(-1/2),
        // with the fitted cells' median eps.
        let overall = fits.first { $0.series == "all" } ?? fits.first
        if let eps = overall?.epsMedian, eps > 0 {
            let xs = lip.series.flatMap { $0.points.map(\.x) }
            if let low = xs.min(), let high = xs.max() {
                lip.references.append(
                    Chart.ReferenceLine(
                        label: String(format: "law's bound: eps·(p/nd)^-1/2, eps = %.3g", eps),
                        points: [(low, eps / low.squareRoot()), (high, eps / high.squareRoot())]
                    )
                )
            }
        }
        // The law's bound itself: law_ratio = 1 (Lip = eps sqrt(n d / p)).
        let ratios = ratio.series.flatMap { $0.points.map(\.x) }
        if let low = ratios.min(), let high = ratios.max() {
            ratio.references.append(
                Chart.ReferenceLine(label: "law's bound: law_ratio = 1", points: [(low, 1), (high, 1)])
            )
        }
        var figures = [("lipschitz", lip), ("eps", eps), ("law-ratio", ratio)]
        if comparesMethods { figures.append(("frontier", frontierFigure())) }
        return figures
    }

    /// A series' baselines: the initial network and the interpolation floor, where the rows have them.
    static func baselines(
        _ rows: [Configuration],
        initial: (Configuration) -> Statistics.Summary?,
        floor: (Configuration) -> Statistics.Summary?
    ) -> [Chart.Baseline] {
        func line(_ kind: Chart.BaselineKind, _ value: (Configuration) -> Statistics.Summary?) -> Chart.Baseline? {
            let points = rows.compactMap { row in value(row).flatMap { $0.mean > 0 ? (row.pOverND, $0.mean) : nil } }
            return points.isEmpty ? nil : Chart.Baseline(kind: kind, points: points)
        }
        return [line(.initialNetwork, initial), line(.interpolationFloor, floor)].compactMap { $0 }
    }
}
