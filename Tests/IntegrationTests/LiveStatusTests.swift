import Foundation
import Testing

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// The coordinator's live status endpoint, read by a real browser, promtool and `status --connect`.
@Suite(.serialized) struct LiveStatusTests {
    static func tool(_ name: String) -> String? {
        ["/usr/bin/\(name)", "/usr/local/bin/\(name)", "/bin/\(name)"].first {
            FileManager.default.isExecutableFile(atPath: $0)
        }
    }

    /// GETs a URL (10 s timeout).
    func get(_ url: String) throws -> (status: Int, body: String) {
        let done = DispatchSemaphore(value: 0)
        let result = LockedBox()
        URLSession.shared.dataTask(with: URL(string: url)!) { data, response, _ in
            result.set(
                (response as? HTTPURLResponse)?.statusCode ?? 0,
                data.map { String(decoding: $0, as: UTF8.self) } ?? ""
            )
            done.signal()
        }.resume()
        guard done.wait(timeout: .now() + 10) == .success else { throw CLIError(message: "GET \(url) timed out") }
        return result.get()
    }

    /// A sweep of slow cells with the status endpoint on, and two workers.
    func startSweep(_ box: Sandbox) throws -> (coordinator: Spawned, workers: [Spawned], base: String) {
        // Cells of a few seconds each (at the fast BLAS kernels too), so that the page can show one running.
        let spec = try box.sweep("live", n: 200, seeds: [0, 1, 2, 3], widths: [4, 8, 16], steps: 60000)
        let coordinator = try box.coordinator(spec, db: "live.db", extra: ["--status-port", "0"])
        let endpoint = try box.endpoint(of: coordinator)
        let workers = try (0..<2).map { try box.worker(endpoint, name: "w\($0)") }
        var base = ""
        try waitUntil("the status endpoint", timeout: 30) {
            guard
                let range = coordinator.stderr.range(of: #"url=http://127\.0\.0\.1:\d+/"#, options: .regularExpression)
            else { return false }
            base = String(coordinator.stderr[range].dropFirst(4).dropLast())
            return true
        }
        try waitUntil("both workers and a first result", timeout: 120) {
            let status = try get(base + "/status")
            guard status.status == 200,
                let json = try? JSONSerialization.jsonObject(with: Data(status.body.utf8)) as? [String: Any]
            else { return false }
            return status.body.contains("\"done\":") && !status.body.contains("\"done\":0")
                && json["workers_total"] as? Int == 2 && (json["workers"] as? [Any])?.count == 2
        }
        return (coordinator, workers, base)
    }

    @Test(.enabled(if: tool("chromium") != nil, "needs Debian's chromium"))
    func livePageShowsProgressAndWorkersInARealBrowser() throws {
        let box = try Sandbox()
        let (coordinator, workers, base) = try startSweep(box)
        defer { for process in [coordinator] + workers { process.kill9() } }
        let chromium = Self.tool("chromium")!
        // A cell whose runner has reported its phase and step: the page must show it. (Training
        // these cells takes about a second at the fast BLAS kernels, so the report may come from
        // either phase.)
        try waitUntil("a running cell with its step", timeout: 60) {
            try get(base + "/status").body.range(of: #""phase":"(train|lipschitz)""#, options: .regularExpression)
                != nil
        }
        let flags = [
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars",
            "--virtual-time-budget=5000",
        ]
        let screenshot = box.path("live-page.png")
        let shot = try Spawned(
            [],
            name: "chromium-shot",
            directory: box.directory,
            launcher: [chromium] + flags + ["--window-size=1200,1100", "--screenshot=\(screenshot)", base + "/"],
            isosweep: false
        )
        _ = try? shot.wait(timeout: 90)
        let dom = try Spawned(
            [],
            name: "chromium-dom",
            directory: box.directory,
            launcher: [chromium] + flags + ["--dump-dom", base + "/"],
            isosweep: false
        )
        _ = try? dom.wait(timeout: 90)
        let html = dom.stdout
        // Rendered by the page's script from /status: progress and both workers.
        #expect(
            html.range(of: #"<p id="progress">cells \d+/12 done, \d+ failed"#, options: .regularExpression) != nil,
            "\(html.prefix(3000))"
        )
        let workerIDs = workers.compactMap { w -> String? in
            guard let r = w.stderr.range(of: #"id=[^ ]+"#, options: .regularExpression) else { return nil }
            return String(w.stderr[r].dropFirst(3))
        }
        #expect(workerIDs.count == 2)
        for id in workerIDs { #expect(html.contains("<td class=\"worker\">\(id)</td>"), "worker \(id) not shown") }
        // Each worker's BLAS kernels, as its HELLO named them.
        let kernels = try Regex(#"<td class="blas">[A-Za-z0-9]+</td>"#)
        #expect(html.matches(of: kernels).count == 2, "\(html.prefix(4000))")
        #expect(html.contains("<img id=\"figure\""))
        // A running cell: its phase, its step out of max_steps, and its bar.
        #expect(
            html.range(
                of: #"<td class="phase">(train|lipschitz)</td><td class="step">\d+ / 60000</td>"#,
                options: .regularExpression
            )
                != nil,
            "no running cell on the page: \(html.prefix(4000))"
        )
        #expect(html.contains("class=\"cellbar"))
        let png = try Data(contentsOf: URL(fileURLWithPath: screenshot))
        #expect(png.starts(with: [0x89, 0x50, 0x4E, 0x47]) && png.count > 10_000)
        print("live page screenshot: \(screenshot)")
    }

    @Test func statusJSONMetricsAndStatusConnect() throws {
        let box = try Sandbox()
        let (coordinator, workers, base) = try startSweep(box)
        defer { for process in [coordinator] + workers { process.kill9() } }
        let status = try get(base + "/status")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(status.body.utf8)) as? [String: Any])
        #expect(json["total"] as? Int == 12)
        #expect(
            (json["workers"] as? [[String: Any]])?.allSatisfy {
                $0["last_heartbeat_ms_ago"] is Int && $0["slots"] as? Int == 1
            } == true
        )
        #expect(json["cells_per_second"] is Double && json["failures"] is [Any])
        // The kernels each worker's cells run (both workers run on this machine: the same ones).
        let cores = (json["workers"] as? [[String: Any]])?.compactMap { $0["blas_core"] as? String } ?? []
        #expect(cores.count == 2 && Set(cores).count == 1 && !["", "unknown"].contains(cores[0]), "\(cores)")
        let metrics = try get(base + "/metrics")
        #expect(metrics.status == 200)
        #expect(
            metrics.body.contains("isosweep_cells{state=\"done\"}")
                && metrics.body.contains("# HELP isosweep_workers_alive")
        )
        // Every cell state is exported, cancelled included.
        for state in ["queued", "leased", "done", "failed", "cancelled"] {
            #expect(metrics.body.contains("isosweep_cells{state=\"\(state)\"}"), "\(state)")
        }
        if let promtool = Self.tool("promtool") {
            try metrics.body.write(toFile: box.path("metrics.txt"), atomically: true, encoding: .utf8)
            #expect(shell("'\(promtool)' check metrics < '\(box.path("metrics.txt"))'") == 0)
        } else {
            Issue.record("promtool (Debian's prometheus package) is missing: make test installs it")
        }
        let page = try get(base + "/")
        #expect(page.body.contains("fetch('/status?workers_page='"))
        // Aggregated for many workers: counts by condition, the top workers, pages of the list.
        #expect((json["worker_states"] as? [String: Int])?.values.reduce(0, +) == 2)
        #expect((json["top_workers"] as? [Any])?.count == 2)
        let beyond = try get(base + "/status?workers_page=7")
        let clamped = try #require(try JSONSerialization.jsonObject(with: Data(beyond.body.utf8)) as? [String: Any])
        #expect(clamped["workers_page"] as? Int == 0 && (clamped["workers"] as? [Any])?.count == 2)
        #expect(try get(base + "/figure.svg").body.hasPrefix("<svg"))
        let connect = try runIsosweep(["status", "--connect", base])
        #expect(connect.status == 0, "\(connect.stderr)")
        #expect(connect.stdout.contains("sweep live: 12 cells") && connect.stdout.contains("workers alive: 2"))
        #expect(
            connect.stdout.components(separatedBy: "BLAS \(cores.first ?? "?"), ").count - 1 == 2,
            "\(connect.stdout)"
        )
        #expect(connect.stdout.contains("running cells:") && connect.stdout.contains("waiting for a worker"))
        let nothing = try runIsosweep(["status", "--connect", "http://127.0.0.1:9"])
        #expect(nothing.status != 0 && nothing.stderr.contains("--status-port"))
    }
}

/// A value handed from a URLSession callback to the waiting test.
final class LockedBox: @unchecked Sendable {
    // @unchecked: set once before the semaphore is signalled, read after the wait.
    private var value = (0, "")
    private let lock = NSLock()
    func set(_ status: Int, _ body: String) { lock.withLock { value = (status, body) } }
    func get() -> (Int, String) { lock.withLock { value } }
}
