import ArgumentParser
import TrainingCore

/// `isosweep bench`: measurements of isosweep's own speed, printed as JSON.
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Benchmarks that print machine-readable figures.",
        subcommands: [BenchTrain.self]
    )
}

/// `isosweep bench train`: the training step against SGEMM on the same shapes.
struct BenchTrain: ParsableCommand {
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

    func validate() throws {
        guard n >= 1, d >= 1, width >= 1 else { throw ValidationError("--n, --d and --width must be positive") }
        guard steps >= 1, rounds >= 1 else { throw ValidationError("--steps and --rounds must be positive") }
        guard threads >= 1 && threads <= 256 else { throw ValidationError("--threads must be between 1 and 256") }
        guard n.multipliedReportingOverflow(by: width).partialValue <= 2_000_000_000 else {
            throw ValidationError("n x width is too large for this benchmark")
        }
    }

    func run() throws {
        let result = TrainingBenchmark.measure(
            n: n, d: d, width: width, steps: steps, threads: threads, activation: activation, rounds: rounds
        )
        try Output.json(result)
    }
}
