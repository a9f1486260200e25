import Foundation
import Testing

@testable import TrainingCore

/// The float32 step's vectorised kernels (every instruction-set variant this machine runs) and
/// its split into row blocks and threads.
@Suite struct StepKernelTests {
    /// Every 977th float bit pattern (both signs, subnormals, infinities, NaNs), as FastMathTests
    /// samples, with the edges added.
    static let inputs: [Float] = {
        var values: [Float] = [0, -0.0, .infinity, -.infinity, .leastNonzeroMagnitude, -.leastNonzeroMagnitude, 0.35]
        var bits: UInt32 = 0
        while true {
            let x = Float(bitPattern: bits)
            if !x.isNaN { values.append(x) }
            let (next, overflow) = bits.addingReportingOverflow(977)
            if overflow { break }
            bits = next
        }
        values.append(1.5)  // a count that is not a multiple of 16: the tail path too
        return values
    }()

    /// Whether two arrays hold the same bits.
    func identical(_ a: [Float], _ b: [Float]) -> Bool {
        a.count == b.count && zip(a, b).allSatisfy { $0.bitPattern == $1.bitPattern }
    }

    /// The worst error of `values` (computed at `inputs`) against `exact`, in ulps of the correctly
    /// rounded result, and whether any is NaN.
    func worst(_ inputs: [Float], _ values: [Float], _ exact: (Double) -> Double) -> (ulps: Double, nan: Bool) {
        var result = (ulps: 0.0, nan: false)
        for (x, value) in zip(inputs, values) where x.isFinite {
            if value.isNaN { result.nan = true }
            let truth = exact(Double(x))
            let rounded = Float(truth)
            if value == rounded { continue }
            let spacing = rounded == 0 ? Double(Float.leastNonzeroMagnitude) : Double(rounded.ulp)
            result.ulps = max(result.ulps, abs(Double(value) - truth) / spacing)
        }
        return result
    }

    /// The baseline variant computes FastMath's functions bit for bit, so FastMathTests' bounds are
    /// its bounds. The AVX2 and AVX-512 variants fuse multiply-adds (rounding once where FastMath
    /// rounds twice): they agree with each other bit for bit and keep FastMath's stated bounds
    /// (tanh 2 ulp, softplus and sigmoid 2.5, the slope from the value 3.5) and its exact cases.
    @Test func everyVariantKeepsFastMathsAccuracy() {
        let x = Self.inputs
        #expect(KernelVariant.supported.first == 0)
        #expect(identical(KernelVariant.tanh(0, x), x.map(FastMath.tanh)))
        #expect(identical(KernelVariant.softplus(0, x), x.map(FastMath.softplus)))
        let pair = x.map(FastMath.softplusAndSigmoid)
        let (baseValue, baseSigmoid) = KernelVariant.softplusAndSigmoid(0, x)
        #expect(identical(baseValue, pair.map(\.0)) && identical(baseSigmoid, pair.map(\.1)))
        let values = x.filter { $0 >= 0 }
        let baseSlope = KernelVariant.softplusSlope(0, fromValues: values)
        #expect(identical(baseSlope, values.map { FastMath.softplusSlope(fromValue: $0) }))

        let fused = KernelVariant.supported.filter { $0 != 0 }
        func softplus(_ z: Double) -> Double { max(z, 0) + log1p(exp(-abs(z))) }
        func sigmoid(_ z: Double) -> Double { 1 / (1 + exp(-z)) }
        for variant in fused {
            let tanh = KernelVariant.tanh(variant, x)
            let tanhError = worst(x, tanh, Foundation.tanh)
            print("CKernels variant \(variant): tanh \(tanhError.ulps) ulp")
            #expect(!tanhError.nan && tanhError.ulps <= 2, "variant \(variant): \(tanhError)")
            let special: [Float] = [0, -0.0, .infinity, -.infinity, 20, -9.5, 1e-30, .leastNonzeroMagnitude]
            let tanhSpecial = KernelVariant.tanh(variant, special)
            #expect(tanhSpecial[0].bitPattern == 0 && tanhSpecial[1].bitPattern == (-0.0 as Float).bitPattern)
            #expect(tanhSpecial[2...].elementsEqual([1, -1, 1, -1, 1e-30, .leastNonzeroMagnitude]))

            let value = KernelVariant.softplus(variant, x)
            let valueError = worst(x, value, softplus)
            let (pairValue, pairSigmoid) = KernelVariant.softplusAndSigmoid(variant, x)
            let pairError = worst(x, pairValue, softplus)
            let sigmoidError = worst(x, pairSigmoid, sigmoid)
            print("CKernels variant \(variant): softplus \(valueError.ulps), sigmoid \(sigmoidError.ulps) ulp")
            #expect(!valueError.nan && valueError.ulps <= 2.5, "variant \(variant): \(valueError)")
            #expect(!pairError.nan && pairError.ulps <= 2.5, "variant \(variant): \(pairError)")
            #expect(!sigmoidError.nan && sigmoidError.ulps <= 2.5, "variant \(variant): \(sigmoidError)")
            let edges = KernelVariant.softplus(variant, [.infinity, -.infinity, -200, 100, 0])
            #expect(edges[0] == .infinity && edges[1] == 0 && edges[2] == 0 && edges[3] == 100)
            #expect(abs(edges[4] - Float(log(2.0))) <= Float(log(2.0)).ulp)

            // The slope from the value, on the values softplus takes above -80 (as FastMathTests).
            let domain = x.filter { $0.isFinite && $0 > -80 }
            let slope = KernelVariant.softplusSlope(variant, fromValues: KernelVariant.softplus(variant, domain))
            let slopeError = worst(domain, slope, sigmoid)
            print("CKernels variant \(variant): softplus slope from the value \(slopeError.ulps) ulp")
            #expect(!slopeError.nan && slopeError.ulps <= 3.5, "variant \(variant): \(slopeError)")

            // Every fused variant computes the same bits.
            if let first = fused.first, variant != first {
                #expect(
                    identical(tanh, KernelVariant.tanh(first, x)) && identical(value, KernelVariant.softplus(first, x))
                )
                let other = KernelVariant.softplusAndSigmoid(first, x)
                #expect(identical(pairValue, other.value) && identical(pairSigmoid, other.slope))
            }
        }
    }

    func problem(_ activation: ActivationKind) -> (Network<Float>, Dataset<Float>) {
        // Neither n nor the width is a multiple of the block, the part count or 16.
        var rng = SeededGenerator(seed: 17, stream: .trainingData)
        let x = InputDistribution.sphere.sample(301, d: 13, using: &rng)
        let y = (0..<301).map { _ in rng.nextGaussian() }
        let network = Network<Double>(randomWithInputDimension: 13, width: 70, activation: activation, seed: 17)
        return (network.converted(to: Float.self), Dataset(inputs: x, labels: y).converted(to: Float.self))
    }

    func step(
        _ network: Network<Float>,
        _ data: Dataset<Float>,
        threads: Int,
        variant: Int32 = bestKernelVariant,
        penalty: Double = 0
    ) -> (loss: Double, gradient: [Float]) {
        var workspace = TrainingWorkspace(points: data.count, network: network, penalty: penalty > 0)
        workspace.kernelVariant = variant
        if penalty > 0 {
            let (mse, value) = network.penalisedLossAndGradient(
                on: data,
                penalty: penalty,
                tangential: true,
                workspace: &workspace,
                threads: threads
            )
            return (mse + value, workspace.gradient)
        }
        return (network.lossAndGradient(on: data, workspace: &workspace, threads: threads), workspace.gradient)
    }

    /// A step at a given thread count gives the same bits every time, with every variant (and the
    /// fused variants give the same bits as each other).
    @Test(arguments: ActivationKind.allCases, [0, 0.01])
    func stepsAreDeterministicAtEveryThreadCount(_ activation: ActivationKind, penalty: Double) {
        let (network, data) = problem(activation)
        for threads in [1, 2, 3] {
            var fusedResult: (loss: Double, gradient: [Float])?
            for variant in KernelVariant.supported {
                let first = step(network, data, threads: threads, variant: variant, penalty: penalty)
                let again = step(network, data, threads: threads, variant: variant, penalty: penalty)
                #expect(
                    first.loss == again.loss && identical(first.gradient, again.gradient),
                    "threads \(threads), variant \(variant)"
                )
                guard variant != 0 else { continue }
                if let fused = fusedResult {
                    #expect(fused.loss == first.loss && identical(fused.gradient, first.gradient), "threads \(threads)")
                }
                fusedResult = first
            }
        }
    }

    /// Splitting the rows changes only rounding: the float step at 1, 2 and 3 threads, with every
    /// variant, agrees with the float64 one, with or without the penalty.
    @Test(arguments: ActivationKind.allCases, [0, 0.01])
    func everySplitAgreesWithDoublePrecision(_ activation: ActivationKind, penalty: Double) {
        let (single, data) = problem(activation)
        let network = single.converted(to: Double.self)
        let exactData = data.converted(to: Double.self)
        var workspace = TrainingWorkspace(points: data.count, network: network, penalty: penalty > 0)
        let exactLoss: Double
        if penalty > 0 {
            let (mse, value) = network.penalisedLossAndGradient(
                on: exactData,
                penalty: penalty,
                tangential: true,
                workspace: &workspace,
                threads: 1
            )
            exactLoss = mse + value
        } else {
            exactLoss = network.lossAndGradient(on: exactData, workspace: &workspace, threads: 1)
        }
        let exact = workspace.gradient
        let norm = exact.reduce(0.0) { $0 + $1 * $1 }
        for threads in [1, 2, 3] {
            for variant in KernelVariant.supported {
                let (loss, gradient) = step(single, data, threads: threads, variant: variant, penalty: penalty)
                #expect(abs(loss - exactLoss) / exactLoss < 1e-5, "threads \(threads), variant \(variant)")
                let difference = zip(gradient, exact).reduce(0.0) {
                    $0 + (Double($1.0) - $1.1) * (Double($1.0) - $1.1)
                }
                #expect((difference / norm).squareRoot() < 1e-4, "threads \(threads), variant \(variant)")
            }
        }
    }

    /// The float64 step split into parts and blocks matches the unsplit one to rounding (its
    /// gradient is checked against finite differences by GradientTests and RegularisedTrainingTests).
    @Test(arguments: ActivationKind.allCases, [0, 0.01])
    func theDoubleStepDoesNotDependOnTheSplit(_ activation: ActivationKind, penalty: Double) {
        let (single, data) = problem(activation)
        let network = single.converted(to: Double.self)
        let exactData = data.converted(to: Double.self)
        func gradient(_ threads: Int) -> [Double] {
            var workspace = TrainingWorkspace(points: data.count, network: network, penalty: penalty > 0)
            if penalty > 0 {
                _ = network.penalisedLossAndGradient(
                    on: exactData,
                    penalty: penalty,
                    tangential: false,
                    workspace: &workspace,
                    threads: threads
                )
            } else {
                _ = network.lossAndGradient(on: exactData, workspace: &workspace, threads: threads)
            }
            return workspace.gradient
        }
        let one = gradient(1)
        let norm = one.reduce(0.0) { $0 + $1 * $1 }.squareRoot()
        for threads in [2, 3, 7] {
            let split = gradient(threads)
            let difference = zip(split, one).reduce(0.0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }.squareRoot()
            #expect(difference / norm < 1e-12, "threads \(threads)")
        }
    }
}
