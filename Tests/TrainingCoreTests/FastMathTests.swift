import Foundation
import Testing

@testable import TrainingCore

/// The training step's float32 activations against the double-precision functions, over every
/// 977th float (4.4 million, both signs, subnormals to infinity) and at the edges: the errors
/// in units in the last place of the correctly rounded result.
@Suite struct FastMathTests {
    /// |approx - exact| in units of the float spacing at the exact value.
    func ulps(_ approx: Float, _ exact: Double) -> Double {
        let rounded = Float(exact)
        if approx == rounded { return 0 }
        let spacing = rounded == 0 ? Double(Float.leastNonzeroMagnitude) : Double(rounded.ulp)
        return abs(Double(approx) - exact) / spacing
    }

    /// The worst error of `fast` against `exact` over every 977th finite float, and where.
    func worst(
        _ fast: (Float) -> Float,
        _ exact: (Double) -> Double,
        domain: (Float) -> Bool = { _ in true }
    ) -> (
        ulps: Double, at: Float, nan: Bool
    ) {
        var result = (ulps: 0.0, at: Float(0), nan: false)
        var bits: UInt32 = 0
        while true {
            let x = Float(bitPattern: bits)
            if x.isFinite && domain(x) {
                let value = fast(x)
                if value.isNaN { result.nan = true }
                let error = ulps(value, exact(Double(x)))
                if error > result.ulps { result = (error, x, result.nan) }
            }
            let (next, overflow) = bits.addingReportingOverflow(977)
            if overflow { break }
            bits = next
        }
        return result
    }

    func exactSoftplus(_ z: Double) -> Double { max(z, 0) + log1p(exp(-abs(z))) }

    @Test func tanhIsWithinTwoUlpsEverywhere() {
        let tanh = worst(FastMath.tanh, { Foundation.tanh($0) })
        print("FastMath.tanh: max error \(tanh.ulps) ulp at \(tanh.at)")
        #expect(!tanh.nan && tanh.ulps <= 2, "\(tanh)")
        #expect(FastMath.tanh(0).bitPattern == 0 && FastMath.tanh(-0.0).bitPattern == (-0.0 as Float).bitPattern)
        #expect(FastMath.tanh(.infinity) == 1 && FastMath.tanh(-.infinity) == -1)
        #expect(FastMath.tanh(20) == 1 && FastMath.tanh(-9.5) == -1)  // saturated
        #expect(FastMath.tanh(1e-30) == 1e-30 && FastMath.tanh(.leastNonzeroMagnitude) == .leastNonzeroMagnitude)
    }

    @Test func softplusAndItsSlopeAreWithinAFewUlpsEverywhere() {
        let value = worst(FastMath.softplus, exactSoftplus)
        print("FastMath.softplus: max error \(value.ulps) ulp at \(value.at)")
        #expect(!value.nan && value.ulps <= 2.5, "\(value)")
        // The value and slope together, as the training step computes them.
        let pairValue = worst({ FastMath.softplusAndSigmoid($0).0 }, exactSoftplus)
        let sigmoid = worst({ FastMath.softplusAndSigmoid($0).1 }, { 1 / (1 + exp(-$0)) })
        print("FastMath.softplusAndSigmoid: value \(pairValue.ulps) ulp, sigmoid \(sigmoid.ulps) ulp at \(sigmoid.at)")
        #expect(
            !pairValue.nan && pairValue.ulps <= 2.5 && !sigmoid.nan && sigmoid.ulps <= 2.5,
            "\(pairValue) \(sigmoid)"
        )
        // The slope from the value (the penalised step's): 1 - e^(-softplus(z)).
        let slope = worst(
            { FastMath.softplusSlope(fromValue: FastMath.softplus($0)) },
            { 1 / (1 + exp(-$0)) },
            domain: { $0 > -80 }  // below, sigmoid is subnormal and softplus' value carries it only to ~1e-38
        )
        print("FastMath.softplusSlope: max error \(slope.ulps) ulp at \(slope.at)")
        #expect(!slope.nan && slope.ulps <= 3.5, "\(slope)")
        #expect(FastMath.softplus(.infinity) == .infinity && FastMath.softplus(-.infinity) == 0)
        #expect(FastMath.softplus(-200) == 0 && FastMath.softplus(100) == 100)
        #expect(abs(FastMath.softplus(0) - Float(log(2.0))) <= Float(log(2.0)).ulp)
    }

    /// The step with the fast functions agrees with the exact one to float rounding.
    @Test(arguments: [ActivationKind.tanh, .softplus])
    func theFloatStepAgreesWithDoublePrecision(_ activation: ActivationKind) {
        var rng = SeededGenerator(seed: 3, stream: .trainingData)
        let x = InputDistribution.sphere.sample(200, d: 12, using: &rng)
        let y = (0..<200).map { _ in rng.nextGaussian() }
        let network = Network<Double>(randomWithInputDimension: 12, width: 96, activation: activation, seed: 3)
        let data = Dataset(inputs: x, labels: y)
        var exact = TrainingWorkspace(points: 200, network: network)
        let exactLoss = network.lossAndGradient(on: data, workspace: &exact)
        let single = network.converted(to: Float.self)
        var fast = TrainingWorkspace(points: 200, network: single)
        let fastLoss = single.lossAndGradient(on: data.converted(to: Float.self), workspace: &fast)
        #expect(abs(fastLoss - exactLoss) / exactLoss < 1e-5)
        let difference = zip(fast.gradient, exact.gradient).reduce(0.0) { $0 + pow(Double($1.0) - $1.1, 2) }
        let norm = exact.gradient.reduce(0.0) { $0 + $1 * $1 }
        #expect((difference / norm).squareRoot() < 1e-4)
    }
}
