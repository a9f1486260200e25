import Foundation
import SweepCore
import SweepStore
import Testing

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// Cores and memory with real processes: what a worker advertises bounds what it is leased, a
/// cell no worker can hold waits (and says why), and a runner over its allowance is stopped.
@Suite(.serialized) struct ResourceTests {
    static let gib = 1 << 30

    /// The coordinator's status URL, once it logged it.
    func statusBase(_ coordinator: Spawned) throws -> String {
        var base = ""
        try waitUntil("the status endpoint", timeout: 30) {
            guard
                let range = coordinator.stderr.range(of: #"url=http://127\.0\.0\.1:\d+/"#, options: .regularExpression)
            else { return false }
            base = String(coordinator.stderr[range].dropFirst(4).dropLast())
            return true
        }
        return base
    }

    func status(_ base: String) throws -> [String: Any] {
        let data = try Data(contentsOf: URL(string: base + "/status")!)
        return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    @Test func aOneGiBWorkerIsNeverLeasedMoreThanItHoldsAndACellTooLargeForEveryWorkerWaits() throws {
        let box = try Sandbox()
        // Six cells of 400 MiB each (a fixed allowance, far above their estimates): 1 GiB holds
        // two at once, although the worker's 4 cores and 4 slots would take four.
        let held = try box.sweep(
            "held",
            n: 200,
            seeds: [0, 1],
            widths: [4, 8, 16],
            steps: 3000,
            extra: "resources: {memory: 400MiB}"
        )
        let coordinator = try box.coordinator(held, db: "held.db", extra: ["--status-port", "0"])
        defer { coordinator.kill9() }
        let base = try statusBase(coordinator)
        let endpoint = try box.endpoint(of: coordinator)
        let worker = try box.worker(endpoint, name: "worker", slots: 4, extra: ["--cores", "4", "--memory", "1GiB"])
        defer { worker.kill9() }
        var mostLeased = 0
        var finished = false
        while !finished {
            guard coordinator.isRunning, let json = try? status(base) else {
                if !coordinator.isRunning { break }
                Thread.sleep(forTimeInterval: 0.05)
                continue
            }
            finished = json["finished"] as? Bool ?? false
            for entry in json["workers"] as? [[String: Any]] ?? [] {
                let memory = entry["memory_in_use_bytes"] as? Int ?? 0
                let leased = entry["leased"] as? Int ?? 0
                #expect(entry["memory_bytes"] as? Int == Self.gib && entry["cores"] as? Int == 4)
                #expect(memory <= Self.gib, "leased \(memory) bytes to a worker with 1 GiB")
                #expect(leased <= 2, "\(leased) cells of 400 MiB leased to a worker with 1 GiB")
                mostLeased = max(mostLeased, leased)
            }
            Thread.sleep(forTimeInterval: 0.05)
        }
        #expect(try coordinator.wait(timeout: 180) == 0, "\(coordinator.stderr.suffix(2000))")
        #expect(mostLeased == 2, "memory, not cores or slots, should have bounded the worker at two cells")
        #expect(try ResultStore(path: box.path("held.db"), readOnly: true).results().count == 6)

        // Width 200000: the test set's pre-activations alone are 1.6 GB. No worker holds it.
        let large = try box.sweep("large", seeds: [0], widths: [4, 8, 200_000], steps: 200)
        let second = try box.coordinator(
            large,
            db: "large.db",
            bind: endpoint,
            name: "c2",
            extra: ["--status-port", "0"]
        )
        defer { second.kill9() }
        let secondBase = try statusBase(second)
        var json: [String: Any] = [:]
        try waitUntil("the two small cells done and the large one waiting", timeout: 120) {
            json = (try? status(secondBase)) ?? [:]
            let counts = json["counts"] as? [String: Int] ?? [:]
            return counts["done"] == 2 && json["waiting_count"] as? Int == 1
        }
        // It stays waiting: never leased, never tried.
        Thread.sleep(forTimeInterval: 2)
        json = try status(secondBase)
        #expect((json["counts"] as? [String: Int])?["leased"] == 0)
        let waiting = try #require((json["waiting"] as? [[String: Any]])?.first)
        let reason = waiting["reason"] as? String ?? ""
        #expect(
            reason.range(
                of: #"^needs [\d.]+ GiB; largest worker has 1 GiB free of 1 GiB$"#,
                options: .regularExpression
            )
                != nil,
            "\(reason)"
        )
        let cells = try ResultStore(path: box.path("large.db"), readOnly: true).cells()
        let big = try #require(cells.first { $0.key == waiting["key"] as? String })
        #expect(big.state == .queued && big.attempts == 0)
        #expect(second.stderr.contains("waits: needs"))
        let connect = try runIsosweep(["status", "--connect", secondBase])
        #expect(connect.stdout.contains("waiting for a worker that can hold them: 1"), "\(connect.stdout)")
        #expect(connect.stdout.contains("largest worker has 1 GiB free of 1 GiB"))
    }

    @Test func aWorkerAdvertisesTheCoresItsAffinityAllowsAndTheMemoryItIsGiven() throws {
        let box = try Sandbox()
        let spec = try box.sweep("pinned", seeds: [0], widths: [4], steps: 50)
        let coordinator = try box.coordinator(spec, db: "pinned.db")
        defer { coordinator.kill9() }
        let endpoint = try box.endpoint(of: coordinator)
        // Pinned to CPU 0 by taskset: one core, and --slots follows --cores.
        let pinned = try Spawned(
            ["worker", "--connect", endpoint, "--memory", "3GiB", "--log-level", "debug"],
            name: "pinned",
            directory: box.directory,
            launcher: ["/usr/bin/taskset", "-c", "0"]
        )
        defer { pinned.kill9() }
        #expect(try coordinator.wait(timeout: 120) == 0, "\(coordinator.stderr.suffix(2000))")
        #expect(
            coordinator.stderr.contains("with 1 slots, 1 cores, 3 GiB memory and "),
            "\(coordinator.stderr.suffix(3000))"
        )
    }

    @Test func aRunnerOverItsMemoryAllowanceIsStoppedAndOnlyItsCellFails() throws {
        let box = try Sandbox()
        let run = try runIsosweep(
            [
                "bench", "dispatch", "--workers", "1", "--cells", "50", "--hog", "1", "--max-attempts", "1", "--db",
                box.path("m.db"),
            ],
            timeout: 120
        )
        #expect(run.status == 0, "\(run.stderr.suffix(2000))")
        let figures = try run.json()
        #expect(figures["committed"] as? Int == 50 && figures["failed"] as? Int == 1)
        let failed = try ResultStore(path: box.path("m.db"), readOnly: true).cells().filter { $0.state == .failed }
        #expect(
            failed.first?.lastError?.contains("exceeded its memory allowance of 128 MiB (resident") == true,
            "\(failed)"
        )
    }
}
