public import Diagnostics

/// The Lipschitz phase of a cell against 100 of its training steps, measured in the same run
/// (`isosweep bench lipschitz`): what the bounds cost in units of training.
public struct LipschitzBenchmark: Sendable, Codable {
    public var n: Int
    public var d: Int
    public var width: Int
    public var activation: ActivationKind
    public var threads: Int
    /// Seconds of 100 full-batch Adam steps of the cell (float32).
    public var hundredStepsSeconds: Double
    /// Seconds of `Lipschitz.bounds` on the network those steps made, with the training inputs
    /// (the search a cell runs on its trained network), and of the support-only search a cell
    /// runs on its initial network (the baseline `lip_init_support_lower`).
    public var lipschitzSeconds: Double
    public var baselineSeconds: Double
    /// lipschitzSeconds / hundredStepsSeconds.
    public var ratio: Double
    public var lipLower: Double
    public var lipUpper: Double
    public var blas: String
    /// The OpenBLAS kernels measured (`BLAS.core`).
    public var blasCore: String

    enum CodingKeys: String, CodingKey {
        case n, d, width, activation, threads, ratio, blas
        case blasCore = "blas_core"
        case hundredStepsSeconds = "hundred_steps_seconds"
        case lipschitzSeconds = "lipschitz_seconds"
        case baselineSeconds = "baseline_seconds"
        case lipLower = "lip_lower"
        case lipUpper = "lip_upper"
    }

    /// Measures one cell of sphere data with random labels.
    public static func measure(
        n: Int,
        d: Int,
        width: Int,
        activation: ActivationKind = .relu,
        threads: Int = 1
    ) throws(IsosweepError) -> LipschitzBenchmark {
        BLAS.setThreads(threads)
        let cell = CellParameters(n: n, d: d, width: width, activation: activation).resolved()
        let data = try CellData.make(for: cell)
        let train = data.train.converted(to: Float.self)
        let initial = Network<Float>(randomWithInputDimension: d, width: width, activation: activation, seed: 0)
        var network = initial
        var workspace = TrainingWorkspace(points: n, network: network)
        var optimizer = Optimizer<Float>(
            kind: .adam,
            learningRate: cell.resolvedLearningRate,
            parameterCount: network.parameters.count
        )
        let clock = ContinuousClock()
        _ = network.lossAndGradient(on: train, workspace: &workspace)  // warm-up
        let trainingStart = clock.now
        for _ in 0..<100 {
            _ = network.lossAndGradient(on: train, workspace: &workspace)
            optimizer.step(&network.parameters, gradient: workspace.gradient)
        }
        let hundred = (clock.now - trainingStart).seconds
        let inputs = train.inputs.converted(to: Double.self)
        // The default options, as a cell passes them today: `LipschitzOptions.threads` stays 1
        // (measured on the busy 2-core machine, splitting the search over two threads with
        // single-threaded BLAS was 5-10% slower in wall time than OpenBLAS's own threads, though it
        // took the main thread's CPU time from ~0.8 s to ~0.55 s).
        let searchStart = clock.now
        let bounds = try Lipschitz.bounds(
            of: network.converted(to: Double.self),
            trainingInputs: inputs,
            distribution: data.distribution,
            seed: 0
        )
        let search = (clock.now - searchStart).seconds
        let baselineStart = clock.now
        _ = try Lipschitz.lowerBounds(
            of: initial.converted(to: Double.self),
            trainingInputs: inputs,
            distribution: data.distribution,
            seed: 0,
            supportOnly: true
        )
        let baseline = (clock.now - baselineStart).seconds
        return LipschitzBenchmark(
            n: n,
            d: d,
            width: width,
            activation: activation,
            threads: threads,
            hundredStepsSeconds: hundred,
            lipschitzSeconds: search,
            baselineSeconds: baseline,
            ratio: search / hundred,
            lipLower: bounds.lower,
            lipUpper: bounds.upper,
            blas: BLAS.configuration,
            blasCore: BLAS.core
        )
    }
}
