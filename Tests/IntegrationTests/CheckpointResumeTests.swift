import Foundation
import SweepCore
import SweepStore
import Testing
import TrainingCore

/// Long cells survive their runner's kill -9, their worker's kill -9 and their worker's SIGTERM:
/// the retry resumes from the cell's latest checkpoint (kept by the coordinator, sent to whichever
/// worker takes the cell) and the result equals an uninterrupted run's, every metric but the
/// timings. Real processes, real signals; a cell of ~15 s of training in a debug build (the
/// issue's minute-long cell scaled down for CI) with checkpoints every 2 s.
@Suite struct CheckpointResumeTests {
    static let steps = 5000

    /// One cell that trains for all its steps (target_mse 0), with `resources`.
    static func sweep(_ box: Sandbox, _ name: String, resources: String) throws -> String {
        let text = """
            name: \(name)
            resources: \(resources)
            parameters:
              n: {value: 1000}
              d: {value: 32}
              width: {value: 256}
              max_steps: {value: \(steps)}
              target_mse: {value: 0}
              n_test: {value: 50}
            """
        let file = box.path("\(name).yaml")
        try text.write(toFile: file, atomically: true, encoding: .utf8)
        return file
    }

    /// The uninterrupted run's result, computed once for every test (a sweep like theirs).
    static let reference: Result<CellResult, CLIError> = {
        do {
            let box = try Sandbox()
            let spec = try sweep(box, "reference", resources: "{checkpoint_every: off}")
            let coordinator = try box.coordinator(spec, db: "reference.db")
            let worker = try box.worker(try box.endpoint(of: coordinator), name: "worker")
            defer { worker.kill9() }
            guard try coordinator.wait(timeout: 600) == 0 else {
                return .failure(CLIError(message: "the reference run failed: \(coordinator.stderr.suffix(2000))"))
            }
            return .success(try onlyResult(box.path("reference.db")))
        } catch let error as CLIError {
            return .failure(error)
        } catch {
            return .failure(CLIError(message: "\(error)"))
        }
    }()

    static func onlyResult(_ db: String) throws -> CellResult {
        let results = try ResultStore(path: db, readOnly: true).results()
        let stored = try #require(results.first)
        #expect(results.count == 1)
        return try JSONDecoder().decode(CellResult.self, from: Data(stored.json.utf8))
    }

    /// The steps of the checkpoints the coordinator holds for the sweep in `db`.
    static func storedSteps(_ db: String) -> [Int] { CheckpointFolder.steps(database: db).values.map { Int($0) } }

    /// Waits for a checkpoint past half the cell's steps and returns its step (the newest).
    static func halfWay(_ db: String) throws -> Int {
        var step = 0
        try waitUntil("a checkpoint past half way", timeout: 300) {
            step = storedSteps(db).max() ?? 0
            return step >= steps / 2
        }
        return step
    }

    /// A safetensors file's tensors: its header without the metadata (which holds timings), and
    /// its data.
    static func tensorBytes(_ path: String) throws -> (header: NSDictionary, data: Data) {
        let file = try Data(contentsOf: URL(fileURLWithPath: path))
        let length = Int(
            file.prefix(8).enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
        )
        var header = try #require(
            try JSONSerialization.jsonObject(with: file.subdata(in: 8..<(8 + length))) as? [String: Any]
        )
        header.removeValue(forKey: "__metadata__")
        return (header as NSDictionary, file.subdata(in: (8 + length)..<file.count))
    }

    /// The resumed result matches the uninterrupted one, and says where it resumed from.
    static func expectSameAsUninterrupted(_ result: CellResult, resumedAtLeast step: Int) throws {
        let reference = try Self.reference.get()
        #expect(result.metrics.steps == steps)
        let resumed = try #require(result.metrics.resumedFromStep, "the retry did not resume")
        #expect(resumed >= step, "resumed from \(resumed), a checkpoint at \(step) was stored")
        #expect(resumed < steps)
        #expect(result.metrics.withoutTimings == reference.metrics.withoutTimings)
        #expect(result.parameters == reference.parameters)
    }

    @Test func aRunnerKilledHalfWayResumesFromItsLastCheckpoint() throws {
        _ = try Self.reference.get()
        let box = try Sandbox()
        let spec = try Self.sweep(box, "runnerkill", resources: "{checkpoint_every: 2s}")
        let coordinator = try box.coordinator(spec, db: "rk.db")
        let worker = try box.worker(try box.endpoint(of: coordinator), name: "worker")
        defer { for process in [coordinator, worker] { process.kill9() } }
        let seen = try Self.halfWay(box.path("rk.db"))
        let runner = try #require(childProcesses(of: worker.pid).first)
        kill(runner, SIGKILL)
        // The checkpoint the retry will get, kept aside to resume by hand below.
        let folder = CheckpointFolder.path(database: box.path("rk.db"))
        let stored = try #require(
            try FileManager.default.contentsOfDirectory(atPath: folder).first { $0.hasSuffix(".safetensors") }
        )
        try FileManager.default.copyItem(atPath: folder + "/" + stored, toPath: box.path("kept.safetensors"))
        #expect(try coordinator.wait(timeout: 300) == 0, "\(coordinator.stderr.suffix(2000))")
        let result = try Self.onlyResult(box.path("rk.db"))
        try Self.expectSameAsUninterrupted(result, resumedAtLeast: seen)
        #expect(try ResultStore(path: box.path("rk.db"), readOnly: true).results().first?.attempt == 2)
        // The steps computed twice (the killed attempt's since its last checkpoint) are at most
        // a few seconds of training: the interval, plus a report's age and the transfer.
        let range = try #require(
            worker.stderr.range(of: #"last reported at step \d+"#, options: .regularExpression),
            "\(worker.stderr.suffix(2000))"
        )
        let died = try #require(Int(worker.stderr[range].split(separator: " ").last ?? ""))
        let reference = try Self.reference.get().metrics
        let stepsPerSecond = Double(reference.steps) / reference.trainSeconds
        let repeated = died - (result.metrics.resumedFromStep ?? 0)
        #expect(Double(repeated) <= 4 * stepsPerSecond, "\(repeated) steps again at \(stepsPerSecond) steps/s")
        // The same checkpoint resumed by hand (`train --resume`) saves the uninterrupted run's
        // network, byte for byte.
        let cell = [
            "--n", "1000", "--d", "32", "--width", "256", "--max-steps", "\(Self.steps)", "--target-mse", "0",
            "--n-test", "50",
        ]
        let resumed = try runIsosweep(
            ["train"] + cell + [
                "--resume", box.path("kept.safetensors"), "--save-model", box.path("resumed.safetensors"),
            ],
            timeout: 300
        )
        let whole = try runIsosweep(["train"] + cell + ["--save-model", box.path("whole.safetensors")], timeout: 300)
        #expect(resumed.status == 0 && whole.status == 0, "\(resumed.stderr) \(whole.stderr)")
        let tensors = try Self.tensorBytes(box.path("whole.safetensors"))
        #expect(!tensors.data.isEmpty)
        #expect(try Self.tensorBytes(box.path("resumed.safetensors")) == tensors)
        #expect(try resumed.json()["resumed_from_step"] as? Int == CheckpointFolder.parse(stored).map { Int($0.step) })
        // Committed: its checkpoints are gone, and `cells` says where it resumed from.
        #expect(Self.storedSteps(box.path("rk.db")).isEmpty)
        let cells = try runIsosweep(["cells", box.path("rk.db"), "--format", "json"])
        let rows = try #require(try JSONSerialization.jsonObject(with: Data(cells.stdout.utf8)) as? [[String: Any]])
        #expect(rows.first?["resumed_from_step"] as? Int == result.metrics.resumedFromStep)
    }

    /// A coordinator of one cell, the worker that takes it, and a second, idle one.
    static func twoWorkers(
        _ box: Sandbox,
        _ name: String,
        resources: String
    ) throws -> (coordinator: Spawned, first: Spawned, second: Spawned) {
        let spec = try sweep(box, name, resources: resources)
        let coordinator = try box.coordinator(spec, db: "\(name).db")
        let endpoint = try box.endpoint(of: coordinator)
        let first = try box.worker(endpoint, name: "first")
        try waitUntil("the first worker to take the cell", timeout: 120) { !trainings(in: first.stderr).isEmpty }
        return (coordinator, first, try box.worker(endpoint, name: "second"))
    }

    @Test func aWorkerKilledHalfWayHasItsCellResumedOnAnother() throws {
        _ = try Self.reference.get()
        let box = try Sandbox()
        let (coordinator, first, second) = try Self.twoWorkers(box, "wk", resources: "{checkpoint_every: 2s}")
        defer { for process in [coordinator, first, second] { process.kill9() } }
        let seen = try Self.halfWay(box.path("wk.db"))
        first.kill9()
        #expect(try coordinator.wait(timeout: 300) == 0, "\(coordinator.stderr.suffix(2000))")
        let result = try Self.onlyResult(box.path("wk.db"))
        try Self.expectSameAsUninterrupted(result, resumedAtLeast: seen)
        #expect(second.stderr.contains("resumes from its checkpoint"), "\(second.stderr.suffix(2000))")
    }

    /// A SIGTERM hands the cell back with a checkpoint of that moment: with periodic checkpoints
    /// far apart, the retry resumes past the last periodic one.
    @Test func aWorkerStoppedWithSigtermHandsItsCellOverFromThatMoment() throws {
        _ = try Self.reference.get()
        let box = try Sandbox()
        let (coordinator, first, second) = try Self.twoWorkers(box, "wt", resources: "{checkpoint_every: 4s}")
        defer { for process in [coordinator, first, second] { process.kill9() } }
        let periodic = try Self.halfWay(box.path("wt.db"))
        // Well inside the 4 s interval: no periodic checkpoint comes before the SIGTERM's.
        usleep(1_500_000)
        first.terminate()
        #expect(try first.wait(timeout: 60) == 0, "\(first.stderr.suffix(2000))")
        #expect(try coordinator.wait(timeout: 300) == 0, "\(coordinator.stderr.suffix(2000))")
        let result = try Self.onlyResult(box.path("wt.db"))
        try Self.expectSameAsUninterrupted(result, resumedAtLeast: periodic + 1)
        #expect(first.stderr.contains("asked 1 running cells for a checkpoint"), "\(first.stderr.suffix(2000))")
    }
}

/// A runner that is alive but makes no progress (SIGSTOP) is killed after the sweep's
/// stall_limit, its attempt fails with "no progress for ...", and the cell runs again: every cell
/// is done once, in a sweep without a time limit.
@Suite struct StallWatchdogTests {
    @Test func aStoppedRunnerIsKilledAfterTheStallLimitAndItsCellRunsAgain() throws {
        let box = try Sandbox()
        let spec = try box.sweep(
            "stall",
            seeds: [0, 1],
            widths: [8],
            steps: 20_000,
            extra: "resources: {stall_limit: 3s}"
        )
        let coordinator = try box.coordinator(spec, db: "stall.db")
        let worker = try box.worker(try box.endpoint(of: coordinator), name: "worker")
        defer { for process in [coordinator, worker] { process.kill9() } }
        var runner: Int32 = 0
        try waitUntil("a cell running in a runner", timeout: 120) {
            runner = childProcesses(of: worker.pid).first ?? 0
            return !trainings(in: worker.stderr).isEmpty && runner != 0
        }
        let stopped = ContinuousClock.now
        kill(runner, SIGSTOP)
        try waitUntil("the watchdog to kill the stopped runner", timeout: 60) {
            worker.stderr.contains("no progress for")
        }
        let waited = ContinuousClock.now - stopped
        // Killed after its 3 s limit (checked every 100 ms), not long after.
        #expect(waited >= .seconds(3) && waited < .seconds(20), "\(waited)")
        #expect(try coordinator.wait(timeout: 300) == 0, "\(coordinator.stderr.suffix(2000))")
        let results = try ResultStore(path: box.path("stall.db"), readOnly: true).results()
        let expected = Set(try SweepSpec.load(path: spec).cells().map(\.key))
        #expect(results.count == expected.count && Set(results.map(\.key)) == expected)
        // The stopped cell ran again: attempts 1 and 2; its first attempt's error names the stall.
        #expect(results.map(\.attempt).sorted() == [1, 2])
        #expect(worker.stderr.contains("(stall_limit)"))
    }
}
