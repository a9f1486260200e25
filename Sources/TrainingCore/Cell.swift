public import Diagnostics
import Foundation

/// A cell run to the end: its result, and what a caller may save (network, training data).
public struct CellRun: Sendable {
    /// Parameters and metrics.
    public var result: CellResult
    /// The trained network, in the precision it was trained in.
    public var network: Network<Float>
    /// The training data, in the precision the network saw it.
    public var trainingData: Dataset<Float>
}

/// Runs one cell of the grid: data, training, metrics. Pure computation apart from reading a
/// data file the parameters name; deterministic for the same parameters, BLAS threads and machine.
public enum Cell {
    /// The share of a time limit that training may use; the Lipschitz search has the rest.
    public static let trainingShareOfTimeLimit = 0.75

    /// Trains the cell's network and measures it. `shouldStop` is polled between training steps
    /// and ascent iterations; when it returns true the cell ends with a `.cancelled` error.
    ///
    /// With a `timeLimit`, training stops after `trainingShareOfTimeLimit` of it (stop_reason
    /// `time_limit`) and the network it has is measured; the Lipschitz search's gradient ascent
    /// stops at the limit with the best points found (a looser but still certified lower bound),
    /// and so does the same search on the initial network (`lip_init_support_lower`), which runs last.
    /// Data generation, the random-features solve and the upper bound are not interrupted.
    /// `progress`, if given, follows the phases and training steps as they happen. `threads` is the
    /// cell's BLAS thread count (its runner sets OpenBLAS to it): the training steps split their
    /// rows over that many threads, and so does the Lipschitz search (`LipschitzOptions.threads`).
    ///
    /// With `checkpoints`, the iterative trainers save their state as it asks (at step
    /// boundaries; during the Lipschitz search, the trained network); with `resume`, a checkpoint
    /// of this cell, the run goes on from it and ends as an uninterrupted run at the same thread
    /// count and kernels would, bit for bit, but for the timings and `resumed_from_step`.
    public static func run(
        _ parameters: CellParameters,
        lipschitz options: LipschitzOptions = LipschitzOptions(),
        threads: Int = 1,
        timeLimit: Duration? = nil,
        progress: CellProgress? = nil,
        resume: TrainingCheckpoint? = nil,
        checkpoints: CheckpointOptions? = nil,
        shouldStop: @escaping @Sendable () -> Bool = { false }
    ) throws(IsosweepError) -> CellRun {
        let started = ContinuousClock.now
        var options = options
        options.threads = threads
        progress?.reset(
            maxSteps: parameters.isIterative
                ? parameters.maxSteps + (parameters.extraSteps ?? 0) + (parameters.smoothAfterFit ?? 0) : 0
        )
        let deadline = timeLimit.map { started + $0 }
        try parameters.validate()
        let cell = parameters.resolved()
        let data = try CellData.make(for: cell)
        let train = data.train.converted(to: Float.self)
        let seed = UInt64(cell.seed)
        let initial = Network<Float>(
            randomWithInputDimension: cell.d,
            width: cell.width,
            activation: cell.activation,
            seed: seed,
            outputScale: cell.resolvedInitScale
        )
        let cellText = TrainingCheckpoint.cellText(cell)
        try resume?.check(for: cell)
        var checkpointer: Checkpointer?
        if let checkpoints, cell.trainer == .adam || cell.trainer == .gd {
            checkpointer = Checkpointer(
                checkpoints,
                cell: cellText,
                earlierSeconds: resume?.trainSeconds ?? 0,
                threads: threads
            )
        }
        let outcome: TrainingOutcome<Float>
        if let resume, resume.stage == .measuring, let trained = resume.trained {
            // Training was over: its network is measured again from the start of the phase.
            var network = initial
            network.parameters = trained.parameters
            outcome = TrainingOutcome(
                network: network,
                steps: trained.steps,
                stopReason: trained.stopReason,
                seconds: resume.trainSeconds,
                flops: trained.flops,
                smoothing: trained.smoothing
            )
        } else {
            outcome = try Trainer.train(
                initial,
                on: train,
                parameters: cell,
                distribution: data.distribution,
                threads: threads,
                // A resumed run's training share counts what earlier attempts trained.
                stopAt: timeLimit.map {
                    started + max(.zero, $0 * trainingShareOfTimeLimit - .seconds(resume?.trainSeconds ?? 0))
                },
                progress: progress,
                resume: resume,
                checkpointer: checkpointer,
                shouldStop: shouldStop
            )
        }
        // During the Lipschitz search a checkpoint holds the trained network.
        var pollStop = shouldStop
        if let checkpointer {
            let measuring = MeasuringCheckpoint(checkpointer, outcome: outcome)
            pollStop = {
                measuring.poll()
                return shouldStop()
            }
        }

        var metrics = trainingMetrics(cell, data: data, outcome: outcome, options: options, threads: threads)
        metrics.resumedFromStep = resume?.step
        let trainInputs = train.inputs.converted(to: Double.self)
        metrics.interpFloor = InterpolationFloor.value(
            inputs: trainInputs,
            labels: data.train.labels,
            metric: data.distribution.support == .sphere ? .geodesic : .euclidean
        )
        var lipschitzTime = Duration.zero
        if outcome.stopReason != .diverged {
            progress?.enter(.lipschitz)
            lipschitzTime += try measure(
                outcome.network,
                data: data,
                trainInputs: trainInputs,
                seed: seed,
                options: options,
                deadline: deadline,
                shouldStop: pollStop,
                into: &metrics
            )
        }
        // The baseline: how large the constant on the support already was before training
        // (measured last: the trained network has first call on the time left). A construction
        // has no initial network.
        if cell.trainer != .construction {
            progress?.enter(.lipschitz)
            let start = ContinuousClock.now
            metrics.lipInitSupportLower = try Lipschitz.lowerBounds(
                of: initial.converted(to: Double.self),
                trainingInputs: trainInputs,
                distribution: data.distribution,
                seed: seed,
                options: options,
                supportOnly: true,
                stopAt: deadline,
                shouldStop: pollStop
            ).support
            lipschitzTime += ContinuousClock.now - start
        }
        metrics.lipSeconds = lipschitzTime.seconds
        return CellRun(
            result: CellResult(parameters: cell, metrics: metrics),
            network: outcome.network,
            trainingData: train
        )
    }

    /// The metrics training alone gives (steps, cost, provenance), every measurement of the
    /// network still nil.
    static func trainingMetrics(
        _ cell: CellParameters,
        data: CellData,
        outcome: TrainingOutcome<Float>,
        options: LipschitzOptions,
        threads: Int
    ) -> CellMetrics {
        let p = cell.parameterCount
        var metrics = CellMetrics(
            p: p,
            trainMSE: nil,
            noiseLevel: data.noiseLevel,
            eps: nil,
            fitFraction: nil,
            testMSE: nil,
            lipLower: nil,
            lipUpper: nil,
            lipSupportLower: nil,
            gradMean: nil,
            lawScale: (Double(cell.n) * Double(cell.d) / Double(p)).squareRoot(),
            lawRatio: nil,
            steps: outcome.steps,
            stopReason: outcome.stopReason,
            trainSeconds: outcome.seconds,
            lipSeconds: 0,
            flops: outcome.flops,
            gflops: outcome.seconds > 0 ? outcome.flops / outcome.seconds / 1e9 : 0,
            scienceVersion: scienceVersion,
            initialisation: cell.trainer == .construction
                ? "construction: one ReLU bump per training point (not trained)"
                : Network<Float>.initialisationScheme(outputScale: cell.resolvedInitScale),
            host: ProcessInfo.processInfo.hostName,
            blas: BLAS.configuration
        )
        metrics.smoothingSteps = outcome.smoothing?.steps
        metrics.fitHeld = outcome.smoothing?.fitHeld
        metrics.blasThreads = threads
        metrics.blasCore = BLAS.core
        metrics.memoryEstimateBytes = cell.estimatedPeakMemory(lipschitz: options, threads: threads)
        return metrics
    }

    /// Measures the trained network into `metrics`: its fit, its own floor, the test error and
    /// the Lipschitz bounds; returns the time the bounds took.
    static func measure(
        _ trained: Network<Float>,
        data: CellData,
        trainInputs: Matrix<Double>,
        seed: UInt64,
        options: LipschitzOptions,
        deadline: ContinuousClock.Instant?,
        shouldStop: @Sendable () -> Bool,
        into metrics: inout CellMetrics
    ) throws(IsosweepError) -> Duration {
        // Every metric is computed in double precision on the trained float32 weights, exactly
        // as a saved network would be re-measured.
        let network = trained.converted(to: Double.self)
        let fit = Measure.fit(network, Dataset(inputs: trainInputs, labels: data.train.labels))
        metrics.trainMSE = fit.mse
        metrics.fitFraction = fit.signAgreement
        metrics.fitFloor = InterpolationFloor.value(
            inputs: trainInputs,
            labels: network.outputs(trainInputs),
            metric: data.distribution.support == .sphere ? .geodesic : .euclidean
        )
        metrics.eps = data.noiseLevel - fit.mse
        metrics.testMSE = data.test.count > 0 ? Measure.fit(network, data.test).mse : nil
        let start = ContinuousClock.now
        let bounds = try Lipschitz.bounds(
            of: network,
            trainingInputs: trainInputs,
            distribution: data.distribution,
            seed: seed,
            options: options,
            stopAt: deadline,
            shouldStop: shouldStop
        )
        let took = ContinuousClock.now - start
        metrics.lipLower = bounds.lower
        metrics.lipUpper = bounds.upper
        metrics.lipUpperProduct = bounds.upperProduct
        metrics.lipUpperPath = bounds.upperPath
        metrics.lipUpperCentred = bounds.upperCentred
        metrics.lipSupportLower = bounds.supportLower
        metrics.gradMean = bounds.gradientMean
        if let eps = metrics.eps, eps > 0 {
            metrics.lawRatio = bounds.supportLower / (eps * metrics.lawScale)
        }
        // A network whose outputs overflow did not really converge: say so instead of reporting it.
        if !(fit.mse.isFinite && bounds.upper.isFinite) {
            metrics = metrics.diverged
        }
        return took
    }
}

extension CellMetrics {
    /// The metrics of a diverged run: nothing about the trained network is reported (the
    /// baselines, about the data and the initial network, stay).
    var diverged: CellMetrics {
        var copy = self
        copy.stopReason = .diverged
        copy.trainMSE = nil
        copy.eps = nil
        copy.fitFraction = nil
        copy.testMSE = nil
        copy.lipLower = nil
        copy.lipUpper = nil
        copy.lipUpperProduct = nil
        copy.lipUpperPath = nil
        copy.lipUpperCentred = nil
        copy.lipSupportLower = nil
        copy.fitFloor = nil
        copy.gradMean = nil
        copy.lawRatio = nil
        return copy
    }
}

/// Goodness-of-fit measures.
public enum Measure {
    /// Mean squared error and the share of points with sign(f(x)) = y.
    public static func fit(_ network: Network<Double>, _ data: Dataset<Double>) -> (mse: Double, signAgreement: Double)
    {
        guard data.count > 0 else { return (.nan, .nan) }
        let f = network.outputs(data.inputs)
        var squares = 0.0
        var agree = 0
        for i in 0..<data.count {
            squares += (f[i] - data.labels[i]) * (f[i] - data.labels[i])
            if f[i] * data.labels[i] > 0 { agree += 1 }
        }
        return (squares / Double(data.count), Double(agree) / Double(data.count))
    }
}

extension Duration {
    /// The duration in seconds.
    public var seconds: Double { Double(components.seconds) + Double(components.attoseconds) * 1e-18 }
}
