import Foundation
import TrainingCore

/// Measured speed of the training step against plain SGEMM on the same shapes, in the same run.
struct TrainingBenchmark: Sendable, Codable {
    var n: Int
    var d: Int
    var width: Int
    var steps: Int
    var threads: Int
    var activation: ActivationKind
    /// Seconds per full training step (forward, backward, Adam update), best of the rounds.
    var secondsPerStep: Double
    /// 4 n d k / secondsPerStep.
    var stepGflops: Double
    /// Seconds for the step's two GEMMs alone (Z = X W^T and dW = Delta^T X), best of the rounds.
    var sgemmSecondsPerStep: Double
    /// 4 n d k / sgemmSecondsPerStep.
    var sgemmGflops: Double
    /// stepGflops / sgemmGflops: the share of pure-GEMM speed the whole step keeps.
    var ratio: Double
    /// OpenBLAS build, kernel and threads.
    var blas: String
    /// The OpenBLAS kernels measured (`BLAS.core`): the SGEMM figures are theirs.
    var blasCore: String
    /// With a gradient penalty: its lambda, the seconds of a penalised step (best round) and its
    /// cost in plain steps of the same run.
    var gradPenalty: Double?
    var penalisedSecondsPerStep: Double?
    var penaltyCost: Double?

    enum CodingKeys: String, CodingKey {
        case n, d, width, steps, threads, activation, ratio, blas
        case gradPenalty = "grad_penalty"
        case penalisedSecondsPerStep = "penalised_seconds_per_step"
        case penaltyCost = "penalised_over_plain_step"
        case secondsPerStep = "seconds_per_step"
        case stepGflops = "step_gflops"
        case sgemmSecondsPerStep = "sgemm_seconds_per_step"
        case sgemmGflops = "sgemm_gflops"
        case blasCore = "blas_core"
    }

    /// Times `steps` training steps and `steps` pairs of the same SGEMMs, alternating for
    /// `rounds` rounds so that both see the same machine state, and keeps each one's best round.
    static func measure(
        n: Int,
        d: Int,
        width k: Int,
        steps: Int,
        threads: Int,
        activation: ActivationKind = .relu,
        rounds: Int = 3,
        gradPenalty: Double = 0
    ) -> TrainingBenchmark {
        BLAS.setThreads(threads)
        let (inputs, data) = trainingData(n: n, d: d)
        var network = Network<Float>(randomWithInputDimension: d, width: k, activation: activation, seed: 0)
        var workspace = TrainingWorkspace(points: n, network: network)
        var optimizer = Optimizer<Float>(kind: .adam, learningRate: 1e-3, parameterCount: network.parameters.count)
        var hidden = [Float](repeating: 0, count: n * k)
        var weightGradient = [Float](repeating: 0, count: k * d)
        let weights = network.weights.storage
        let clock = ContinuousClock()

        func trainingSteps() -> Double {
            let start = clock.now
            for _ in 0..<steps {
                _ = network.lossAndGradient(on: data, workspace: &workspace)
                optimizer.step(&network.parameters, gradient: workspace.gradient)
            }
            return (clock.now - start).seconds / Double(steps)
        }
        var penalised = network
        var penalisedWorkspace = TrainingWorkspace(
            points: gradPenalty > 0 ? n : 0,
            network: network,
            penalty: gradPenalty > 0
        )
        var penalisedOptimizer = Optimizer<Float>(
            kind: .adam,
            learningRate: 1e-3,
            parameterCount: network.parameters.count
        )
        func penalisedSteps() -> Double {
            let start = clock.now
            for _ in 0..<steps {
                _ = penalised.penalisedLossAndGradient(
                    on: data,
                    penalty: gradPenalty,
                    tangential: true,
                    workspace: &penalisedWorkspace
                )
                penalisedOptimizer.step(&penalised.parameters, gradient: penalisedWorkspace.gradient)
            }
            return (clock.now - start).seconds / Double(steps)
        }
        func gemmPairs() -> Double {
            gemmPairSeconds(inputs.storage, weights, &hidden, &weightGradient, n: n, d: d, k: k, steps: steps)
        }
        // Warm-up: page in buffers, let OpenBLAS start its threads.
        _ = network.lossAndGradient(on: data, workspace: &workspace)
        var bestStep = Double.infinity
        var bestGemm = Double.infinity
        var bestPenalised = Double.infinity
        for _ in 0..<max(1, rounds) {
            bestGemm = min(bestGemm, gemmPairs())
            bestStep = min(bestStep, trainingSteps())
            if gradPenalty > 0 { bestPenalised = min(bestPenalised, penalisedSteps()) }
        }
        return report(
            n: n,
            d: d,
            k: k,
            steps: steps,
            threads: threads,
            activation: activation,
            bestStep: bestStep,
            bestGemm: bestGemm,
            gradPenalty: gradPenalty,
            bestPenalised: bestPenalised
        )
    }

    /// Seconds per Adam step of a relu network of this shape (the best of three, after one to
    /// warm up): a large cell's step, for weighing what else a cell does against it.
    static func stepSeconds(n: Int, d: Int, width k: Int, threads: Int) -> Double {
        BLAS.setThreads(threads)
        let (_, data) = trainingData(n: n, d: d)
        var network = Network<Float>(randomWithInputDimension: d, width: k, activation: .relu, seed: 0)
        var workspace = TrainingWorkspace(points: n, network: network)
        var optimizer = Optimizer<Float>(kind: .adam, learningRate: 1e-3, parameterCount: network.parameters.count)
        var best = Double.infinity
        for round in 0..<4 {
            let start = ContinuousClock.now
            _ = network.lossAndGradient(on: data, workspace: &workspace)
            optimizer.step(&network.parameters, gradient: workspace.gradient)
            if round > 0 { best = min(best, (ContinuousClock.now - start).seconds) }
        }
        return best
    }

    /// The benchmark's data set: `n` points on the sphere in `d` dimensions with random labels of
    /// -1 or 1, from the fixed training-data seed; also its inputs as a matrix of their own.
    private static func trainingData(n: Int, d: Int) -> (inputs: Matrix<Float>, data: Dataset<Float>) {
        var rng = SeededGenerator(seed: 0, stream: .trainingData)
        let inputs = InputDistribution.sphere.sample(n, d: d, using: &rng).converted(to: Float.self)
        let labels = (0..<n).map { _ in rng.next() & 1 == 0 ? Float(-1) : Float(1) }
        return (inputs, Dataset(inputs: inputs, labels: labels))
    }

    /// Runs `steps` pairs of the training step's two SGEMMs (Z = X W^T into `hidden`, then
    /// dW = Z^T X into `weightGradient`, Z standing in for Delta) on the n x d `inputs` and the
    /// k x d `weights`, and returns the seconds per pair.
    private static func gemmPairSeconds(
        _ inputs: [Float],
        _ weights: [Float],
        _ hidden: inout [Float],
        _ weightGradient: inout [Float],
        n: Int,
        d: Int,
        k: Int,
        steps: Int
    ) -> Double {
        let clock = ContinuousClock()
        let start = clock.now
        inputs.withUnsafeBufferPointer { x in
            weights.withUnsafeBufferPointer { w in
                hidden.withUnsafeMutableBufferPointer { z in
                    weightGradient.withUnsafeMutableBufferPointer { g in
                        for _ in 0..<steps {
                            Float.gemm(
                                transposeA: false,
                                transposeB: true,
                                m: n,
                                n: k,
                                k: d,
                                alpha: 1,
                                a: x.baseAddress!,
                                lda: d,
                                b: w.baseAddress!,
                                ldb: d,
                                beta: 0,
                                c: z.baseAddress!,
                                ldc: k
                            )
                            Float.gemm(
                                transposeA: true,
                                transposeB: false,
                                m: k,
                                n: d,
                                k: n,
                                alpha: 1,
                                a: z.baseAddress!,
                                lda: k,
                                b: x.baseAddress!,
                                ldb: d,
                                beta: 0,
                                c: g.baseAddress!,
                                ldc: d
                            )
                        }
                    }
                }
            }
        }
        return (clock.now - start).seconds / Double(steps)
    }

    /// The benchmark's figures from the best rounds: seconds per plain step, per SGEMM pair and,
    /// with a gradient penalty, per penalised step.
    private static func report(
        n: Int,
        d: Int,
        k: Int,
        steps: Int,
        threads: Int,
        activation: ActivationKind,
        bestStep: Double,
        bestGemm: Double,
        gradPenalty: Double,
        bestPenalised: Double
    ) -> TrainingBenchmark {
        let flops = 4 * Double(n) * Double(d) * Double(k)
        var result = TrainingBenchmark(
            n: n,
            d: d,
            width: k,
            steps: steps,
            threads: threads,
            activation: activation,
            secondsPerStep: bestStep,
            stepGflops: flops / bestStep / 1e9,
            sgemmSecondsPerStep: bestGemm,
            sgemmGflops: flops / bestGemm / 1e9,
            ratio: bestGemm / bestStep,
            blas: BLAS.configuration,
            blasCore: BLAS.core
        )
        if gradPenalty > 0 {
            result.gradPenalty = gradPenalty
            result.penalisedSecondsPerStep = bestPenalised
            result.penaltyCost = bestPenalised / bestStep
        }
        return result
    }
}
