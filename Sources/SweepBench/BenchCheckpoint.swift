import ArgumentParser
import CommandSupport
import Foundation
import Glibc
import TrainingCore

/// `isosweep bench checkpoint`: what writing a checkpoint of a large cell costs, against its
/// training step and the default interval between checkpoints.
struct BenchCheckpoint: ParsableCommand, RunsBLAS {
    static let configuration = CommandConfiguration(
        commandName: "checkpoint",
        abstract:
            "Time saving a checkpoint of a cell (default: the cluster sweep's largest) as a runner does, against one of its training steps and the checkpoint interval."
    )

    @Option(help: "Training points.") var n = 4096
    @Option(help: "Input dimension.") var d = 1024
    @Option(help: "Hidden width.") var width = 4096
    @Option(help: "smooth_after_fit steps (the smoothing stage's checkpoint is the largest).") var smoothAfterFit = 5000
    @Option(help: "The interval between checkpoints, in seconds (the default checkpoint_every).") var interval = 600.0
    @Option(help: "Rounds: the median counts.") var rounds = 3
    @Option(help: "OpenBLAS threads for the training step.") var threads = 1

    func validate() throws {
        guard n >= 2, d >= 1, width >= 1, rounds >= 1, interval > 0 else {
            throw ValidationError("--n, --d, --width, --rounds and --interval must be positive")
        }
    }

    struct Figures: Encodable {
        var n, d, width: Int
        var parameters: Int
        var checkpointBytes: Int
        var checkpointSeconds: Double
        var stepSeconds: Double
        var intervalSeconds: Double
        /// The share of training time checkpoints take at the interval.
        var shareAtInterval: Double
        var blasCore: String

        enum CodingKeys: String, CodingKey {
            case n, d, width, parameters
            case checkpointBytes = "checkpoint_bytes"
            case checkpointSeconds = "checkpoint_seconds"
            case stepSeconds = "step_seconds"
            case intervalSeconds = "interval_seconds"
            case shareAtInterval = "share_at_interval"
            case blasCore = "blas_core"
        }
    }

    func run() throws {
        var cell = CellParameters(n: n, d: d, width: width)
        cell.smoothAfterFit = smoothAfterFit > 0 ? smoothAfterFit : nil
        let checkpoint = TrainingCheckpoint.largest(for: cell)
        // A runner encodes it and writes it to its worker's pipe, which the worker drains.
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { throw ValidationError("cannot make a pipe") }
        let reader = fds[0]
        let drain = Thread {
            var buffer = [UInt8](repeating: 0, count: 1 << 20)
            while buffer.withUnsafeMutableBytes({ read(reader, $0.baseAddress, $0.count) }) > 0 {}
        }
        drain.start()
        var bytes = 0
        var times: [Double] = []
        for _ in 0..<rounds {
            let start = ContinuousClock.now
            let encoded = try checkpoint.encoded()
            var offset = 0
            while offset < encoded.count {
                let written = encoded[offset...].withUnsafeBytes { write(fds[1], $0.baseAddress, $0.count) }
                guard written > 0 else { throw ValidationError("cannot write to the pipe") }
                offset += written
            }
            times.append((ContinuousClock.now - start).seconds)
            bytes = encoded.count
        }
        close(fds[1])
        let checkpointSeconds = times.sorted()[times.count / 2]
        let stepSeconds = TrainingBenchmark.stepSeconds(n: n, d: d, width: width, threads: threads)
        try Output.json(
            Figures(
                n: n,
                d: d,
                width: width,
                parameters: cell.parameterCount,
                checkpointBytes: bytes,
                checkpointSeconds: checkpointSeconds,
                stepSeconds: stepSeconds,
                intervalSeconds: interval,
                shareAtInterval: checkpointSeconds / interval,
                blasCore: BLAS.core
            )
        )
    }
}
