import Testing

@testable import TrainingCore

/// The float32 ascent steers and the float64 evaluation certifies: the points it returns are no
/// worse than where it started (measured in float64), stay on the sphere where they must, and the
/// same seed gives the same points; the support-only search gives the baseline what it needs.
@Suite struct GradientAscentTests {
    func startsAndNetwork(_ activation: ActivationKind) -> (Matrix<Double>, Network<Double>) {
        var rng = SeededGenerator(seed: 5, stream: .testData)
        let starts = InputDistribution.sphere.sample(24, d: 10, using: &rng)
        let network = Network<Double>(randomWithInputDimension: 10, width: 200, activation: activation, seed: 5)
        return (starts, network)
    }

    /// |g| and |P_x g| at every row, in float64.
    func norms(_ network: Network<Double>, _ x: Matrix<Double>) -> (free: [Double], tangential: [Double]) {
        let g = network.evaluate(x).gradients
        var free: [Double] = []
        var tangential: [Double] = []
        for i in 0..<x.rows {
            let gi = g.row(i)
            let xi = x.row(i)
            let gg = gi.reduce(0) { $0 + $1 * $1 }
            let gx = zip(gi, xi).reduce(0) { $0 + $1.0 * $1.1 }
            let xx = xi.reduce(0) { $0 + $1 * $1 }
            free.append(gg.squareRoot())
            tangential.append(max(0, gg - gx * gx / xx).squareRoot())
        }
        return (free, tangential)
    }

    @Test(arguments: [ActivationKind.relu, .tanh, .softplus])
    func theFloat32AscentEndsHigherAndOnTheSphere(_ activation: ActivationKind) throws {
        let (starts, network) = startsAndNetwork(activation)
        let tangential = (0..<starts.rows).map { $0 % 2 == 1 }
        func run() throws -> Matrix<Double> {
            var rng = SeededGenerator(seed: 1, stream: .probes)
            return try GradientAscent<Float>(network).ascend(
                from: starts.converted(to: Float.self),
                tangential: tangential,
                steps: 60,
                rng: &rng,
                stopAt: nil,
                shouldStop: { false }
            ).converted(to: Double.self)
        }
        let ends = try run()
        #expect(ends == (try run()), "the same seed gives the same points")
        let before = norms(network, starts)
        let after = norms(network, ends)
        var gained = 0
        for i in 0..<starts.rows {
            let was = tangential[i] ? before.tangential[i] : before.free[i]
            let now = tangential[i] ? after.tangential[i] : after.free[i]
            // Float32 decides, float64 measures: equal up to float32 rounding at worst.
            #expect(now >= was * (1 - 1e-5), "\(activation) row \(i): \(now) < \(was)")
            if now > was * 1.001 { gained += 1 }
            if tangential[i] {
                let length = ends.row(i).reduce(0) { $0 + $1 * $1 }.squareRoot()
                #expect(abs(length - 1) < 1e-5, "row \(i) left the sphere: |x| = \(length)")
            }
        }
        #expect(gained >= starts.rows / 2, "\(activation): only \(gained) of \(starts.rows) rows gained")
    }

    @Test func theSupportOnlySearchGivesTheSupportBound() throws {
        var rng = SeededGenerator(seed: 8, stream: .testData)
        for distribution in [InputDistribution.hypercube, .sphere] {
            let inputs = distribution.sample(60, d: 9, using: &rng)
            let network = Network<Double>(randomWithInputDimension: 9, width: 40, activation: .relu, seed: 8)
            func search(_ supportOnly: Bool) throws -> (lower: Double, support: Double, gradientMean: Double) {
                try Lipschitz.lowerBounds(
                    of: network,
                    trainingInputs: inputs,
                    distribution: distribution,
                    seed: 8,
                    supportOnly: supportOnly
                )
            }
            let full = try search(false)
            let supportOnly = try search(true)
            #expect(supportOnly.gradientMean == full.gradientMean)
            #expect(supportOnly.support <= supportOnly.lower)
            if distribution == .hypercube {
                // Vertex quotients come before any ascent: the same search, without the ascent.
                #expect(supportOnly.support == full.support && supportOnly.lower <= full.lower)
            } else {
                // The tangential ascent alone draws other random directions: a search as good.
                #expect(supportOnly.support >= 0.97 * full.support, "\(supportOnly.support) vs \(full.support)")
            }
        }
    }

    /// The ascent split over two threads (`LipschitzOptions.threads`) gives the same points run
    /// after run, still no worse than the starts, and the rays split over two threads are the rays
    /// on one. Called directly, not through `Lipschitz.bounds`, so that the test never changes the
    /// process's BLAS threads under the tests running beside it; the batch is small enough that
    /// OpenBLAS runs each call on the calling thread anyway.
    @Test(arguments: [ActivationKind.relu, .tanh, .softplus])
    func twoThreadsAreDeterministic(_ activation: ActivationKind) throws {
        var rng = SeededGenerator(seed: 9, stream: .testData)
        let starts = InputDistribution.sphere.sample(40, d: 10, using: &rng)
        let network = Network<Double>(randomWithInputDimension: 10, width: 200, activation: activation, seed: 9)
        let tangential = (0..<starts.rows).map { $0 >= starts.rows / 2 }
        #expect(ParallelRows.ranges(starts.rows, parts: 2) == [0..<20, 20..<40])
        func run(_ threads: Int) throws -> Matrix<Double> {
            var rng = SeededGenerator(seed: 1, stream: .probes)
            return try GradientAscent<Float>(network, threads: threads).ascend(
                from: starts.converted(to: Float.self),
                tangential: tangential,
                steps: 40,
                rng: &rng,
                stopAt: nil,
                shouldStop: { false }
            ).converted(to: Double.self)
        }
        let ends = try run(2)
        for _ in 0..<3 { #expect(try run(2) == ends, "\(activation): two threads gave other points") }
        let before = norms(network, starts)
        let after = norms(network, ends)
        for i in 0..<starts.rows {
            let was = tangential[i] ? before.tangential[i] : before.free[i]
            let now = tangential[i] ? after.tangential[i] : after.free[i]
            #expect(now >= was * (1 - 1e-5), "\(activation) row \(i): \(now) < \(was)")
        }
        let rays = Lipschitz.rayLowerBound(network, seed: 3, threads: 2)
        let single = Lipschitz.rayLowerBound(network, seed: 3, threads: 1)
        #expect(rays.value == single.value && rays.point == single.point)
    }
}
