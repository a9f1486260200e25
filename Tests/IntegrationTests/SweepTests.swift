import Foundation
import SweepCore
import SweepStore
import Testing

/// Distributed sweeps with real processes over TCP loopback: workers and coordinators are
/// killed with SIGKILL in the middle, and no result is lost or recorded twice.
@Suite(.serialized) struct SweepTests {
    func expectEveryCellExactlyOnce(_ db: String, spec: String) throws {
        let store = try ResultStore(path: db, readOnly: true)
        let expected = Set(try SweepSpec.load(path: spec).cells().map(\.key))
        let results = try store.results()
        #expect(results.count == expected.count)
        #expect(Set(results.map(\.key)) == expected)
        #expect(try store.cells().allSatisfy { $0.state == .done })
    }

    @Test func threeWorkersCompleteASweep() throws {
        let box = try Sandbox()
        let spec = try box.sweep("three", steps: 300)
        let coordinator = try box.coordinator(spec, db: "three.db")
        let endpoint = try box.endpoint(of: coordinator)
        let workers = try (0..<3).map { try box.worker(endpoint, name: "w\($0)") }
        defer { for process in workers { process.kill9() } }
        #expect(try coordinator.wait(timeout: 180) == 0, "\(coordinator.stderr.suffix(2000))")
        try expectEveryCellExactlyOnce(box.path("three.db"), spec: spec)
        // Every worker took part, and each cell was trained once.
        let started = workers.map { trainings(in: $0.stderr) }
        #expect(started.allSatisfy { !$0.isEmpty })
        let twice = Dictionary(grouping: started.flatMap { $0 }, by: \.key).filter { $0.value.count > 1 }.keys
        #expect(
            started.flatMap { $0 }.count == 12,
            """
            trained more than once: \(twice.map { $0.prefix(12) })
            \(workers.map { w in w.stderr.split(separator: "\n").filter { line in twice.contains { line.contains($0) } }.joined(separator: "\n") })
            coordinator: \(coordinator.stderr.split(separator: "\n").filter { line in twice.contains { line.contains($0.prefix(12)) } || line.contains("warning") }.joined(separator: "\n"))
            """
        )
        let table = try runIsosweep(["table", box.path("three.db"), "--format", "csv"])
        #expect(table.status == 0)
        #expect(table.stdout.split(separator: "\n").count == 13)
        let status = try runIsosweep(["status", "--db", box.path("three.db")])
        #expect(status.stdout.contains("done: 12") && status.stdout.contains("workers seen: 3"))
        // The coordinator wrote the report at the end and said where.
        #expect(coordinator.stderr.contains("report: \(box.path("three-report/index.html"))"))
        #expect(FileManager.default.fileExists(atPath: box.path("three-report/report.md")))
        let fit = try runIsosweep(["fit", box.path("three.db"), "--format", "json"])
        #expect(fit.status == 0)
        let fits = try #require(try fit.json()["fits"] as? [[String: Any]])
        #expect(fits.count == 1 && fits[0]["series"] as? String == "n=48, d=6")
        let byConfig = try runIsosweep(["table", box.path("three.db"), "--by-config", "--format", "csv"])
        #expect(byConfig.stdout.split(separator: "\n").count == 5)  // header + 4 widths
    }

    @Test func killedWorkersCellsAreRedoneElsewhere() throws {
        let box = try Sandbox()
        let spec = try box.sweep("killworker", steps: 3000)
        let coordinator = try box.coordinator(spec, db: "kw.db")
        let endpoint = try box.endpoint(of: coordinator)
        let victim = try box.worker(endpoint, name: "victim")
        var victimCell = ""
        try waitUntil("the victim to start a cell", timeout: 60) {
            victimCell = trainings(in: victim.stderr).first?.key ?? ""
            return !victimCell.isEmpty
        }
        let survivor = try box.worker(endpoint, name: "survivor")
        defer { survivor.kill9() }
        victim.kill9()
        let killedAt = Date()
        // Liveness x interval = 0.6 s: the cell is re-leased to the survivor soon after. The
        // victim never delivered a result, so losing it does not use up an attempt.
        try waitUntil("the survivor to retrain the victim's cell", timeout: 60) {
            trainings(in: survivor.stderr).contains { $0.key == victimCell }
        }
        #expect(Date().timeIntervalSince(killedAt) < 30)
        #expect(coordinator.stderr.contains("stopped responding") || coordinator.stderr.contains("dead"))
        #expect(try coordinator.wait(timeout: 240) == 0, "\(coordinator.stderr.suffix(2000))")
        try expectEveryCellExactlyOnce(box.path("kw.db"), spec: spec)
        let record = try ResultStore(path: box.path("kw.db"), readOnly: true).results().first { $0.key == victimCell }
        #expect(record?.attempt == 1)
        #expect(record?.worker.isEmpty == false && record?.worker != nil)
    }

    @Test func killedCoordinatorResumesWithoutRetrainingFinishedCells() throws {
        let box = try Sandbox()
        let spec = try box.sweep("killcoord", seeds: [0, 1, 2, 3], steps: 2000)
        // A fixed port outside the kernel's ephemeral range, so that while it is free between the
        // kill and the restart, no other test's coordinator (bound to port 0) can be given it.
        let port = Int.random(in: 20_000..<30_000)
        let first = try box.coordinator(spec, db: "kc.db", bind: "tcp://127.0.0.1:\(port)", name: "coordinator1")
        let endpoint = try box.endpoint(of: first)
        #expect(endpoint == "tcp://127.0.0.1:\(port)")
        let workers = try (0..<2).map { try box.worker(endpoint, name: "w\($0)") }
        defer { for process in workers { process.kill9() } }
        try waitUntil("a few results", timeout: 120) {
            ((try? ResultStore(path: box.path("kc.db"), readOnly: true).results().count) ?? 0) >= 3
        }
        first.kill9()
        let committed = Set(try ResultStore(path: box.path("kc.db"), readOnly: true).results().map(\.key))
        #expect(committed.count >= 3 && committed.count < 16)
        let logOffsets = workers.map { $0.stderr.count }
        // The cell each worker was computing at the kill: offered back at HELLO, leased back, not redone.
        let inProgress = Set(
            workers.compactMap { trainings(in: $0.stderr).last?.key }.filter { !committed.contains($0) }
        )
        usleep(500_000)
        // The same port and database: workers reconnect by themselves.
        let second = try box.coordinator(spec, db: "kc.db", bind: endpoint, name: "coordinator2")
        #expect(try second.wait(timeout: 240) == 0, "\(second.stderr.suffix(2000))")
        try expectEveryCellExactlyOnce(box.path("kc.db"), spec: spec)
        #expect(workers.allSatisfy { $0.isRunning })  // never restarted by hand
        for (worker, offset) in zip(workers, logOffsets) {
            let after = trainings(in: String(worker.stderr.dropFirst(offset)))
            let retrained = after.filter { committed.contains($0.key) }
            #expect(retrained.isEmpty, "finished cells trained again: \(retrained.map(\.key))")
            let restarted = after.filter { inProgress.contains($0.key) }
            #expect(restarted.isEmpty, "cells running at the kill were started again: \(restarted.map(\.key))")
        }
        #expect(!inProgress.isEmpty)
        #expect(second.stderr.contains("resumes 1 cells it was already computing"))
        // Everything committed before the kill is still there, unchanged.
        let results = try ResultStore(path: box.path("kc.db"), readOnly: true).results()
        #expect(committed.isSubset(of: Set(results.map(\.key))))
    }

    @Test func aCellThatAlwaysFailsEndsFailedAndTheRestCompletes() throws {
        let box = try Sandbox()
        // 20 rows: n = 8 trains, n = 500 cannot (more rows asked than the file has).
        var csv = ""
        for i in 0..<20 { csv += "\(Double(i % 5) + 0.5),\(Double(i % 3) - 1.5),\(i % 2 == 0 ? "a" : "b")\n" }
        try csv.write(toFile: box.path("data.csv"), atomically: true, encoding: .utf8)
        let spec = box.path("failing.yaml")
        try """
        name: failing
        parameters:
          n: {values: [8, 500]}
          d: {value: 2}
          width: {values: [2, 4]}
          data: {value: file}
          data_file: {value: \(box.path("data.csv"))}
          classes: {value: [a, b]}
          max_steps: {value: 100}
        """.write(toFile: spec, atomically: true, encoding: .utf8)
        let coordinator = try box.coordinator(spec, db: "f.db", extra: ["--max-attempts", "2"])
        let endpoint = try box.endpoint(of: coordinator)
        let workers = try (0..<2).map { try box.worker(endpoint, name: "w\($0)") }
        defer { for process in workers { process.kill9() } }
        let status = try coordinator.wait(timeout: 120)
        #expect(status == 1)
        #expect(coordinator.stderr.contains("2/4 cells done, 2 failed"))
        let cells = try ResultStore(path: box.path("f.db"), readOnly: true).cells()
        let failed = cells.filter { $0.state == .failed }
        #expect(failed.count == 2 && failed.allSatisfy { $0.attempts == 2 })
        #expect(failed.allSatisfy { $0.lastError?.contains("n = 500 is larger than the 20 usable rows") == true })
        #expect(cells.filter { $0.state == .done }.count == 2)
        let report = try runIsosweep(["status", "--db", box.path("f.db")])
        #expect(report.status != 0)
        #expect(report.stdout.contains("failed: 2") && report.stdout.contains("after 2 attempts: n = 500"))
    }

    @Test func mergingTwoHalvesEqualsOneFullRun() throws {
        let box = try Sandbox()
        let full = try box.sweep("full", seeds: [0, 1], widths: [4, 16], steps: 200)
        let half0 = try box.sweep("half0", seeds: [0], widths: [4, 16], steps: 200)
        let half1 = try box.sweep("half1", seeds: [1], widths: [4, 16], steps: 200)
        for (spec, db) in [(full, "full.db"), (half0, "h0.db"), (half1, "h1.db")] {
            let run = try runIsosweep(
                ["run", spec, "--workers", "2", "--db", box.path(db), "--heartbeat", "0.2"],
                timeout: 180
            )
            #expect(run.status == 0, "\(run.stderr.suffix(2000))")
        }
        let merged = try runIsosweep(["merge", box.path("h0.db"), box.path("h1.db"), "-o", box.path("merged.db")])
        #expect(merged.status == 0, "\(merged.stderr)")
        #expect(merged.stdout.contains("4 results") && merged.stdout.contains("0 conflicts"))
        func table(_ db: String) throws -> [String] {
            // Every column but wall-clock seconds, the last one.
            try runIsosweep(["table", box.path(db), "--format", "csv"]).stdout.split(separator: "\n").map {
                $0.split(separator: ",", omittingEmptySubsequences: false).dropLast().joined(separator: ",")
            }
        }
        let whole = try table("full.db")
        #expect(whole.count == 5)
        #expect(try table("merged.db") == whole)
        // Merging a database with itself is fine; merging into an existing file is refused.
        #expect(
            try runIsosweep(["merge", box.path("h0.db"), box.path("h0.db"), "-o", box.path("self.db")]).status == 0
        )
        let clash = try runIsosweep(["merge", box.path("h0.db"), "-o", box.path("merged.db")])
        #expect(clash.status != 0 && clash.stderr.contains("already exists"))
    }

    @Test func badSweepFilesAreRefusedBeforeAnythingRuns() throws {
        let box = try Sandbox()
        let cases: [(String, String)] = [
            (
                "name: x\nparameters:\n  n: {value: 8}\n  d: {value: 2}\n  width: {value: 1}\n  depth: {value: 2}\n",
                "parameters.depth: unknown parameter"
            ),
            ("name: x\nparameters:\n  d: {value: 2}\n  width: {value: 1}\n", "parameters.n: is required"),
            (
                "name: x\nparameters:\n  n: {value: 8}\n  d: {value: 2.5}\n  width: {value: 1}\n",
                "parameters.d.value: expected a whole number"
            ),
            (
                "name: x\nparameters:\n  n: {value: 8}\n  d: {value: 2}\n  width: {values: []}\n",
                "parameters.width.values: is empty"
            ),
        ]
        for (index, (text, words)) in cases.enumerated() {
            let file = box.path("bad\(index).yaml")
            try text.write(toFile: file, atomically: true, encoding: .utf8)
            for command in [
                ["coordinator", file, "--db", box.path("bad.db")], ["run", file, "--db", box.path("bad.db")],
            ] {
                let run = try runIsosweep(command, timeout: 30)
                #expect(run.status == 2)
                #expect(run.stderr.contains(file) && run.stderr.contains(words), "\(run.stderr)")
            }
        }
        #expect(!FileManager.default.fileExists(atPath: box.path("bad.db")))
    }

    @Test func sigtermOnAWorkerHandsItsCellBackWithoutUsingAnAttempt() throws {
        let box = try Sandbox()
        let spec = try box.sweep("term", seeds: [0, 1], steps: 20_000)
        let coordinator = try box.coordinator(spec, db: "t.db")
        let endpoint = try box.endpoint(of: coordinator)
        let leaving = try Spawned(
            ["worker", "--connect", endpoint, "--slots", "1", "--prefetch", "0", "--grace", "0"],
            name: "leaving",
            directory: box.directory
        )
        var cell = ""
        try waitUntil("the worker to start a cell", timeout: 60) {
            cell = trainings(in: leaving.stderr).first?.key ?? ""
            return !cell.isEmpty
        }
        leaving.terminate()
        let leftWith = try leaving.wait(timeout: 20)
        #expect(
            leftWith == 0,
            "exit \(leftWith) \(leaving.process.terminationReason == .uncaughtSignal ? "signal" : "exit"): \(leaving.stderr.suffix(1500))"
        )
        try waitUntil("the coordinator to take the cell back", timeout: 20) {
            coordinator.stderr.contains("left (BYE)")
        }
        let stay = try box.worker(endpoint, name: "stay")
        defer { stay.kill9() }
        // The handed-back cell is attempt 1 again: leaving did not use up a try.
        try waitUntil("the cell to be trained again", timeout: 60) {
            trainings(in: stay.stderr).contains { $0.key == cell && $0.attempt == 1 }
        }
        coordinator.terminate()
        #expect(try coordinator.wait(timeout: 30) == 130)
        #expect(coordinator.stderr.contains("stopping: no more dispatch"))
    }

    @Test func dispatchBenchmarkCommitsEveryNoOpCell() throws {
        let run = try runIsosweep(
            ["bench", "dispatch", "--workers", "2", "--cells", "3000", "--log-level", "warning"],
            timeout: 120
        )
        #expect(run.status == 0, "\(run.stderr)")
        let json = try run.json()
        #expect(json["committed"] as? Int == 3000)
        let rate = try #require(json["cells_per_second"] as? Double)
        let p50 = try #require(json["p50_dispatch_to_commit_ms"] as? Double)
        let p99 = try #require(json["p99_dispatch_to_commit_ms"] as? Double)
        #expect(rate > 0 && p50 > 0 && p99 >= p50)
    }

    @Test func aReorderedFileTrainsNothingAndAWiderOneOnlyItsNewCells() throws {
        let box = try Sandbox()
        let db = box.path("id.db")
        let text = """
            # Why this grid: two widths are enough to start.
            name: identity
            method: grid
            parameters:
              n: {value: 24}
              d: {value: 4}
              width: {values: [2, 4]}   # more later
              seed: {values: [0, 1]}
              max_steps: {value: 50}

            """
        let file = box.path("identity.yaml")
        func run(_ text: String) throws -> (status: Int32, stderr: String, trained: [String]) {
            try text.write(toFile: file, atomically: true, encoding: .utf8)
            // Debug logs make the local workers say which cells they train.
            let run = try runIsosweep(
                ["run", file, "--workers", "1", "--db", db, "--log-level", "debug"],
                timeout: 120
            )
            return (run.status, run.stderr, trainings(in: run.stderr).map(\.key))
        }
        let first = try run(text)
        #expect(first.status == 0 && first.trained.count == 4, "\(first.stderr.suffix(2000))")
        let before = try ResultStore(path: db, readOnly: true).results()
        // The report shows the sweep file as it was written, comments included.
        let report = try String(contentsOfFile: box.path("id-report/report.md"), encoding: .utf8)
        #expect(report.contains("```yaml\n" + text))
        // The same cells, keys reordered, another description: the same sweep; nothing is trained.
        let reordered = """
            description: the same cells, keys reordered
            parameters:
              seed: {values: [1, 0]}
              max_steps: {value: 50}
              width: {values: [4, 2]}
              d: {value: 4}
              n: {value: 24}
            method: grid
            name: identity
            """
        let second = try run(reordered)
        #expect(second.status == 0 && second.trained.isEmpty, "\(second.stderr.suffix(2000))")
        #expect(second.stderr.contains("sweep identity: 4 cells reused") && !second.stderr.contains("new cells"))
        // One more width: an extension. Only its two cells are trained, and the log says so.
        let third = try run(text.replacingOccurrences(of: "[2, 4]", with: "[2, 4, 8]"))
        #expect(third.status == 0, "\(third.stderr.suffix(2000))")
        #expect(third.stderr.contains("sweep identity: extended by 2 new cells, 4 cells reused"))
        let newKeys = Set(
            try SweepSpec.parse(text.replacingOccurrences(of: "[2, 4]", with: "[8]"), file: "x").cells().map(\.key)
        )
        #expect(Set(third.trained) == newKeys && third.trained.count == 2)
        let after = try ResultStore(path: db, readOnly: true).results()
        #expect(after.count == 6)
        for old in before { #expect(after.first { $0.key == old.key }?.json == old.json) }
        // Each worker is credited with what it committed, and the store knows they are gone.
        let workers = try ResultStore(path: db, readOnly: true).workers()
        // (The second run's worker may not even have registered: there was nothing to do.)
        #expect(
            workers.first?.cellsDone == 4 && workers.last?.cellsDone == 2 && workers.map(\.cellsDone).reduce(0, +) == 6
        )
        #expect(workers.allSatisfy { !$0.alive })
        let status = try runIsosweep(["status", "--db", db])
        #expect(status.stdout.contains("4 cells done, gone, last seen"), "\(status.stdout)")
    }
}
