import Diagnostics
import Foundation

/// What `smooth_after_fit` did after the fit: how many smoothing steps ran, and whether it ended
/// on an iterate that fits.
public struct SmoothingRecord: Sendable, Equatable {
    /// Smoothing steps taken (`smoothing_steps`).
    public var steps: Int
    /// Whether the smoothing ended on an iterate at or below target_mse, after at most a tenth of
    /// its steps on the fit alone (`fit_held`).
    public var fitHeld: Bool
}

/// `smooth_after_fit`: once training has reached target_mse, minimise the Lipschitz penalty
/// subject to keeping it there.
///
/// The penalty is the mean squared input gradient (tangential on the sphere) over three sets of
/// points, each mean counted once: the training points; as many fresh points of the data
/// distribution, drawn once; and, weighted by `worstWeight`, `worstPoints` points that a float32
/// gradient-norm ascent (`GradientAscent`) moves towards the network's steepest places, again
/// every `refreshInterval` steps. The constraint train_mse <= target is held by an augmented
/// Lagrangian for an inequality (Powell-Hestenes-Rockafellar) on g = log(mse / (margin target)):
/// a step descends P + (rho / 2) max(0, g + mu / rho)^2, whose gradient weights the fit's by
/// max(0, mu + rho g) / mse (g and mse of the last evaluation), and the multiplier then takes
/// mu <- max(0, mu + eta g), with a step eta far below rho (`multiplierStep`): the classical
/// eta = rho oscillated. The logarithm keeps both directions of a violation
/// in proportion (mse / target - 1 let a fit far below the target pin mu at thousands for
/// hundreds of steps). The optimiser is a fresh one of the cell's kind at a tenth of its rate.
///
/// A last iterate above target_mse then takes steps on the fit alone (at most a tenth of the
/// smoothing's) until it fits again (`fit_held` says whether it did). The network kept is the
/// smoothest that fitted: of every iterate whose MSE was at or below target_mse (the fitted
/// network it started from among them), the one with the lowest penalty.
///
/// Tuned by hand (docs/smoothing.md has the figures): on n 256, d 32, width 256 (sphere, seed 0) rates 1,
/// 0.1 and 0.03 of the cell's, rho 1 and 10 (the classical multiplier step) and weights 1 and 4
/// of the steepest points; 0.1, rho 10 and 4 did best there, but on the law-in-d study's cells
/// (n 1024) the fit then swung about the target and ended above it in 12 of 17; rho 100 with a
/// multiplier step of 1 holds it (n 1024, d 32-1024: 2,000 steps lower lip_support_lower
/// 1.1-2.6x, every fit held).
enum SmoothingUnderFit {
    /// Points moved towards the steepest places, and the ascent steps of each refresh.
    static let worstPoints = 64
    static let ascentSteps = 20
    static let refreshInterval = 100
    /// The augmented Lagrangian's rho, and the multiplier's step, taken every step. rho 10 with
    /// the classical step (rho, every 10 steps) let the fit swing between 0.1 and 2.5 times the
    /// target with a period of ~600 steps, and end above it in 12 of 17 cells; rho 100 with a step
    /// of 1 settles on the held level within ~700 steps (measured on n 1024, d 256, width 63).
    static let rho = 100.0
    static let multiplierStep = 1.0
    /// The constraint is held at this fraction of target_mse: the iterates oscillate about the
    /// level the multiplier holds them at (by ~10%), and at the target itself half of them would
    /// end above it (measured: 12 of 17 cells of the law-in-d study's first run).
    static let margin = 0.9
    /// The weight of the mean squared gradient at the steepest points (the training and the
    /// fresh points weigh 1 each): the law speaks of the largest gradient, not a typical one.
    static let worstWeight = 4.0
    /// The smoothing steps' learning rate, as a fraction of the cell's: at the full rate a fresh
    /// Adam's first steps threw the fit far off and the multiplier then overshot.
    static let learningRateFactor = 0.1

    /// The off-data points: `count` fresh points of `distribution`, then `worstPoints` more that
    /// the ascent moves (drawn from the cell's smoothing stream).
    static func offDataPoints<Scalar: BLASScalar>(
        count: Int,
        d: Int,
        distribution: InputDistribution,
        seed: UInt64
    ) -> Matrix<Scalar> {
        var rng = SeededGenerator(seed: seed, stream: .smoothing)
        return distribution.sample(count + worstPoints, d: d, using: &rng).converted(to: Scalar.self)
    }

    /// Runs up to `steps` smoothing steps from `fitted` (which reached target_mse with
    /// `fittedMSE`) and returns the smoothest network that fitted, what was done, and the
    /// floating-point operations spent. Stops early at `stopAt` (keeping what it has); throws
    /// when `shouldStop` says the worker is shutting down.
    static func run<Scalar: BLASScalar>(
        from fitted: Network<Scalar>,
        fittedMSE: Double,
        on data: Dataset<Scalar>,
        parameters: CellParameters,
        distribution: InputDistribution,
        steps: Int,
        threads: Int,
        stopAt: ContinuousClock.Instant?,
        progress: CellProgress?,
        startingStep: Int,
        resume: TrainingCheckpoint.Smoothing? = nil,
        checkpointer: Checkpointer? = nil,
        shouldStop: @Sendable () -> Bool
    ) throws(IsosweepError) -> (network: Network<Scalar>, record: SmoothingRecord, flops: Double) {
        var session = SmoothingSession(
            fitted: fitted,
            data: data,
            parameters: parameters,
            distribution: distribution,
            threads: threads
        )
        var optimizer = Optimizer(for: parameters, network: fitted, rateFactor: learningRateFactor)
        if let resume {
            session.network.parameters = [Scalar](floats: resume.parameters)
            session.worst = SmoothingSession.offData(
                Matrix(rows: worstPoints, columns: fitted.inputDimension, storage: [Scalar](floats: resume.worst))
            )
            session.flops = resume.flops
            optimizer.state = Optimizer<Scalar>.State(floats: resume.optimizer)
        }
        var smoothing = try session.smooth(
            steps: steps,
            fittedMSE: fittedMSE,
            target: parameters.targetMSE,
            optimizer: &optimizer,
            seed: UInt64(parameters.seed),
            loop: SmoothingSession.Loop(
                stopAt: stopAt,
                progress: progress,
                startingStep: startingStep,
                resume: resume,
                checkpointer: checkpointer
            ),
            shouldStop: shouldStop
        )
        // Feasibility restoration: a last iterate above the target takes steps on the fit alone,
        // at most a tenth of the smoothing's, until it fits again; a restored iterate competes
        // for the smoothest like every other. A fresh optimiser: the smoothing's moments, scaled
        // by the penalty's gradients, stalled the fit.
        var restored = 0
        if smoothing.needsRestoring {
            optimizer = Optimizer(for: parameters, network: session.network, rateFactor: learningRateFactor)
            restored = session.restoreFit(
                within: max(10, steps / 10),
                target: parameters.targetMSE,
                optimizer: &optimizer,
                smoothing: &smoothing,
                progress: progress,
                startingStep: startingStep + smoothing.taken
            )
        }
        var network = fitted
        if let best = smoothing.best { network.parameters = best.parameters }
        return (
            network, SmoothingRecord(steps: smoothing.taken + restored, fitHeld: smoothing.lastFits), session.flops
        )
    }
}

/// Where a smoothing run stands: the smoothest iterate that fitted so far, and how the last one
/// did.
struct SmoothingProgress<Scalar: BLASScalar> {
    /// The smoothest iterate at or below target_mse, by its penalty.
    var best: (penalty: Double, parameters: [Scalar])?
    /// Whether the last iterate fitted.
    var lastFits = true
    /// Whether the last iterate is finite but above the target, so the fit must be restored.
    var needsRestoring = false
    /// Smoothing steps taken.
    var taken = 0

    /// Keeps `parameters` if they fit and are the smoothest yet.
    mutating func offer(penalty: Double, parameters: [Scalar], fits: Bool) {
        if fits && (best == nil || penalty < best!.penalty) { best = (penalty, parameters) }
    }
}

/// One smoothing run's network, its three point sets with their workspaces, and the flops spent
/// (`SmoothingUnderFit`).
struct SmoothingSession<Scalar: BLASScalar> {
    var network: Network<Scalar>
    let data: Dataset<Scalar>
    /// Fresh points of the distribution, drawn once (labels unused).
    let fresh: Dataset<Scalar>
    /// The points the ascent moves towards the steepest places, at each refresh.
    var worst: Dataset<Scalar>
    var trainSpace: TrainingWorkspace<Scalar>
    var freshSpace: TrainingWorkspace<Scalar>
    var worstSpace: TrainingWorkspace<Scalar>
    let tangential: Bool
    let threads: Int
    /// Hypercube data: the support is its vertices, where no ascent can move.
    let ascends: Bool
    let onSphere: Bool
    let flopsPerPoint: Double
    var flops = 0.0

    init(
        fitted: Network<Scalar>,
        data: Dataset<Scalar>,
        parameters: CellParameters,
        distribution: InputDistribution,
        threads: Int
    ) {
        let d = fitted.inputDimension
        let points: Matrix<Scalar> = SmoothingUnderFit.offDataPoints(
            count: data.count,
            d: d,
            distribution: distribution,
            seed: UInt64(parameters.seed)
        )
        network = fitted
        self.data = data
        fresh = Self.offData(points.rows(0..<data.count))
        worst = Self.offData(points.rows(data.count..<points.rows))
        trainSpace = TrainingWorkspace(points: data.count, network: fitted, penalty: true)
        freshSpace = TrainingWorkspace(points: fresh.count, network: fitted, penalty: true)
        worstSpace = TrainingWorkspace(points: SmoothingUnderFit.worstPoints, network: fitted, penalty: true)
        tangential = parameters.data == .sphere || parameters.data == .file
        self.threads = threads
        ascends = distribution.support != .vertices
        onSphere = distribution.support == .sphere
        let gemms = fitted.activation == .relu ? 4.0 : 5.0
        flopsPerPoint = 2 * gemms * Double(d) * Double(fitted.width)
    }

    /// Points as a dataset whose labels do not matter.
    static func offData(_ x: Matrix<Scalar>) -> Dataset<Scalar> {
        Dataset(inputs: x, labels: [Scalar](repeating: 0, count: x.rows))
    }

    /// The penalty over the three sets (each workspace then holds its gradient) and the fit,
    /// whose gradient is weighted by `fitWeight`.
    mutating func evaluate(fitWeight: Double) -> (mse: Double, penalty: Double, finite: Bool) {
        flops += flopsPerPoint * Double(data.count + fresh.count + worst.count)
        let onData = network.penalisedLossAndGradient(
            on: data,
            penalty: 1,
            tangential: tangential,
            workspace: &trainSpace,
            threads: threads,
            fitWeight: fitWeight
        )
        let onFresh = network.penalisedLossAndGradient(
            on: fresh,
            penalty: 1,
            tangential: tangential,
            workspace: &freshSpace,
            threads: threads,
            fitWeight: 0
        ).penalty
        let onWorst = network.penalisedLossAndGradient(
            on: worst,
            penalty: SmoothingUnderFit.worstWeight,
            tangential: tangential,
            workspace: &worstSpace,
            threads: threads,
            fitWeight: 0
        ).penalty
        let penalty = onData.penalty + onFresh + onWorst
        let finite =
            penalty.isFinite && onData.mse.isFinite && trainSpace.gradient.allFinite
            && freshSpace.gradient.allFinite && worstSpace.gradient.allFinite
        return (onData.mse, penalty, finite)
    }

    /// Moves the steepest points again: they climb from where they were, as the network moved.
    mutating func climbSteepest(
        rng: inout SeededGenerator,
        stopAt: ContinuousClock.Instant?,
        shouldStop: @Sendable () -> Bool
    ) throws(IsosweepError) {
        let ascent = GradientAscent<Float>(network.converted(to: Double.self), threads: 1)
        let moved = try ascent.ascend(
            from: worst.inputs.converted(to: Float.self),
            tangential: [Bool](repeating: onSphere, count: SmoothingUnderFit.worstPoints),
            steps: SmoothingUnderFit.ascentSteps,
            rng: &rng,
            stopAt: stopAt,
            shouldStop: shouldStop
        )
        var movedPoints = moved.converted(to: Scalar.self)
        if onSphere { for i in 0..<SmoothingUnderFit.worstPoints { movedPoints.normaliseRow(i) } }
        worst = Self.offData(movedPoints)
    }

    /// Where the smoothing loop stops and reports, and where it resumes from and saves to.
    struct Loop {
        var stopAt: ContinuousClock.Instant?
        var progress: CellProgress?
        /// Steps taken before smoothing (the fit's), for progress and checkpoints.
        var startingStep: Int
        var resume: TrainingCheckpoint.Smoothing?
        var checkpointer: Checkpointer?
    }

    /// The smoothing loop: up to `steps` steps on the augmented Lagrangian, keeping the
    /// smoothest iterate that fits (see `SmoothingUnderFit`). A checkpoint is its state at the
    /// top of a step, before the steepest points' refresh.
    mutating func smooth(
        steps: Int,
        fittedMSE: Double,
        target: Double,
        optimizer: inout Optimizer<Scalar>,
        seed: UInt64,
        loop: Loop,
        shouldStop: @Sendable () -> Bool
    ) throws(IsosweepError) -> SmoothingProgress<Scalar> {
        let (stopAt, progress, startingStep) = (loop.stopAt, loop.progress, loop.startingStep)
        let level = SmoothingUnderFit.margin * target
        var rng = SeededGenerator(seed: seed ^ 0x5EED, stream: .smoothing)
        var multiplier = 0.0
        // (A fit of exactly 0 is taken as the smallest normal MSE: g stays finite.)
        var lastMSE = max(fittedMSE, .leastNormalMagnitude)
        var violation = log(lastMSE / level)
        var state = SmoothingProgress<Scalar>()
        if let resume = loop.resume {
            rng = SeededGenerator(stateWords: resume.rng)
            multiplier = resume.multiplier
            lastMSE = resume.lastMSE
            violation = resume.violation
            state.taken = resume.taken
            state.best = resume.best.map { (penalty: $0.penalty, parameters: [Scalar](floats: $0.parameters)) }
        }
        while true {
            loop.checkpointer?.poll(stage: .smoothing, step: startingStep + state.taken) { checkpoint in
                checkpoint.smoothing = TrainingCheckpoint.Smoothing(
                    parameters: network.parameters.floats,
                    optimizer: optimizer.state.floats,
                    worst: worst.inputs.storage.floats,
                    rng: rng.stateWords,
                    multiplier: multiplier,
                    lastMSE: lastMSE,
                    violation: violation,
                    taken: state.taken,
                    best: state.best.map { (penalty: $0.penalty, parameters: $0.parameters.floats) },
                    flops: flops
                )
            }
            if ascends && state.taken % SmoothingUnderFit.refreshInterval == 0 {
                try climbSteepest(rng: &rng, stopAt: stopAt, shouldStop: shouldStop)
            }
            let now = evaluate(fitWeight: max(0, multiplier + SmoothingUnderFit.rho * violation) / lastMSE)
            let fits = now.finite && now.mse <= target
            state.offer(penalty: now.penalty, parameters: network.parameters, fits: fits)
            if now.mse.isFinite { progress?.record(step: startingStep + state.taken, loss: now.mse) }
            if state.taken == steps || !now.finite {
                state.lastFits = fits
                state.needsRestoring = now.finite && !fits
                return state
            }
            if state.taken % 16 == 0, let stopAt, ContinuousClock.now >= stopAt {
                state.lastFits = fits
                return state
            }
            if state.taken % 16 == 0 && shouldStop() {
                throw IsosweepError(.cancelled, "smoothing stopped at step \(state.taken): the worker is shutting down")
            }
            lastMSE = max(now.mse, .leastNormalMagnitude)
            violation = log(lastMSE / level)
            multiplier = max(0, multiplier + SmoothingUnderFit.multiplierStep * violation)
            var gradient = trainSpace.gradient
            for i in gradient.indices { gradient[i] += freshSpace.gradient[i] + worstSpace.gradient[i] }
            optimizer.step(&network.parameters, gradient: gradient)
            state.taken += 1
        }
    }

    /// Steps on the fit alone, at most `limit`, until the network fits again; the fitting
    /// iterate is offered as a candidate. Returns the steps taken. Each step is reported to
    /// `progress` (as step `startingStep` + its index), so that a watchdog sees it move. (It saves
    /// no checkpoint: a retry resumes from the smoothing's last and restores again.)
    mutating func restoreFit(
        within limit: Int,
        target: Double,
        optimizer: inout Optimizer<Scalar>,
        smoothing: inout SmoothingProgress<Scalar>,
        progress: CellProgress? = nil,
        startingStep: Int = 0
    ) -> Int {
        var restored = 0
        while restored < limit {
            let fit = network.penalisedLossAndGradient(
                on: data,
                penalty: 0,
                tangential: tangential,
                workspace: &trainSpace,
                threads: threads
            )
            flops += flopsPerPoint * Double(data.count)
            guard fit.mse.isFinite && trainSpace.gradient.allFinite else { break }
            progress?.record(step: startingStep + restored, loss: fit.mse)
            if fit.mse <= target {
                smoothing.lastFits = true
                let now = evaluate(fitWeight: 1)
                smoothing.offer(penalty: now.penalty, parameters: network.parameters, fits: now.finite)
                break
            }
            optimizer.step(&network.parameters, gradient: trainSpace.gradient)
            restored += 1
        }
        return restored
    }
}
