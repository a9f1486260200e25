public import Diagnostics
import Foundation
import SweepAnalysis
import SweepCore
public import SweepStore
import TrainingCore

/// The pages of `isosweep serve`, from a sweep database alone: a sortable, filterable table of
/// the cells, a page per cell, and the failed cells with their errors. (The report itself is
/// `ReportWriter`'s.)
public enum ResultsPages {
    /// The navigation bar every page starts with.
    public static let navigation =
        "<nav><a href=\"/\">report</a> · <a href=\"/cells\">cells</a> · <a href=\"/failed\">failed cells</a></nav>"

    static let style = """
        <style>body{font-family:Helvetica,Arial,sans-serif;max-width:1400px;margin:1em auto;padding:0 1em;color:#222}
        nav{margin:0 0 1em;padding:6px 0;border-bottom:1px solid #ddd}table{border-collapse:collapse;font-size:13px}
        td,th{border:1px solid #ccc;padding:3px 7px;text-align:right}th{background:#f4f4f4}th a{color:#222}
        td.text{text-align:left}form{margin:.5em 0 1em}.failed{color:#b00}.cancelled{color:#777}pre{white-space:pre-wrap}</style>
        """

    static func page(_ title: String, _ body: String) -> String {
        """
        <!DOCTYPE html>
        <html lang="en"><head><meta charset="utf-8"><title>\(escapeHTML(title))</title>\(style)</head>
        <body>\(navigation)
        <h1>\(escapeHTML(title))</h1>
        \(body)</body></html>

        """
    }

    /// A cell with its stored row and result, as the pages show it.
    struct Row {
        var cell: ResultStore.StoredCell
        var parameters: CellParameters?
        var result: CellResult?

        var stateName: String { cell.state == .leased ? "running" : cell.state.rawValue }

        /// The value of column `name`: a parameter, a metric, or the cell's own fields.
        func value(_ name: String) -> String {
            switch name {
            case "key": return cell.key
            case "state": return stateName
            case "attempts": return "\(cell.attempts)"
            case "worker": return cell.worker ?? ""
            case "error": return cell.lastError ?? ""
            default: break
            }
            if let parameter = CellParameters.parameter(named: name), let parameters {
                return parameter.value(parameters)?.description ?? ""
            }
            guard let metric = ResultsPages.metrics.first(where: { $0.name == name }), let result else { return "" }
            return metric.value(result.metrics).map(fmt) ?? ""
        }

        /// A number for sorting, when the column is numeric here.
        func number(_ name: String) -> Double? { Double(value(name)) }
    }

    /// The metrics the cell table shows.
    static let metrics: [(name: String, value: @Sendable (CellMetrics) -> Double?)] = [
        ("p", { Double($0.p) }), ("eps", \.eps), ("fit_fraction", \.fitFraction),
        ("lip_support_lower", \.lipSupportLower), ("lip_lower", \.lipLower), ("lip_upper", \.lipUpper),
        ("lip_init_support_lower", \.lipInitSupportLower), ("interp_floor", \.interpFloor),
        ("law_ratio", \.lawRatio), ("seconds", { $0.trainSeconds + $0.lipSeconds }),
    ]

    /// The cells in `state` (all: nil) with their results, and a warning when some results
    /// could not be decoded.
    static func rows(
        _ store: ResultStore,
        state: Scheduler.CellState?
    ) throws(IsosweepError) -> (rows: [Row], warning: String?) {
        let cells = try store.cells(state: state)
        var results: [String: CellResult] = [:]
        var warning: String?
        if state == nil || state == .done {
            let decoded = try store.cellResults()
            results = Dictionary(decoded.results, uniquingKeysWith: { first, _ in first })
            warning = decoded.warning
        }
        let rows = cells.map { cell in
            Row(
                cell: cell,
                parameters: CellWork(json: Array(cell.work.utf8))?.parameters,
                result: results[cell.key]
            )
        }
        return (rows, warning)
    }

    /// The cell table: `query` filters by `state` and by any parameter (`width=64`), and sorts by
    /// any column (`sort=lip_support_lower&order=desc`).
    public static func cellTable(_ store: ResultStore, query: [String: String]) throws(IsosweepError) -> String {
        let state = query["state"].flatMap { $0 == "running" ? .leased : Scheduler.CellState(rawValue: $0) }
        let (all, warning) = try rows(store, state: state)
        var rows = all
        let filters = query.filter { CellParameters.parameter(named: $0.key) != nil && !$0.value.isEmpty }
        rows = rows.filter { row in filters.allSatisfy { row.value($0.key) == $0.value } }
        let parameters = CellParameters.catalogue.map(\.name).filter { name in
            ["n", "d", "width", "seed"].contains(name) || Set(rows.map { $0.value(name) }).count > 1
        }
        let columns = ["key", "state"] + parameters + metrics.map(\.name) + ["attempts", "worker"]
        let sort = query["sort"].flatMap { columns.contains($0) ? $0 : nil } ?? "key"
        let descending = query["order"] == "desc"
        rows.sort { a, b in
            let (x, y) = descending ? (b, a) : (a, b)
            if let u = x.number(sort), let v = y.number(sort) { return u < v }
            if x.number(sort) != nil { return true }  // numbers before blanks
            if y.number(sort) != nil { return false }
            return x.value(sort) < y.value(sort)
        }
        func link(_ column: String) -> String {
            var next = query
            next["sort"] = column
            next["order"] = column == sort && !descending ? "desc" : "asc"
            let text = next.sorted { $0.key < $1.key }.map { "\(percent($0.key))=\(percent($0.value))" }.joined(
                separator: "&"
            )
            let arrow = column == sort ? (descending ? " ▼" : " ▲") : ""
            return "<th><a href=\"/cells?\(escapeHTML(text))\">\(escapeHTML(column))\(arrow)</a></th>"
        }
        var html = "<form method=\"get\" action=\"/cells\">state <select name=\"state\"><option value=\"\">any</option>"
        for option in ["queued", "running", "done", "failed", "cancelled"] {
            let selected = query["state"] == option ? " selected" : ""
            html += "<option\(selected)>\(option)</option>"
        }
        html += "</select>"
        for name in parameters {
            html +=
                " \(escapeHTML(name)) <input name=\"\(escapeHTML(name))\" size=\"6\" value=\"\(escapeHTML(filters[name] ?? ""))\">"
        }
        html += " <button>filter</button></form>\n"
        if let warning { html += "<p class=\"failed\">\(escapeHTML(warning))</p>\n" }
        html +=
            "<p id=\"count\">\(rows.count) cells</p>\n<table id=\"cells\"><tr>" + columns.map(link).joined() + "</tr>\n"
        for row in rows {
            html += "<tr class=\"\(escapeHTML(row.stateName))\">"
            for column in columns {
                let text = column == "key" ? String(row.cell.key.prefix(12)) : row.value(column)
                let cell =
                    column == "key"
                    ? "<a href=\"/cell/\(escapeHTML(percent(row.cell.key)))\">\(escapeHTML(text))</a>"
                    : escapeHTML(text)
                html +=
                    ["key", "state", "worker"].contains(column) ? "<td class=\"text\">\(cell)</td>" : "<td>\(cell)</td>"
            }
            html += "</tr>\n"
        }
        return page("Cells of \(try store.sweep()?.name ?? "the sweep")", html + "</table>\n")
    }

    /// One cell: its state, parameters, every metric of its result, attempts, worker and error.
    public static func cellPage(_ store: ResultStore, key: String) throws(IsosweepError) -> String? {
        guard let cell = try store.cells(includingDropped: true).first(where: { $0.key == key }) else { return nil }
        var html = "<table id=\"cell\">"
        func row(_ name: String, _ value: String) {
            html += "<tr><th>\(escapeHTML(name))</th><td class=\"text\">\(escapeHTML(value))</td></tr>\n"
        }
        row("key", cell.key)
        row("state", cell.state == .leased ? "running" : cell.state.rawValue)
        row("attempts", "\(cell.attempts)")
        row("worker", cell.worker ?? "")
        row("last error", cell.lastError ?? "")
        row("in the sweep", cell.inSweep ? "yes" : "no (left out by a --force switch)")
        html += "</table>\n<h2>Parameters</h2>\n<table id=\"parameters\">"
        if let parameters = CellWork(json: Array(cell.work.utf8))?.parameters {
            for parameter in CellParameters.catalogue {
                if let value = parameter.value(parameters) { row(parameter.name, value.description) }
            }
        }
        html += "</table>\n"
        if let stored = try store.result(key: key),
            let object = try? JSONSerialization.jsonObject(with: Data(stored.json.utf8)) as? [String: Any]
        {
            html += "<h2>Result</h2>\n<table id=\"result\">"
            for name in object.keys.sorted() where CellParameters.parameter(named: name) == nil {
                row(name, object[name].map { $0 is NSNull ? "null" : "\($0)" } ?? "")
            }
            html += "</table>\n"
        }
        return page("Cell \(key.prefix(12))", html)
    }

    /// The FAILED cells with their last errors (and the cells that wait for another attempt).
    public static func failedPage(_ store: ResultStore) throws(IsosweepError) -> String {
        let troubled = try store.troubledCells()
        var html = "<p id=\"count\">\(troubled.filter { $0.state == .failed }.count) failed cells"
        html += ", \(troubled.filter { $0.state != .failed }.count) retrying after an error</p>\n"
        html +=
            "<table id=\"failed\"><tr><th>key</th><th>state</th><th>attempts</th><th>worker</th><th>last error</th></tr>\n"
        for cell in troubled {
            html += "<tr class=\"\(escapeHTML(cell.state.rawValue))\"><td class=\"text\">"
            html +=
                "<a href=\"/cell/\(escapeHTML(percent(cell.key)))\">\(escapeHTML(String(cell.key.prefix(12))))</a></td>"
            html += "<td class=\"text\">\(escapeHTML(cell.state.rawValue))</td><td>\(cell.attempts)</td>"
            html += "<td class=\"text\">\(escapeHTML(cell.worker ?? ""))</td>"
            html += "<td class=\"text\"><pre>\(escapeHTML(cell.lastError ?? ""))</pre></td></tr>\n"
        }
        html += "</table>\n"
        html += "<p>Put them back with <code>isosweep requeue DB --failed</code>.</p>\n"
        return page("Failed cells", html)
    }

    /// The page for a cell key that is not in the sweep (the key as asked, shortened).
    public static func noCell(key: String) -> String {
        "<p>no cell \(escapeHTML(String(key.prefix(64)))) in this sweep</p>"
    }

    /// The page for a database that cannot be read.
    public static func failure(database: String, error: any Error) -> String {
        "<p>cannot read \(escapeHTML(database)): \(escapeHTML("\(error)"))</p>"
    }

    static func percent(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-._~")))
            ?? text
    }
}
