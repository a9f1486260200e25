public import Diagnostics
import Foundation
import SweepCore
public import SweepStore

extension ScalingAnalysis {
    /// Metric columns of the aggregated table, in the order a reader needs them; the baselines
    /// when some configuration has them (science version 2 on).
    var aggregatedColumns: [(String, (Configuration) -> Statistics.Summary?)] {
        var columns: [(String, (Configuration) -> Statistics.Summary?)] = [
            ("eps", \.eps), ("fit_fraction", \.fitFraction), ("lip_support_lower", \.lipSupportLower),
            ("lip_lower", \.lipLower), ("lip_upper", \.lipUpper),
        ]
        if configurations.contains(where: { $0.lipInitSupportLower != nil || $0.interpFloor != nil }) {
            columns += [("lip_init_support_lower", \.lipInitSupportLower), ("interp_floor", \.interpFloor)]
        }
        return columns + [("law_ratio", \.lawRatio), ("test_mse", \.testMSE), ("cost_s", \.cost)]
    }

    /// One row per configuration: mean ± 95% half-width over seeds (markdown), or mean, sd and
    /// half-width columns (csv), or everything (json).
    public func renderConfigurations(_ format: SweepTable.Format) throws -> String {
        switch format {
        case .json:
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
            return String(decoding: try encoder.encode(configurations), as: UTF8.self)
        case .csv:
            var header = ["series", "n", "d", "width", "p", "p_over_nd", "seeds"]
            for (name, _) in aggregatedColumns { header += ["\(name)_mean", "\(name)_sd", "\(name)_ci95"] }
            header.insert("law_scale", at: header.firstIndex(of: "law_ratio_mean")!)
            var rows: [[String]] = []
            for row in configurations {
                var cells = [
                    row.series, "\(row.n)", "\(row.d)", "\(row.width)", "\(row.p)", fmt(row.pOverND), "\(row.seeds)",
                ]
                for (name, value) in aggregatedColumns {
                    if name == "law_ratio" { cells.append(fmt(row.lawScale)) }
                    let s = value(row)
                    cells += [fmt(s?.mean), fmt(s?.standardDeviation), fmt(s?.halfWidth95)]
                }
                rows.append(cells)
            }
            return TextTable.csv(header: header, rows: rows)
        case .markdown:
            let table = configurationTable()
            return TextTable.markdown(header: table.header, rows: table.rows)
        }
    }

    /// The aggregated table as text cells: mean ± 95% half-width over seeds.
    public func configurationTable() -> (header: [String], rows: [[String]]) {
        var header = ["n", "d", "width", "p", "p/(n d)", "seeds"] + aggregatedColumns.map(\.0)
        header.insert("law_scale", at: header.firstIndex(of: "law_ratio")!)
        let showSeries = Set(configurations.map(\.series)).count > Set(configurations.map { "\($0.n),\($0.d)" }).count
        if showSeries { header.insert("series", at: 0) }
        var rows: [[String]] = []
        for row in configurations {
            var cells = [
                "\(row.n)", "\(row.d)", "\(row.width)", "\(row.p)", fmt(row.pOverND),
                row.diverged > 0 ? "\(row.seeds) (\(row.diverged) diverged)" : "\(row.seeds)",
            ]
            for (name, value) in aggregatedColumns {
                if name == "law_ratio" { cells.append(fmt(row.lawScale)) }
                cells.append(
                    value(row).map { s in s.halfWidth95.map { "\(fmt(s.mean)) ± \(fmt($0))" } ?? fmt(s.mean) } ?? ""
                )
            }
            if showSeries { cells.insert(row.series, at: 0) }
            rows.append(cells)
        }
        return (header, rows)
    }

    /// The fits as a markdown table.
    public func renderFits() -> String {
        let header = [
            "series", "cells (eps ≥ \(fmt(epsFraction)) × noise level)", "slope lip_support_lower", "slope lip_lower",
            "slope lip_upper", "law_ratio min", "law_ratio median", "law_ratio < 1", "interpolation at p/n",
        ]
        let rows = fits.map { fit -> [String] in
            func slope(_ line: Statistics.Line?) -> String {
                guard let line else { return "" }
                return line.slopeHalfWidth95.map { String(format: "%.3f ± %.3f", line.slope, $0) }
                    ?? String(format: "%.3f", line.slope)
            }
            return [
                fit.series, "\(fit.cells)", slope(fit.lipSupportLower), slope(fit.lipLower), slope(fit.lipUpper),
                fmt(fit.lawRatioMin), fmt(fit.lawRatioMedian), "\(fit.lawRatioBelowOne)",
                fmt(fit.interpolationThresholdPOverN),
            ]
        }
        return TextTable.markdown(header: header, rows: rows)
    }

    /// The fits as JSON.
    public func renderFitsJSON() throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        return String(decoding: try encoder.encode(AnalysisDocument(analysis: self)), as: UTF8.self)
    }

    /// What the numbers say, one sentence per fit.
    public var findings: [String] {
        fits.map { fit in
            var sentence =
                "\(fit.series == "all" ? "All series together (x = p/(n d))" : fit.series): \(Self.verdict(fit))"
            if let threshold = fit.interpolationThresholdPOverN {
                sentence += String(
                    format: "; the networks interpolate (fit_fraction ≥ 0.99) from p/n = %.3g",
                    threshold
                )
            } else if fit.series != "all" {
                sentence += "; no width interpolates"
            }
            return sentence + "."
        }
    }
}

/// Writes a sweep's report: report.md, index.html, the figures as SVG (and PNG when
/// rsvg-convert is installed) and analysis.json.
public enum ReportWriter {
    /// Writes the report of `store` into `directory`; returns the path of index.html.
    @discardableResult
    public static func write(
        store: ResultStore,
        directory: String,
        epsFraction: Double = 0.5
    ) throws(IsosweepError) -> String {
        do {
            return try writeFiles(store: store, directory: directory, epsFraction: epsFraction)
        } catch let error as IsosweepError {
            throw error
        } catch {
            throw IsosweepError(
                .badFile,
                "cannot write the report to \(directory) (\(error.localizedDescription))",
                remedy: "check that the folder can be created and written, or choose another with -o"
            )
        }
    }

    /// Cells the report lists one by one; a larger sweep's cells are in `isosweep table`.
    static let everyCellLimit = 5000

    private static func writeFiles(store: ResultStore, directory: String, epsFraction: Double) throws -> String {
        let table = try SweepTable(store: store)
        let analysis = ScalingAnalysis(results: table.results, epsFraction: epsFraction)
        let sweep = try store.sweep()
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        func write(_ text: String, _ name: String) throws {
            try text.write(
                toFile: (directory as NSString).appendingPathComponent(name),
                atomically: true,
                encoding: .utf8
            )
        }
        var figureFiles: [(name: String, svg: String, png: String?)] = []
        let converter = ["/usr/bin/rsvg-convert", "/usr/local/bin/rsvg-convert"].first {
            FileManager.default.isExecutableFile(atPath: $0)
        }
        // law_ratio against p / (n d) first: it is what the law speaks of.
        let figures = analysis.figures()
        for (name, chart) in figures.filter({ $0.name == "law-ratio" }) + figures.filter({ $0.name != "law-ratio" }) {
            try write(chart.svg(), "\(name).svg")
            var png: String?
            if let converter {
                let process = Process()
                process.executableURL = URL(fileURLWithPath: converter)
                process.arguments = [
                    "-o", (directory as NSString).appendingPathComponent("\(name).png"),
                    (directory as NSString).appendingPathComponent("\(name).svg"),
                ]
                try process.run()
                process.waitUntilExit()
                if process.terminationStatus == 0 { png = "\(name).png" }
            }
            figureFiles.append((name, "\(name).svg", png))
        }
        try write(try analysis.renderFitsJSON(), "analysis.json")
        let name = sweep?.name ?? "sweep"
        let cells = table.results.count
        var md = "# Sweep report: \(name)\n\n"
        md +=
            "\(cells) finished cells in \(analysis.configurations.count) configurations, science version \(sweep?.scienceVersion ?? 0).\n"
        md +=
            "The law of robustness is a lower bound: a network that fits below the noise level has lip ≥ C·eps·√(n d / p). law_ratio = lip_support_lower / (eps·√(n d / p)) takes C as 1; the proven constant (Bubeck and Sellke, Theorem 3) is 1 / (2⁹ √c) with a logarithmic factor, far below 1, so law_ratio < 1 contradicts nothing: what law_ratio shows is how close the networks come to the bound and how that moves with p. The law predicts no slope for trained networks. Cells count in the fits when they fit below the noise level (eps ≥ \(fmt(analysis.epsFraction)) × the cell's noise level); every cell, whatever its eps, is listed under \"Every cell\".\n"
        md +=
            "\(analysis.excludedCells) of \(cells) cells do not fit that far below the noise level and are left out of the fits and the figures of the Lipschitz constant; \(analysis.configurationsWithExcludedSeeds) of \(analysis.configurations.count) configurations lost at least one seed to this.\n\n"
        md += "## What the numbers say\n\n" + analysis.findings.map { "- \($0)" }.joined(separator: "\n") + "\n\n"
        md += "## Scaling fits\n\n" + analysis.renderFits() + "\n\n"
        if analysis.comparesMethods {
            md +=
                "## The smoothest interpolant found\n\nFor each series and p, the smallest mean lip_support_lower over every training method whose cells fit below the noise level, against the law's bound eps·√(n d / p) (ratio = lip / bound, the bound's constant taken as 1, with the eps of the same counted cells) and the interpolation floor (no exact interpolant goes below it). Each point is a network measured at that p.\n\n"
                + (analysis.exponentFindings + analysis.frontierFindings).map { "- \($0)" }.joined(separator: "\n")
                + "\n\n"
                + analysis.renderFrontier() + "\n\n"
        }
        md +=
            "## Figures\n\n" + figureFiles.map { "![\($0.name)](\($0.png ?? $0.svg))" }.joined(separator: "\n\n")
            + "\n\n"
        md +=
            "## Configurations (mean ± 95% CI over seeds)\n\n" + (try analysis.renderConfigurations(.markdown)) + "\n\n"
        md +=
            "## Every cell\n\n"
            + ScalingAnalysis.renderEveryCell(
                table.results,
                epsFraction: analysis.epsFraction,
                limit: Self.everyCellLimit
            ) + "\n\n"
        if let warning = table.undecodableWarning { md += "**Warning:** \(warning).\n\n" }
        md += "## Sweep file\n\n```yaml\n\(sweep?.source ?? "")\n```\n"
        try write(md, "report.md")
        try write(
            html(markdown: md, title: "isosweep: \(name)", figures: figureFiles.map(\.svg), analysis: analysis),
            "index.html"
        )
        return (directory as NSString).appendingPathComponent("index.html")
    }

    static func html(markdown: String, title: String, figures: [String], analysis: ScalingAnalysis) -> String {
        let escape = escapeHTML
        var body = ""
        var table: [[String]] = []
        var inCode = false
        func endTable() {
            guard let header = table.first else { return }
            body += TextTable.html(header: header, rows: Array(table.dropFirst()))
            table = []
        }
        for line in markdown.split(separator: "\n", omittingEmptySubsequences: false).map(String.init) {
            if line.hasPrefix("```") {
                body += inCode ? "</pre>\n" : "<pre>"
                inCode.toggle()
                continue
            }
            if inCode {
                body += escape(line) + "\n"
                continue
            }
            if line.hasPrefix("|") {
                let cells = line.split(separator: "|", omittingEmptySubsequences: false).dropFirst().dropLast()
                    .map { $0.trimmingCharacters(in: .whitespaces) }
                if !cells.allSatisfy({ $0.allSatisfy { $0 == "-" } }) { table.append(cells) }
                continue
            }
            endTable()
            if line.hasPrefix("# ") {
                body += "<h1>\(escape(String(line.dropFirst(2))))</h1>\n"
            } else if line.hasPrefix("## ") {
                body += "<h2>\(escape(String(line.dropFirst(3))))</h2>\n"
            } else if line.hasPrefix("- ") {
                body += "<p class=\"finding\">\(escape(String(line.dropFirst(2))))</p>\n"
            } else if line.hasPrefix("![") {
                continue
            } else if !line.isEmpty {
                body += "<p>\(escape(line))</p>\n"
            }
            if line == "## Figures" {
                body +=
                    figures.map { "<img src=\"\(escape($0))\" alt=\"\(escape($0))\">" }.joined(separator: "\n") + "\n"
            }
        }
        endTable()
        return """
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8"><title>\(escape(title))</title>
            <style>body{font-family:Helvetica,Arial,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}
            table{border-collapse:collapse;font-size:13px;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
            th{background:#f4f4f4}img{max-width:100%;margin:1em 0;display:block}.finding{background:#f6f9ff;padding:6px 10px;border-left:3px solid #4e79a7}
            pre{background:#f6f6f6;padding:1em;overflow:auto}</style></head>
            <body>
            \(body)</body></html>

            """
    }
}

/// analysis.json: the analysis, with the frontier and its exponents when the sweep compares
/// training methods.
struct AnalysisDocument: Encodable {
    let analysis: ScalingAnalysis

    enum Key: String, CodingKey {
        case frontier
        case frontierExponents = "frontier_exponents"
    }

    func encode(to encoder: any Encoder) throws {
        try analysis.encode(to: encoder)
        if analysis.comparesMethods {
            var container = encoder.container(keyedBy: Key.self)
            try container.encode(analysis.frontier, forKey: .frontier)
            try container.encode(analysis.frontierExponents, forKey: .frontierExponents)
        }
    }
}
