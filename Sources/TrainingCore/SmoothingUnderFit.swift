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
        shouldStop: @Sendable () -> Bool
    ) throws(IsosweepError) -> (network: Network<Scalar>, record: SmoothingRecord, flops: Double) {
        let target = parameters.targetMSE
        let level = margin * target
        let tangential = parameters.data == .sphere || parameters.data == .file
        let d = fitted.inputDimension
        let seed = UInt64(parameters.seed)
        // The fresh points stay; the steepest points move at each refresh (labels unused).
        let points: Matrix<Scalar> = offDataPoints(count: data.count, d: d, distribution: distribution, seed: seed)
        let offData = { (x: Matrix<Scalar>) in Dataset(inputs: x, labels: [Scalar](repeating: 0, count: x.rows)) }
        let fresh = offData(points.rows(0..<data.count))
        var worst = offData(points.rows(data.count..<points.rows))
        // Hypercube data: the support is its vertices, where no ascent can move.
        let ascends = distribution.support != .vertices
        let onSphere = distribution.support == .sphere
        var network = fitted
        var trainSpace = TrainingWorkspace(points: data.count, network: network, penalty: true)
        var freshSpace = TrainingWorkspace(points: fresh.count, network: network, penalty: true)
        var worstSpace = TrainingWorkspace(points: worstPoints, network: network, penalty: true)
        var optimizer = Optimizer(for: parameters, network: network, rateFactor: learningRateFactor)
        var rng = SeededGenerator(seed: seed ^ 0x5EED, stream: .smoothing)
        let gemms = network.activation == .relu ? 4.0 : 5.0
        let flopsPerPoint = 2 * gemms * Double(d) * Double(network.width)
        var flops = 0.0

        /// The penalty over the three sets (each workspace then holds its gradient) and the fit,
        /// whose gradient is weighted by `fitWeight`.
        func evaluate(fitWeight: Double) -> (mse: Double, penalty: Double, finite: Bool) {
            flops += flopsPerPoint * Double(data.count + fresh.count + worst.count)
            let onData = network.penalisedLossAndGradient(
                on: data,
                penalty: 1,
                tangential: tangential,
                workspace: &trainSpace,
                threads: threads,
                fitWeight: fitWeight
            )
            func offDataPenalty(
                _ set: Dataset<Scalar>,
                _ weight: Double,
                _ space: inout TrainingWorkspace<Scalar>
            ) -> Double {
                network.penalisedLossAndGradient(
                    on: set,
                    penalty: weight,
                    tangential: tangential,
                    workspace: &space,
                    threads: threads,
                    fitWeight: 0
                ).penalty
            }
            let penalty =
                onData.penalty + offDataPenalty(fresh, 1, &freshSpace) + offDataPenalty(worst, worstWeight, &worstSpace)
            let finite =
                penalty.isFinite && onData.mse.isFinite && trainSpace.gradient.allFinite
                && freshSpace.gradient.allFinite && worstSpace.gradient.allFinite
            return (onData.mse, penalty, finite)
        }

        var multiplier = 0.0
        // (A fit of exactly 0 is taken as the smallest normal MSE: g stays finite.)
        var lastMSE = max(fittedMSE, .leastNormalMagnitude)
        var violation = log(lastMSE / level)
        var best: (penalty: Double, parameters: [Scalar])?
        var lastFits = true
        var restore = false
        var taken = 0
        while true {
            if ascends && taken % refreshInterval == 0 {
                // The steepest places move as the network does: climb again from where they were.
                let ascent = GradientAscent<Float>(network.converted(to: Double.self), threads: 1)
                let moved = try ascent.ascend(
                    from: worst.inputs.converted(to: Float.self),
                    tangential: [Bool](repeating: onSphere, count: worstPoints),
                    steps: ascentSteps,
                    rng: &rng,
                    stopAt: stopAt,
                    shouldStop: shouldStop
                )
                var movedPoints = moved.converted(to: Scalar.self)
                if onSphere { for i in 0..<worstPoints { movedPoints.normaliseRow(i) } }
                worst = offData(movedPoints)
            }
            let now = evaluate(fitWeight: max(0, multiplier + rho * violation) / lastMSE)
            let fits = now.finite && now.mse <= target
            if fits && (best == nil || now.penalty < best!.penalty) { best = (now.penalty, network.parameters) }
            if now.mse.isFinite { progress?.record(step: startingStep + taken, loss: now.mse) }
            if taken == steps || !now.finite {
                lastFits = fits
                restore = now.finite && !fits
                break
            }
            if taken % 16 == 0, let stopAt, ContinuousClock.now >= stopAt {
                lastFits = fits
                break
            }
            if taken % 16 == 0 && shouldStop() {
                throw IsosweepError(.cancelled, "smoothing stopped at step \(taken): the worker is shutting down")
            }
            lastMSE = max(now.mse, .leastNormalMagnitude)
            violation = log(lastMSE / level)
            multiplier = max(0, multiplier + multiplierStep * violation)
            var gradient = trainSpace.gradient
            for i in gradient.indices { gradient[i] += freshSpace.gradient[i] + worstSpace.gradient[i] }
            optimizer.step(&network.parameters, gradient: gradient)
            taken += 1
        }
        // Feasibility restoration: a last iterate above the target takes steps on the fit alone,
        // at most a tenth of the smoothing's, until it fits again; a restored iterate competes
        // for the smoothest like every other. A fresh optimiser: the smoothing's moments, scaled
        // by the penalty's gradients, stalled the fit.
        var restored = 0
        optimizer = Optimizer(for: parameters, network: network, rateFactor: learningRateFactor)
        while restore && restored < max(10, steps / 10) {
            let fit = network.penalisedLossAndGradient(
                on: data,
                penalty: 0,
                tangential: tangential,
                workspace: &trainSpace,
                threads: threads
            )
            flops += flopsPerPoint * Double(data.count)
            guard fit.mse.isFinite && trainSpace.gradient.allFinite else { break }
            if fit.mse <= target {
                lastFits = true
                let now = evaluate(fitWeight: 1)
                if now.finite && (best == nil || now.penalty < best!.penalty) {
                    best = (now.penalty, network.parameters)
                }
                break
            }
            optimizer.step(&network.parameters, gradient: trainSpace.gradient)
            restored += 1
        }
        if let best { network.parameters = best.parameters } else { network = fitted }
        return (network, SmoothingRecord(steps: taken + restored, fitHeld: lastFits), flops)
    }
}
