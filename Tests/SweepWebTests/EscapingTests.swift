import Foundation
import GRDB
import SweepAnalysis
import SweepCore
import SweepStore
import SweepWeb
import Testing
import TrainingCore

/// Every value `serve` and the live page put into HTML passes `escapeHTML`: markup in a sweep
/// name, a cell key, parameters, a result, a worker name, an error and query values comes out as
/// text, never as an element or an attribute the page did not write.
@Suite struct EscapingTests {
    /// Markup that would open an element, close an attribute (either quote) or start an entity.
    static let markup = #"<b>x</b> & "q" 'a' " onmouseover="alert(1)"#

    /// The elements the pages write themselves.
    static let ownElements: Set<String> = [
        "html", "head", "meta", "title", "style", "body", "nav", "a", "h1", "h2", "h3", "p", "table", "tr", "th", "td",
        "form", "select", "option", "input", "button", "pre", "code", "img", "ul", "li", "div", "span", "em",
        "strong", "figure", "figcaption", "br", "sup", "sub",
    ]

    /// The names of every element opened or closed in `html`.
    func elements(_ html: String) -> Set<String> {
        let pattern = try! NSRegularExpression(pattern: "<\\s*/?\\s*([A-Za-z][A-Za-z0-9]*)")
        let range = NSRange(html.startIndex..., in: html)
        return Set(
            pattern.matches(in: html, range: range).compactMap { match in
                Range(match.range(at: 1), in: html).map { String(html[$0]).lowercased() }
            }
        )
    }

    /// `html` has no element of its own making from the markup, no attribute broken out of, and
    /// shows the markup as text.
    func expectInert(_ html: String, _ page: String, sourceLocation: SourceLocation = #_sourceLocation) {
        let foreign = elements(html).subtracting(Self.ownElements)
        #expect(foreign.isEmpty, "\(page) has elements it did not write: \(foreign)", sourceLocation: sourceLocation)
        #expect(!html.contains("<b>"), "\(page) let <b> through", sourceLocation: sourceLocation)
        #expect(!html.contains(#"onmouseover=""#), "\(page) let an attribute out", sourceLocation: sourceLocation)
        #expect(
            html.contains("&lt;b&gt;x&lt;/b&gt;"),
            "\(page) does not show the markup",
            sourceLocation: sourceLocation
        )
    }

    @Test func everyPageBuilderEscapesWhatItIsGiven() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("isosweep-escape-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("s.db").path
        let name = Self.markup.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
        let spec = try SweepSpec.parse(
            "name: \"\(name)\"\nparameters:\n  n: {value: 16}\n  d: {value: 3}\n  width: {values: [2, 4]}\n  max_steps: {value: 20}\n",
            file: "s.yaml"
        )
        let cells = try spec.cells()
        let store = try ResultStore(path: path)
        _ = try store.prepare(spec: spec, cells: cells)
        // One cell trained for real, its stored result given a metric whose name and value are markup.
        let result = try Cell.run(cells[0].parameters!).result
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let commit = Scheduler.Commit(
            key: cells[0].key,
            payload: Array(try encoder.encode(result)),
            worker: Self.markup,
            attempt: 1,
            identity: [1]
        )
        try store.apply(updates: [], commits: [commit], workers: [])
        // The other cell failed on a worker with a hostile name, with a hostile error, under a
        // hostile key, with a file parameter that is markup (as a hostile merge could leave).
        let hostileKey = Self.markup
        let database = try DatabaseQueue(path: path)
        try database.write { db in
            let stored = try String.fetchOne(
                db,
                sql: "SELECT result FROM results WHERE key = ?",
                arguments: [cells[0].key]
            )!
            var object = try JSONSerialization.jsonObject(with: Data(stored.utf8)) as! [String: Any]
            object[Self.markup] = Self.markup
            let json = String(decoding: try JSONSerialization.data(withJSONObject: object), as: UTF8.self)
            try db.execute(sql: "UPDATE results SET result = ? WHERE key = ?", arguments: [json, cells[0].key])
            var work = try JSONSerialization.jsonObject(with: Data(cells[1].json)) as! [String: Any]
            work["data"] = "file"
            work["data_file"] = Self.markup
            let workJSON = String(decoding: try JSONSerialization.data(withJSONObject: work), as: UTF8.self)
            try db.execute(
                sql:
                    "UPDATE cells SET key = ?, work = ?, state = 'failed', attempts = 3, worker = ?, last_error = ? WHERE key = ?",
                arguments: [hostileKey, workJSON, Self.markup, Self.markup, cells[1].key]
            )
        }
        let reader = try ResultStore(path: path, readOnly: true)
        let query = ["sort": Self.markup, "order": Self.markup, "width": Self.markup, Self.markup: Self.markup]
        let table = try ResultsPages.cellTable(reader, query: query)
        expectInert(table, "the filtered cell table")
        let all = try ResultsPages.cellTable(reader, query: ["sort": Self.markup])
        expectInert(all, "the cell table")
        #expect(all.contains("2 cells"))
        expectInert(try #require(try ResultsPages.cellPage(reader, key: hostileKey)), "the failed cell's page")
        expectInert(try #require(try ResultsPages.cellPage(reader, key: cells[0].key)), "the done cell's page")
        expectInert(try ResultsPages.failedPage(reader), "the failed cells")
        expectInert(ResultsPages.noCell(key: Self.markup), "the missing cell")
        expectInert(
            ResultsPages.failure(database: Self.markup, error: MarkupError(text: Self.markup)),
            "the unreadable database"
        )
        expectInert(TextTable.html(header: [Self.markup], rows: [[Self.markup]]), "the live page's table")
        let report = directory.appendingPathComponent("report").path
        _ = try ReportWriter.write(store: reader, directory: report)
        expectInert(try String(contentsOfFile: report + "/index.html", encoding: .utf8), "the report")
    }

    @Test func theEscapingFunctionCoversEveryCharacterThatEndsTextOrAnAttribute() {
        #expect(
            escapeHTML(#"<a href="x" title='y'>&amp;</a>"#)
                == "&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;amp;&lt;/a&gt;"
        )
        #expect(escapeHTML("plain text, ünïcode ✓") == "plain text, ünïcode ✓")
    }
}

/// An error whose description is the given text.
struct MarkupError: Error, CustomStringConvertible {
    var text: String
    var description: String { text }
}
