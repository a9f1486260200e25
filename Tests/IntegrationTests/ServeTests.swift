import Foundation
import SweepCore
import SweepStore
import Testing

/// `isosweep serve` on the database of a real sweep with a FAILED cell, read by Chromium.
@Suite struct ServeTests {
    @Test(.enabled(if: LiveStatusTests.tool("chromium") != nil, "needs Debian's chromium"))
    func theResultsServerRendersTheReportTheCellsACellAndTheFailuresInChromium() throws {
        let box = try Sandbox()
        let spec = box.path("served.yaml")
        try """
        name: served
        method: grid
        max_attempts: 1
        parameters:
          n: {value: 32}
          d: {value: 4}
          width: {values: [2, 8, 32]}
          seed: {values: [0, 1]}
          max_steps: {value: 300}
        variants:
          - {data: sphere}
          - {data: file, data_file: \(box.path("missing.csv")), classes: [a, b], width: 4, seed: 0}
        """.write(toFile: spec, atomically: true, encoding: .utf8)
        let db = box.path("served.db")
        let run = try runIsosweep(["run", spec, "--db", db], timeout: 300)
        #expect(run.status == 1, "one cell FAILED: \(run.stderr.suffix(500))")
        let failed = try #require(try ResultStore(path: db, readOnly: true).cells(state: .failed).first)
        let serve = try Spawned(["serve", db, "--port", "0"], name: "serve", directory: box.directory)
        defer { serve.kill9() }
        var base = ""
        try waitUntil("the results server", timeout: 30) {
            guard let range = serve.stderr.range(of: #"url=http://127\.0\.0\.1:\d+/"#, options: .regularExpression)
            else { return false }
            base = String(serve.stderr[range].dropFirst(4).dropLast())
            return true
        }
        let chromium = LiveStatusTests.tool("chromium")!
        let flags = [
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars",
            "--virtual-time-budget=5000",
        ]
        func dom(_ path: String) throws -> String {
            let page = try Spawned(
                [],
                name: "chromium-\(abs(path.hashValue))",
                directory: box.directory,
                launcher: [chromium] + flags + ["--dump-dom", base + path],
                isosweep: false
            )
            _ = try? page.wait(timeout: 90)
            return page.stdout
        }
        // The report, with its figures and the navigation.
        let report = try dom("/")
        #expect(report.contains("<h1>Sweep report: served</h1>") && report.contains("<img src=\"law-ratio.svg\""))
        #expect(report.contains("<a href=\"/cells\">cells</a>"))
        // The cell table, sorted by lip_support_lower descending and filtered by state.
        let table = try dom("/cells?state=done&sort=lip_support_lower&order=desc")
        #expect(table.contains("<p id=\"count\">6 cells</p>"), "\(table.prefix(1500))")
        // Numeric cells of each row: n, d, width, seed, p, eps, fit_fraction, lip_support_lower, ...
        let values = table.components(separatedBy: "<tr class=\"done\">").dropFirst().compactMap { row -> Double? in
            let cells = row.components(separatedBy: "<td>").dropFirst()
            let numbers = cells.compactMap { Double($0.prefix { $0 != "<" }) }
            return numbers.count > 7 ? numbers[7] : nil
        }
        #expect(values.count == 6 && values == values.sorted(by: >), "\(values)")
        let all = try dom("/cells")
        #expect(all.contains("<p id=\"count\">7 cells</p>") && all.contains("<tr class=\"failed\">"))
        // A cell's page, and the failed cell with its error.
        let cell = try dom("/cell/\(failed.key)")
        #expect(cell.contains("<h1>Cell \(failed.key.prefix(12))</h1>") && cell.contains("missing.csv"))
        let failures = try dom("/failed")
        #expect(failures.contains("1 failed cells") && failures.contains(String(failed.key.prefix(12))))
        #expect(failures.contains("isosweep requeue DB --failed"))
        // A picture of the table: Chromium rendered something.
        let screenshot = box.path("cells.png")
        let shot = try Spawned(
            [],
            name: "chromium-shot",
            directory: box.directory,
            launcher: [chromium] + flags + ["--window-size=1300,900", "--screenshot=\(screenshot)", base + "/cells"],
            isosweep: false
        )
        _ = try? shot.wait(timeout: 90)
        let png = try Data(contentsOf: URL(fileURLWithPath: screenshot))
        #expect(png.starts(with: [0x89, 0x50, 0x4E, 0x47]) && png.count > 10_000)
        // The status endpoint speaks the coordinator's language: finished, one FAILED.
        let status = try runIsosweep(["status", "--connect", base])
        #expect(status.stdout.contains("sweep served: 7 cells (finished)"), "\(status.stdout)")
    }
}
