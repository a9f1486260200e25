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

    /// Each variant computes FastMath's functions bit for bit, so the ulp bounds FastMathTests
    /// measures for FastMath hold for every variant the step may run.
    @Test func everyVariantAgreesWithFastMathBitForBit() {
        let x = Self.inputs
        let tanh = x.map(FastMath.tanh)
        let softplus = x.map(FastMath.softplus)
        let pair = x.map(FastMath.softplusAndSigmoid)
        let values = x.filter { $0 >= 0 }
        let slope = values.map { FastMath.softplusSlope(fromValue: $0) }
        #expect(KernelVariant.supported.first == 0)
        for variant in KernelVariant.supported {
            #expect(identical(KernelVariant.tanh(variant, x), tanh), "variant \(variant)")
            #expect(identical(KernelVariant.softplus(variant, x), softplus), "variant \(variant)")
            let (value, sigmoid) = KernelVariant.softplusAndSigmoid(variant, x)
            #expect(identical(value, pair.map(\.0)) && identical(sigmoid, pair.map(\.1)), "variant \(variant)")
            #expect(identical(KernelVariant.softplusSlope(variant, fromValues: values), slope), "variant \(variant)")
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

    /// A step at a given thread count gives the same bits every time, whichever variant runs.
    @Test(arguments: ActivationKind.allCases, [0, 0.01])
    func stepsAreDeterministicAtEveryThreadCount(_ activation: ActivationKind, penalty: Double) {
        let (network, data) = problem(activation)
        for threads in [1, 2, 3] {
            let first = step(network, data, threads: threads, penalty: penalty)
            let again = step(network, data, threads: threads, penalty: penalty)
            #expect(first.loss == again.loss && identical(first.gradient, again.gradient), "threads \(threads)")
            for variant in KernelVariant.supported {
                let other = step(network, data, threads: threads, variant: variant, penalty: penalty)
                #expect(
                    other.loss == first.loss && identical(other.gradient, first.gradient),
                    "threads \(threads), variant \(variant)"
                )
            }
        }
    }

    /// Splitting the rows changes only rounding: the float step at 1, 2 and 3 threads agrees with
    /// the float64 one, with or without the penalty.
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
            let (loss, gradient) = step(single, data, threads: threads, penalty: penalty)
            #expect(abs(loss - exactLoss) / exactLoss < 1e-5, "threads \(threads)")
            let difference = zip(gradient, exact).reduce(0.0) { $0 + (Double($1.0) - $1.1) * (Double($1.0) - $1.1) }
            #expect((difference / norm).squareRoot() < 1e-4, "threads \(threads)")
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
