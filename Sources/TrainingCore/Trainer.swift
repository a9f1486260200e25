public import Diagnostics

/// Why training stopped.
public enum StopReason: String, Codable, Sendable {
    /// The training MSE reached target_mse.
    case targetReached = "target_mse"
    /// max_steps were taken.
    case maxSteps = "max_steps"
    /// The loss became NaN or infinite: the learning rate is too large.
    case diverged
    /// Random features: the least-squares problem was solved exactly.
    case solved
    /// The cell's time limit ended training; the network it had is measured.
    case timeLimit = "time_limit"
    /// target_mse was reached and all extra_steps were taken with the regulariser on.
    case extraSteps = "extra_steps"
    /// During the extra steps the fit rose above target_mse: the last network that fitted is
    /// measured.
    case fitLost = "fit_lost"
    /// The network was built, not trained (`trainer: construction`).
    case constructed
    /// target_mse was reached, then smooth_after_fit smoothed under the fit (`SmoothingUnderFit`):
    /// the smoothest network that fitted is measured.
    case smoothed
}

/// What training produced.
public struct TrainingOutcome<Scalar: BLASScalar>: Sendable {
    /// The trained network (its last finite state if training diverged).
    public var network: Network<Scalar>
    /// Optimisation steps taken (1 for random features).
    public var steps: Int
    /// Why training stopped.
    public var stopReason: StopReason
    /// Wall-clock seconds spent training.
    public var seconds: Double
    /// Floating-point operations spent training (4 n d k per step for the GEMMs).
    public var flops: Double
    /// The training MSE of the network returned, as the last step measured it (iterative trainers).
    var finalMSE: Double?
    /// What `smooth_after_fit` did, where it ran.
    public var smoothing: SmoothingRecord?
}

/// Full-batch trainers of the two-layer network.
public enum Trainer {
    /// Trains `network` on `data` as `parameters` say, each step on `threads` threads (fixed for
    /// the whole training, so that its bits never depend on a process-wide setting that another
    /// thread may change meanwhile). With `resume` (a checkpoint of stage fitting or smoothing),
    /// training goes on from it; with `checkpointer`, the iterative trainers save checkpoints as
    /// it asks.
    public static func train<Scalar: BLASScalar>(
        _ network: Network<Scalar>,
        on data: Dataset<Scalar>,
        parameters: CellParameters,
        distribution: InputDistribution? = nil,
        threads: Int = 1,
        stopAt: ContinuousClock.Instant? = nil,
        progress: CellProgress? = nil,
        shouldStop: @Sendable () -> Bool = { false }
    ) throws(IsosweepError) -> TrainingOutcome<Scalar> {
        try train(
            network,
            on: data,
            parameters: parameters,
            distribution: distribution,
            threads: threads,
            stopAt: stopAt,
            progress: progress,
            resume: nil,
            checkpointer: nil,
            shouldStop: shouldStop
        )
    }

    /// `train`, resumed from `resume` and saving checkpoints through `checkpointer` (either nil
    /// for neither).
    static func train<Scalar: BLASScalar>(
        _ network: Network<Scalar>,
        on data: Dataset<Scalar>,
        parameters: CellParameters,
        distribution: InputDistribution?,
        threads: Int,
        stopAt: ContinuousClock.Instant?,
        progress: CellProgress?,
        resume: TrainingCheckpoint?,
        checkpointer: Checkpointer?,
        shouldStop: @Sendable () -> Bool
    ) throws(IsosweepError) -> TrainingOutcome<Scalar> {
        let clock = ContinuousClock()
        progress?.enter(.train)
        let start = clock.now
        var outcome: TrainingOutcome<Scalar>
        switch parameters.trainer {
        case .adam, .gd:
            if let resume, resume.stage == .smoothing, let fit = resume.fitOutcome {
                // Fitting was over: it ended as the checkpoint says.
                var fitted = network
                fitted.parameters = [Scalar](floats: fit.parameters)
                outcome = TrainingOutcome(
                    network: fitted,
                    steps: fit.steps,
                    stopReason: fit.stopReason,
                    seconds: 0,
                    flops: fit.flops,
                    finalMSE: fit.finalMSE
                )
            } else {
                let loop = Loop(threads: threads, stopAt: stopAt, progress: progress)
                outcome = try iterate(
                    network,
                    data,
                    parameters,
                    loop,
                    resume: resume?.fitting,
                    checkpointer,
                    shouldStop
                )
            }
            // Every one of these ends on a network that fits (fit_lost: the last that did).
            let fitted: Set<StopReason> = [.targetReached, .extraSteps, .fitLost]
            if fitted.contains(outcome.stopReason), let steps = parameters.smoothAfterFit, steps > 0 {
                checkpointer?.fitOutcome = TrainingCheckpoint.FitOutcome(
                    parameters: outcome.network.parameters.floats,
                    steps: outcome.steps,
                    stopReason: outcome.stopReason,
                    flops: outcome.flops,
                    finalMSE: outcome.finalMSE
                )
                // (The data's distribution is needed for off-data points; a caller without one,
                // as the benchmarks, gets the fit alone.)
                if let distribution {
                    let smoothed = try SmoothingUnderFit.run(
                        from: outcome.network,
                        // (After extra steps the MSE is only known to be at most the target.)
                        fittedMSE: outcome.finalMSE ?? parameters.targetMSE,
                        on: data,
                        parameters: parameters,
                        distribution: distribution,
                        steps: steps,
                        threads: threads,
                        stopAt: stopAt,
                        progress: progress,
                        startingStep: outcome.steps,
                        resume: resume?.smoothing,
                        checkpointer: checkpointer,
                        shouldStop: shouldStop
                    )
                    outcome.network = smoothed.network
                    outcome.steps += smoothed.record.steps
                    outcome.flops += smoothed.flops
                    outcome.smoothing = smoothed.record
                    outcome.stopReason = .smoothed
                }
            }
        case .randomFeatures:
            outcome = try solveRandomFeatures(network, data)
        case .construction:
            outcome = try Construction.build(on: data, width: network.width)
        }
        let elapsed = clock.now - start
        // Over every attempt: a resumed run adds the time its checkpoint had trained.
        outcome.seconds = elapsed.seconds + (resume?.trainSeconds ?? 0)
        return outcome
    }

    /// What the fitting loop needs besides the cell and its stop poll: its thread count, when to
    /// stop, where to report.
    struct Loop {
        var threads: Int
        var stopAt: ContinuousClock.Instant?
        var progress: CellProgress?
    }

    /// Full-batch steps until the training MSE reaches target_mse (or max_steps), then, with
    /// extra_steps, that many more with the regulariser still on. The regularisers (gradient
    /// penalty, weight decay) are on from the first step; the stopping rule reads the MSE alone.
    /// From `resume`, it goes on where a checkpoint left it; `checkpointer` saves the loop's state
    /// at the top of a step when one is due.
    private static func iterate<Scalar: BLASScalar>(
        _ initial: Network<Scalar>,
        _ data: Dataset<Scalar>,
        _ parameters: CellParameters,
        _ loop: Loop,
        resume: TrainingCheckpoint.Fitting?,
        _ checkpointer: Checkpointer?,
        _ shouldStop: @Sendable () -> Bool
    ) throws(IsosweepError) -> TrainingOutcome<Scalar> {
        let (threads, stopAt, progress) = (loop.threads, loop.stopAt, loop.progress)
        var network = initial
        let penalty = parameters.gradPenalty ?? 0
        // The constant the law bounds is tangential on the sphere (sphere and unit-norm file rows).
        let tangential = parameters.data == .sphere || parameters.data == .file
        var workspace = TrainingWorkspace(points: data.count, network: network, penalty: penalty > 0)
        var optimizer = Optimizer(for: parameters, network: network)
        // Two GEMMs of n x k x d a step; the penalty adds three (two for relu).
        let gemms = penalty == 0 ? 2.0 : network.activation == .relu ? 4 : 5
        let flopsPerStep = 2 * gemms * Double(data.count) * Double(network.inputDimension) * Double(network.width)
        let extraSteps = parameters.extraSteps ?? 0
        var extraStart: Int?  // the step at which target_mse was first reached
        var lastFit: [Scalar] = []
        var reason = StopReason.maxSteps
        var measuredSteps: Int?
        var finalMSE: Double?
        if let resume {
            network.parameters = [Scalar](floats: resume.parameters)
            optimizer.state = Optimizer<Scalar>.State(floats: resume.optimizer)
            extraStart = resume.extraStart
            lastFit = [Scalar](floats: resume.lastFit)
        }
        while true {
            let steps = optimizer.steps
            checkpointer?.poll(stage: .fitting, step: steps) { checkpoint in
                checkpoint.fitting = TrainingCheckpoint.Fitting(
                    parameters: network.parameters.floats,
                    optimizer: optimizer.state.floats,
                    extraStart: extraStart,
                    lastFit: lastFit.floats
                )
            }
            let mse: Double
            if penalty > 0 {
                mse =
                    network.penalisedLossAndGradient(
                        on: data,
                        penalty: penalty,
                        tangential: tangential,
                        workspace: &workspace,
                        threads: threads
                    ).mse
            } else {
                mse = network.lossAndGradient(on: data, workspace: &workspace, threads: threads)
            }
            if mse.isFinite { progress?.record(step: steps, loss: mse) }
            let finite = mse.isFinite && workspace.gradient.allFinite
            if extraStart != nil && !(finite && mse <= parameters.targetMSE) {
                // The regulariser pulled the fit above the target: keep the last network that fitted.
                network.parameters = lastFit
                measuredSteps = steps - 1
                reason = .fitLost
                break
            }
            if !finite {
                reason = .diverged
                break
            }
            if extraStart == nil && mse <= parameters.targetMSE {
                guard extraSteps > 0 else {
                    finalMSE = mse
                    reason = .targetReached
                    break
                }
                extraStart = steps
            }
            if let start = extraStart {
                lastFit = network.parameters
                if steps - start == extraSteps {
                    reason = .extraSteps
                    break
                }
            } else if steps == parameters.maxSteps {
                break
            }
            if steps % 16 == 0, let stopAt, ContinuousClock.now >= stopAt {
                reason = .timeLimit
                break
            }
            if steps % 16 == 0 && shouldStop() {
                throw IsosweepError(
                    .cancelled,
                    "training stopped at step \(steps): the worker is shutting down"
                )
            }
            optimizer.step(&network.parameters, gradient: workspace.gradient)
        }
        return TrainingOutcome(
            network: network,
            steps: measuredSteps ?? optimizer.steps,
            stopReason: reason,
            seconds: 0,
            flops: Double(optimizer.steps + 1) * flopsPerStep,
            finalMSE: finalMSE
        )
    }

    /// Keeps W and b, and sets (a, c) to the minimum-norm least-squares fit of the labels by the
    /// features [psi(W x + b), 1] (LAPACK dgelsd, in double precision).
    private static func solveRandomFeatures<Scalar: BLASScalar>(
        _ network: Network<Scalar>,
        _ data: Dataset<Scalar>
    ) throws(IsosweepError) -> TrainingOutcome<Scalar> {
        let k = network.width
        // In a function of its own, so that the pre-activations are freed before dgelsd's copies
        // are made, whatever the optimiser does (the memory estimate counts on it).
        let features = randomFeatures(network, data)
        let solution = try BLAS.minimumNormLeastSquares(features, data.labels.map { Double($0) }, relativeCutoff: -1)
        var trained = network
        for j in 0..<k { trained.parameters[trained.outputWeightOffset + j] = Scalar(solution[j]) }
        trained.parameters[trained.outputBiasOffset] = Scalar(solution[k])
        let n = Double(data.count)
        let m = Double(k + 1)
        // Forward GEMM, plus dgelsd's O(n m min(n, m)) factorisation (bidiagonalisation: ~4 n m min).
        let flops = 2 * n * Double(network.inputDimension) * Double(k) + 4 * n * m * min(n, m)
        let reason: StopReason = trained.parameters.allFinite ? .solved : .diverged
        return TrainingOutcome(network: trained, steps: 1, stopReason: reason, seconds: 0, flops: flops)
    }

    /// The features [psi(W x + b), 1] of every training point, in double precision.
    private static func randomFeatures<Scalar: BLASScalar>(
        _ network: Network<Scalar>,
        _ data: Dataset<Scalar>
    ) -> Matrix<Double> {
        let z = network.converted(to: Double.self).preactivations(data.inputs.converted())
        let k = network.width
        var features = Matrix<Double>(rows: data.count, columns: k + 1)
        for i in 0..<data.count {
            for j in 0..<k { features[i, j] = network.activation.value(z[i, j]) }
            features[i, k] = 1
        }
        return features
    }
}

extension Array where Element: BinaryFloatingPoint {
    /// Whether every element is finite.
    var allFinite: Bool {
        withUnsafeBufferPointer { buffer in
            var sum: Element = 0
            for value in buffer { sum += value * 0 }  // NaN and inf propagate; vectorises.
            return sum == 0
        }
    }
}
