import Diagnostics
import Foundation
import TrainingCore

/// The Lipschitz phase of a cell against 100 of its training steps, measured in the same run
/// (`isosweep bench lipschitz`): what the bounds cost in units of training.
struct LipschitzBenchmark: Sendable, Codable {
    var n: Int
    var d: Int
    var width: Int
    var activation: ActivationKind
    var threads: Int
    /// Rounds measured; every time below is the median over them.
    var rounds: Int
    /// Seconds of 100 full-batch Adam steps of the cell (float32).
    var hundredStepsSeconds: Double
    /// Seconds of `Lipschitz.bounds` on the network those steps made, with the training inputs
    /// (the search a cell runs on its trained network), and of the support-only search a cell
    /// runs on its initial network (the baseline `lip_init_support_lower`).
    var lipschitzSeconds: Double
    var baselineSeconds: Double
    /// (lipschitzSeconds + baselineSeconds) / hundredStepsSeconds: the Lipschitz phase in units
    /// of 100 steps.
    var ratio: Double
    var lipLower: Double
    var lipUpper: Double
    var blas: String
    /// The OpenBLAS kernels measured (`BLAS.core`).
    var blasCore: String

    enum CodingKeys: String, CodingKey {
        case n, d, width, activation, threads, rounds, ratio, blas
        case blasCore = "blas_core"
        case hundredStepsSeconds = "hundred_steps_seconds"
        case lipschitzSeconds = "lipschitz_seconds"
        case baselineSeconds = "baseline_seconds"
        case lipLower = "lip_lower"
        case lipUpper = "lip_upper"
    }

    /// Measures one cell of sphere data with random labels: `rounds` rounds of 100 steps, the
    /// bounds and the baseline, interleaved, and the median of each (a busy machine slows single
    /// rounds; the same search runs every round, so its bounds do not change).
    static func measure(
        n: Int,
        d: Int,
        width: Int,
        activation: ActivationKind = .relu,
        threads: Int = 1,
        rounds: Int = 3
    ) throws(IsosweepError) -> LipschitzBenchmark {
        BLAS.setThreads(threads)
        let cell = CellParameters(n: n, d: d, width: width, activation: activation).resolved()
        let data = try CellData.make(for: cell)
        let train = data.train.converted(to: Float.self)
        let initial = Network<Float>(randomWithInputDimension: d, width: width, activation: activation, seed: 0)
        let network = initial
        var workspace = TrainingWorkspace(points: n, network: network)
        let optimizer = Optimizer<Float>(
            kind: .adam,
            learningRate: cell.resolvedLearningRate,
            parameterCount: network.parameters.count
        )
        let clock = ContinuousClock()
        _ = network.lossAndGradient(on: train, workspace: &workspace, threads: threads)  // warm-up
        let inputs = train.inputs.converted(to: Double.self)
        // The options a cell passes: its threads split the search too (`Cell.run`).
        var options = LipschitzOptions()
        options.threads = threads
        var hundred: [Double] = []
        var search: [Double] = []
        var baseline: [Double] = []
        var bounds: LipschitzBounds?
        for _ in 0..<max(1, rounds) {
            // Each round trains the same 100 steps again, so every round measures the same work.
            var stepped = network
            var moments = optimizer
            let trainingStart = clock.now
            for _ in 0..<100 {
                _ = stepped.lossAndGradient(on: train, workspace: &workspace, threads: threads)
                moments.step(&stepped.parameters, gradient: workspace.gradient)
            }
            hundred.append((clock.now - trainingStart).seconds)
            let searchStart = clock.now
            bounds = try Lipschitz.bounds(
                of: stepped.converted(to: Double.self),
                trainingInputs: inputs,
                distribution: data.distribution,
                seed: 0,
                options: options
            )
            search.append((clock.now - searchStart).seconds)
            let baselineStart = clock.now
            _ = try Lipschitz.lowerBounds(
                of: initial.converted(to: Double.self),
                trainingInputs: inputs,
                distribution: data.distribution,
                seed: 0,
                options: options,
                supportOnly: true
            )
            baseline.append((clock.now - baselineStart).seconds)
        }
        let (steps, lipschitz, initialSearch) = (median(hundred), median(search), median(baseline))
        return LipschitzBenchmark(
            n: n,
            d: d,
            width: width,
            activation: activation,
            threads: threads,
            rounds: hundred.count,
            hundredStepsSeconds: steps,
            lipschitzSeconds: lipschitz,
            baselineSeconds: initialSearch,
            ratio: (lipschitz + initialSearch) / steps,
            lipLower: bounds?.lower ?? 0,
            lipUpper: bounds?.upper ?? 0,
            blas: BLAS.configuration,
            blasCore: BLAS.core
        )
    }

    private static func median(_ values: [Double]) -> Double {
        let sorted = values.sorted()
        return sorted.isEmpty ? 0 : sorted[sorted.count / 2]
    }
}
