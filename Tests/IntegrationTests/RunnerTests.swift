import Foundation
import SweepCore
import SweepStore
import Testing

/// Cells run in cell-runner child processes of the worker: a runner that dies costs one attempt
/// of one cell, never the worker or its other cells. Real processes, real kill -9.
@Suite struct RunnerTests {
    @Test func aRunnerKilledMidCellCostsOneAttemptOfThatCellOnly() throws {
        let box = try Sandbox()
        let spec = try box.sweep("runnerkill", seeds: [0, 1], widths: [4, 8], steps: 20_000)
        let coordinator = try box.coordinator(spec, db: "rk.db")
        let endpoint = try box.endpoint(of: coordinator)
        let worker = try box.worker(endpoint, name: "worker", slots: 2)
        defer { for process in [coordinator, worker] { process.kill9() } }
        var runners: [Int32] = []
        try waitUntil("two cells running in two runners", timeout: 60) {
            runners = childProcesses(of: worker.pid)
            return trainings(in: worker.stderr).count >= 2 && runners.count >= 2
        }
        kill(runners[0], SIGKILL)
        #expect(try coordinator.wait(timeout: 240) == 0, "\(coordinator.stderr.suffix(2000))")
        let store = try ResultStore(path: box.path("rk.db"), readOnly: true)
        let expected = Set(try SweepSpec.load(path: spec).cells().map(\.key))
        let results = try store.results()
        #expect(results.count == expected.count && Set(results.map(\.key)) == expected)
        // The killed runner's cell was tried twice, every other cell once.
        #expect(results.map(\.attempt).sorted() == [1, 1, 1, 2])
        #expect(worker.stderr.contains("a cell runner died") && worker.stderr.contains("killed by SIGKILL"))
        // The worker never left: it registered once and is still running.
        #expect(worker.isRunning)
        #expect(coordinator.stderr.components(separatedBy: "joined from").count - 1 == 1, "\(coordinator.stderr)")
        #expect(!coordinator.stderr.contains("registered again") && !coordinator.stderr.contains("stopped responding"))
    }

    @Test func runnersLeaveSigtermAndSigintToTheirWorker() throws {
        let box = try Sandbox()
        let spec = try box.sweep("runnerterm", seeds: [0], widths: [4, 8], steps: 20_000)
        let coordinator = try box.coordinator(spec, db: "rt.db")
        let worker = try box.worker(try box.endpoint(of: coordinator), name: "worker", slots: 1)
        defer { for process in [coordinator, worker] { process.kill9() } }
        var runners: [Int32] = []
        try waitUntil("a cell running in a runner", timeout: 60) {
            runners = childProcesses(of: worker.pid)
            return !trainings(in: worker.stderr).isEmpty && !runners.isEmpty
        }
        // What a terminal's Ctrl-C or systemd's stop sends to the whole process group.
        kill(runners[0], SIGINT)
        kill(runners[0], SIGTERM)
        #expect(try coordinator.wait(timeout: 240) == 0, "\(coordinator.stderr.suffix(2000))")
        #expect(try ResultStore(path: box.path("rt.db"), readOnly: true).results().allSatisfy { $0.attempt == 1 })
        #expect(!worker.stderr.contains("a cell runner died"))
    }

    @Test func aRunnerThatDiedWhileIdleIsReplacedWhenTheNextCellComes() throws {
        let box = try Sandbox()
        let port = Int.random(in: 20_000..<30_000)
        let first = try box.sweep("idle1", seeds: [0], widths: [4], steps: 50)
        let coordinator = try box.coordinator(first, db: "i1.db", bind: "tcp://127.0.0.1:\(port)", name: "c1")
        let endpoint = try box.endpoint(of: coordinator)
        let worker = try box.worker(endpoint, name: "worker")
        defer { worker.kill9() }
        #expect(try coordinator.wait(timeout: 120) == 0, "\(coordinator.stderr.suffix(2000))")
        // The sweep is done; the worker waits for a coordinator with its runner idle. Kill it.
        let runners = childProcesses(of: worker.pid)
        try #require(runners.count == 1)
        kill(runners[0], SIGKILL)
        let second = try box.sweep("idle2", seeds: [1], widths: [4], steps: 50)
        let next = try box.coordinator(second, db: "i2.db", bind: endpoint, name: "c2")
        defer { next.kill9() }
        #expect(try next.wait(timeout: 120) == 0, "\(next.stderr.suffix(2000))")
        #expect(worker.isRunning)
        #expect(worker.stderr.contains("a cell runner died while idle"))
        #expect(try ResultStore(path: box.path("i2.db"), readOnly: true).results().map(\.attempt) == [1])
    }

    @Test func aPoisonCellEndsFailedWithItsSignalWhileTheRestCompletes() throws {
        let box = try Sandbox()
        let run = try runIsosweep(
            [
                "bench", "dispatch", "--workers", "2", "--cells", "300", "--poison", "1", "--db", box.path("p.db"),
                "--log-level", "info",
            ],
            timeout: 120
        )
        #expect(run.status == 0, "\(run.stderr.suffix(2000))")
        let figures = try run.json()
        #expect(figures["committed"] as? Int == 300 && figures["failed"] as? Int == 1)
        let failed = try ResultStore(path: box.path("p.db"), readOnly: true).cells().filter { $0.state == .failed }
        #expect(failed.count == 1)
        #expect(failed.first?.attempts == 3)
        #expect(failed.first?.lastError?.contains("the cell runner died: killed by SIGABRT") == true, "\(failed)")
        // Both workers stayed registered through three crashes.
        #expect(run.stderr.components(separatedBy: "joined from").count - 1 == 2)
        #expect(!run.stderr.contains("registered again") && !run.stderr.contains("stopped responding"))
    }

    @Test func aTimeLimitEndsACellWithItsMetricsAndTheThreadsItWasGiven() throws {
        let box = try Sandbox()
        let file = box.path("limited.yaml")
        try """
        name: limited
        resources:
          threads: 2
          time_limit: 2s
        parameters:
          n: {value: 256}
          d: {value: 16}
          width: {value: 64}
          max_steps: {value: 100000000}
          target_mse: {value: 0}
        """.write(toFile: file, atomically: true, encoding: .utf8)
        let started = Date()
        let run = try runIsosweep(["run", file, "--workers", "1", "--db", box.path("l.db")], timeout: 120)
        #expect(run.status == 0, "\(run.stderr.suffix(2000))")
        #expect(Date().timeIntervalSince(started) < 60)
        let table = try runIsosweep(["table", box.path("l.db"), "--format", "json"])
        let rows = try #require(try JSONSerialization.jsonObject(with: Data(table.stdout.utf8)) as? [[String: Any]])
        #expect(rows.count == 1)
        let row = try #require(rows.first)
        #expect(row["stop_reason"] as? String == "time_limit")
        #expect(row["blas_threads"] as? Int == 2)
        #expect((row["steps"] as? Int ?? 0) > 0 && (row["steps"] as? Int ?? 0) < 100_000_000)
        for metric in ["train_mse", "eps", "lip_lower", "lip_upper", "lip_support_lower", "peak_rss_bytes"] {
            #expect(row[metric] is NSNumber, "\(metric)")
        }
    }

    @Test func aCellThatIgnoresItsTimeLimitIsKilledAfterTheGrace() throws {
        let box = try Sandbox()
        let started = Date()
        let run = try runIsosweep(
            [
                "bench", "dispatch", "--workers", "1", "--cells", "20", "--hang", "1", "--time-limit", "1s",
                "--max-attempts", "1", "--db", box.path("h.db"),
            ],
            timeout: 120
        )
        #expect(run.status == 0, "\(run.stderr.suffix(2000))")
        // A 1 s limit and the 2 s minimum grace: killed after 3 s, not left to hold its lease.
        #expect(Date().timeIntervalSince(started) < 60)
        let figures = try run.json()
        #expect(figures["committed"] as? Int == 20 && figures["failed"] as? Int == 1)
        let failed = try ResultStore(path: box.path("h.db"), readOnly: true).cells().filter { $0.state == .failed }
        #expect(failed.first?.lastError?.contains("killed after its time limit of 1.0 seconds") == true, "\(failed)")
    }

    @Test func runnersEndWithTheirWorker() throws {
        let box = try Sandbox()
        let spec = try box.sweep("orphans", seeds: [0], widths: [4, 8], steps: 200_000)
        let coordinator = try box.coordinator(spec, db: "o.db")
        defer { coordinator.kill9() }
        let worker = try box.worker(try box.endpoint(of: coordinator), name: "worker", slots: 2)
        var runners: [Int32] = []
        try waitUntil("two runners", timeout: 60) {
            runners = childProcesses(of: worker.pid)
            return runners.count >= 2 && trainings(in: worker.stderr).count >= 2
        }
        worker.kill9()
        // A runner notices within a second or two that its worker is gone, even mid-cell.
        try waitUntil("the runners to exit", timeout: 10) { runners.allSatisfy { !isAlive($0) } }
    }
}

/// Whether `pid` is a process that has not ended (a zombie has).
func isAlive(_ pid: Int32) -> Bool {
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
        let close = stat.lastIndex(of: ")")
    else { return false }
    return stat[stat.index(after: close)...].split(separator: " ").first != "Z"
}

/// The processes whose parent is `pid`, from /proc.
func childProcesses(of pid: Int32) -> [Int32] {
    let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
    return entries.compactMap { entry -> Int32? in
        guard let child = Int32(entry),
            let stat = try? String(contentsOfFile: "/proc/\(entry)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return nil }
        // After "pid (comm)": the state, then the parent's pid.
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        return fields.count > 1 && Int32(fields[1]) == pid ? child : nil
    }.sorted()
}
