import ArgumentParser
import CommandSupport
import Coordinator
import Foundation
import Logging
import SweepCore
import SweepStore
import TrainingCore
import Worker

/// `isosweep bench makespan`: one mixed sweep (a big cell of ~10x the others' total cost, and
/// small ones) run twice on this machine with one local worker holding every core, with
/// `threads: 1` and with `threads: auto`; prints both makespans.
struct BenchMakespan: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "makespan",
        abstract: "Run one mixed sweep with threads: 1 and with threads: auto, and print both makespans."
    )

    @Option(help: "The big cell's n, d and width.") var big = "2048,128,1024"
    @Option(help: "The big cell's training steps.") var bigSteps = 300
    @Option(help: "The small cells' n, d and width.") var small = "512,32,256"
    @Option(help: "Number of small cells (seeds 0, 1, ...).") var smallCells = 8
    @Option(help: "The small cells' training steps.") var smallSteps = 250
    @OptionGroup var log: LogOptions

    func shape(_ text: String, _ option: String) throws -> (n: Int, d: Int, width: Int) {
        let parts = text.split(separator: ",").compactMap { Int($0) }
        guard parts.count == 3, parts.allSatisfy({ $0 >= 1 }) else {
            throw ValidationError("--\(option) takes n,d,width such as 2048,128,1024 (got \(text))")
        }
        return (parts[0], parts[1], parts[2])
    }

    func validate() throws {
        _ = try shape(big, "big")
        _ = try shape(small, "small")
        guard bigSteps >= 1, smallSteps >= 1, (1...1000).contains(smallCells) else {
            throw ValidationError("--big-steps and --small-steps must be positive, --small-cells 1 to 1000")
        }
    }

    /// The sweep's cells: the big one, then the small ones; every cell trains its full steps.
    func cells() throws -> [CellWork] {
        let b = try shape(big, "big")
        let s = try shape(small, "small")
        let large = CellParameters(n: b.n, d: b.d, width: b.width, maxSteps: bigSteps, targetMSE: 0)
        let smalls = (0..<smallCells).map {
            CellParameters(n: s.n, d: s.d, width: s.width, seed: $0, maxSteps: smallSteps, targetMSE: 0)
        }
        return ([large] + smalls).map { .train($0) }
    }

    func run() async throws {
        let logger = log.bootstrap(label: "isosweep.bench")
        let work = try cells()
        let cores = MachineResources.cores()
        var runs: [MakespanRun] = []
        for threads in [UInt16(1), 0] {
            let path = FileManager.default.temporaryDirectory
                .appendingPathComponent("isosweep-makespan-\(UUID().uuidString).db").path
            defer { for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) } }
            var options = CoordinatorOptions(bind: "tcp://127.0.0.1:0", database: path)
            options.limits.threads = threads
            let engine = CoordinatorEngine(
                options: options,
                work: .cells(name: "bench-makespan", work),
                logger: logger
            )
            let local = LocalWorkers(
                count: 1,
                logger: logger,
                endpoint: { engine.endpoint },
                arguments: { ["worker", "--connect", $0, "--cores", "\(cores)", "--log-level", "warning"] }
            )
            let outcome = try await runCoordinator(engine, with: [local], logger: logger)
            guard outcome.failed == 0, outcome.done == work.count else {
                Output.error(
                    "the makespan sweep did not complete: \(outcome.done) of \(work.count) cells done, \(outcome.failed) failed"
                )
                throw ExitCode.failure
            }
            let store = try ResultStore(path: path, readOnly: true)
            let bigKey = work[0].key
            var bigResult: CellResult?
            for stored in try store.results() where stored.key == bigKey {
                bigResult = try JSONDecoder().decode(CellResult.self, from: Data(stored.json.utf8))
            }
            runs.append(
                MakespanRun(
                    threads: threads == 0 ? "auto" : "\(threads)",
                    makespanSeconds: outcome.dispatchSeconds,
                    bigCellThreads: bigResult?.metrics.blasThreads ?? 0,
                    bigCellSeconds: (bigResult?.metrics.trainSeconds ?? 0) + (bigResult?.metrics.lipSeconds ?? 0)
                )
            )
        }
        let smallCost = work.dropFirst().reduce(0) { $0 + $1.estimatedCost }
        try Output.json(
            MakespanBenchmark(
                cores: cores,
                bigCellCost: work[0].estimatedCost,
                smallCellsCost: smallCost,
                runs: runs,
                speedup: runs[1].makespanSeconds > 0 ? runs[0].makespanSeconds / runs[1].makespanSeconds : 0
            )
        )
    }
}

/// One run of `bench makespan`.
struct MakespanRun: Encodable {
    var threads: String
    /// From the first dispatch to the last commit.
    var makespanSeconds: Double
    var bigCellThreads: Int
    /// The big cell's training and Lipschitz seconds.
    var bigCellSeconds: Double

    enum CodingKeys: String, CodingKey {
        case threads
        case makespanSeconds = "makespan_seconds"
        case bigCellThreads = "big_cell_threads"
        case bigCellSeconds = "big_cell_seconds"
    }
}

/// The figures of `isosweep bench makespan`.
struct MakespanBenchmark: Encodable {
    var cores: Int
    /// Estimated flops of the big cell and of all small cells together.
    var bigCellCost: Double
    var smallCellsCost: Double
    var runs: [MakespanRun]
    /// Makespan with threads: 1 over makespan with threads: auto.
    var speedup: Double

    enum CodingKeys: String, CodingKey {
        case cores, runs, speedup
        case bigCellCost = "big_cell_flops"
        case smallCellsCost = "small_cells_flops"
    }
}
