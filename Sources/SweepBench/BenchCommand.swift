public import ArgumentParser
import CommandSupport
import Coordinator
import Foundation
import Logging
import SweepAnalysis
import SweepCore
import SweepStore
import TrainingCore
import Worker

/// `isosweep bench`: measurements of isosweep's own speed, printed as JSON, and the hidden
/// processes `bench swarm` starts (its coordinator and its simulated workers).
public struct Bench: ParsableCommand {
    /// The `bench` command and its subcommands.
    public static let configuration = CommandConfiguration(
        abstract: "Benchmarks that print machine-readable figures.",
        subcommands: [
            BenchTrain.self, BenchLipschitz.self, BenchDispatch.self, BenchMakespan.self, BenchSoak.self,
            BenchSwarm.self, BenchTools.self, BenchCheckpoint.self, BenchCoordinator.self, SwarmLoad.self,
        ]
    )

    /// The command (ArgumentParser makes it).
    public init() {}
}

/// `isosweep bench train`: the training step against SGEMM on the same shapes.
struct BenchTrain: ParsableCommand, RunsBLAS {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Time the training step and compare it with plain SGEMM on the same shapes, in the same run."
    )

    @Option(help: "Training points.") var n = 4000
    @Option(help: "Input dimension.") var d = 100
    @Option(help: "Hidden width.") var width = 1000
    @Option(help: "Steps per round.") var steps = 50
    @Option(help: "Rounds; the best round of each side counts.") var rounds = 3
    @Option(help: "OpenBLAS threads.") var threads = 1
    @Option(help: "Activation.") var activation: ActivationKind = .relu
    @Option(
        help:
            "Also time steps with this gradient penalty (tangential, as for sphere data) and print their cost in plain steps."
    )
    var gradPenalty: Double = 0

    func validate() throws {
        guard n >= 1, d >= 1, width >= 1 else { throw ValidationError("--n, --d and --width must be positive") }
        guard gradPenalty >= 0 && gradPenalty.isFinite else { throw ValidationError("--grad-penalty must be >= 0") }
        guard steps >= 1, rounds >= 1 else { throw ValidationError("--steps and --rounds must be positive") }
        guard threads >= 1 && threads <= 256 else { throw ValidationError("--threads must be between 1 and 256") }
        guard n.multipliedReportingOverflow(by: width).partialValue <= 2_000_000_000 else {
            throw ValidationError("n x width is too large for this benchmark")
        }
    }

    func run() throws {
        let result = TrainingBenchmark.measure(
            n: n,
            d: d,
            width: width,
            steps: steps,
            threads: threads,
            activation: activation,
            rounds: rounds,
            gradPenalty: gradPenalty
        )
        try Output.json(result)
    }
}

/// `isosweep bench lipschitz`: the Lipschitz phase of a cell against 100 of its training steps.
struct BenchLipschitz: ParsableCommand, RunsBLAS {
    static let configuration = CommandConfiguration(
        commandName: "lipschitz",
        abstract:
            "Time a cell's Lipschitz phase (the bounds of the trained network, and the baseline search on the initial one) against 100 training steps of the same cell, in the same run."
    )

    @Option(help: "Training points.") var n = 1024
    @Option(help: "Input dimension.") var d = 64
    @Option(help: "Hidden width.") var width = 2048
    @Option(help: "Activation.") var activation: ActivationKind = .relu
    @Option(help: "OpenBLAS threads (and the search's, as a cell's).") var threads = 1
    @Option(help: "Rounds: each time reported is the median over them.") var rounds = 3

    func validate() throws {
        guard n >= 2, d >= 1, width >= 1 else {
            throw ValidationError("--n must be at least 2, --d and --width positive")
        }
        guard rounds >= 1 && rounds <= 100 else { throw ValidationError("--rounds must be between 1 and 100") }
        guard threads >= 1 && threads <= 256 else { throw ValidationError("--threads must be between 1 and 256") }
    }

    func run() throws {
        try Output.json(
            LipschitzBenchmark.measure(
                n: n,
                d: d,
                width: width,
                activation: activation,
                threads: threads,
                rounds: rounds
            )
        )
    }
}

/// `isosweep bench dispatch`: the dispatch system itself, with no-op cells.
struct BenchDispatch: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dispatch",
        abstract:
            "Coordinator and worker processes over TCP loopback running no-op cells: committed cells per second and latency."
    )

    @Option(help: "Worker processes.") var workers = 2
    @Option(help: "No-op cells.") var cells = 20_000
    @Option(help: "Poison cells besides: each takes down every cell runner that runs it (for tests).") var poison = 0
    @Option(help: "Cells besides that never end, however long their time limit (for tests).") var hang = 0
    @Option(help: "Cells besides that take 512 MiB against an allowance of 128 MiB (for tests).") var hog = 0
    @Option(help: "Each cell's time limit, e.g. 2s (default: none).") var timeLimit: String?
    @Option(help: "Tries per cell before it is FAILED.") var maxAttempts = SweepSpec.defaultMaxAttempts
    @Option(help: "Cells each worker keeps queued beyond its slots.") var prefetch = 500
    @Option(help: "Database (default: a temporary file, removed afterwards).") var db: String?
    @OptionGroup var log: LogOptions

    func validate() throws {
        guard (1...64).contains(workers) else { throw ValidationError("--workers must be between 1 and 64") }
        guard (1...10_000_000).contains(cells) else { throw ValidationError("--cells must be between 1 and 10000000") }
        guard (0...1000).contains(poison) else { throw ValidationError("--poison must be between 0 and 1000") }
        guard (0...1000).contains(hang) else { throw ValidationError("--hang must be between 0 and 1000") }
        guard (0...1000).contains(hog) else { throw ValidationError("--hog must be between 0 and 1000") }
        guard (1...100).contains(maxAttempts) else { throw ValidationError("--max-attempts must be between 1 and 100") }
        if let timeLimit, Units.parseDuration(timeLimit) == nil {
            throw ValidationError("--time-limit takes a duration such as 2s, 30m or 1h (got \(timeLimit))")
        }
    }

    func run() async throws {
        let logger = log.bootstrap(label: "isosweep.bench")
        let path =
            db
            ?? FileManager.default.temporaryDirectory.appendingPathComponent("isosweep-bench-\(UUID().uuidString).db")
            .path
        defer {
            if db == nil {
                for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) }
            }
        }
        let work =
            (0..<cells).map { CellWork.noop(index: $0, fail: false) }
            + (0..<poison).map { CellWork.diagnostic(DiagnosticCell(index: $0, behaviour: .crash)) }
            + (0..<hang).map { CellWork.diagnostic(DiagnosticCell(index: $0, behaviour: .hang)) }
            + (0..<hog).map { CellWork.diagnostic(DiagnosticCell(index: $0, behaviour: .hog)) }
        var options = CoordinatorOptions(bind: "tcp://127.0.0.1:0", database: path)
        options.maxAttempts = maxAttempts
        if let seconds = timeLimit.flatMap(Units.parseDuration) {
            options.limits.timeLimitMilliseconds = UInt64((seconds * 1000).rounded())
        }
        let engine = CoordinatorEngine(
            options: options,
            work: .cells(name: "bench-dispatch", work),
            logger: logger
        )
        let prefetch = self.prefetch
        let local = LocalWorkers(
            count: workers,
            logger: logger,
            endpoint: { engine.endpoint },
            arguments: { endpoint in
                [
                    "worker", "--connect", endpoint, "--slots", "1", "--prefetch", String(prefetch), "--log-level",
                    "warning",
                ]
            }
        )
        let outcome = try await runCoordinator(engine, with: [local], logger: logger)
        let sorted = outcome.latencyMilliseconds.map(Double.init).sorted()
        func percentile(_ q: Double) -> Double {
            sorted.isEmpty ? 0 : sorted[min(sorted.count - 1, Int(q * Double(sorted.count)))]
        }
        try Output.json(
            DispatchBenchmark(
                cells: outcome.total,
                committed: outcome.done,
                failed: outcome.failed,
                workers: workers,
                seconds: outcome.seconds,
                dispatchSeconds: outcome.dispatchSeconds,
                cellsPerSecond: Double(outcome.done) / outcome.dispatchSeconds,
                p50Milliseconds: percentile(0.5),
                p99Milliseconds: percentile(0.99)
            )
        )
    }
}

/// The figures of `isosweep bench dispatch`.
struct DispatchBenchmark: Encodable {
    var cells: Int
    var committed: Int
    var failed: Int
    var workers: Int
    /// From loading the cells to the last commit (includes workers starting).
    var seconds: Double
    /// From the first dispatch to the last commit: the span the rate is measured over.
    var dispatchSeconds: Double
    var cellsPerSecond: Double
    var p50Milliseconds: Double
    var p99Milliseconds: Double

    enum CodingKeys: String, CodingKey {
        case cells, committed, failed, workers, seconds
        case dispatchSeconds = "dispatch_seconds"
        case cellsPerSecond = "cells_per_second"
        case p50Milliseconds = "p50_dispatch_to_commit_ms"
        case p99Milliseconds = "p99_dispatch_to_commit_ms"
    }
}
