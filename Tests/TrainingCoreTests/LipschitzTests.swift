import Testing
import TrainingCore

/// Lipschitz bounds on networks whose constant is known by construction.
@Suite struct LipschitzTests {
    func sphere(_ count: Int, d: Int, seed: UInt64) -> Matrix<Double> {
        var rng = SeededGenerator(seed: seed, stream: .testData)
        return InputDistribution.sphere.sample(count, d: d, using: &rng)
    }

    func norm(_ v: [Double]) -> Double { v.reduce(0) { $0 + $1 * $1 }.squareRoot() }

    @Test func oneReLUNeuron() throws {
        // f(x) = a relu(<w, x> + b) with b > 0: Lip = |a| |w|, attained on the sphere where <w, x> = 0.
        let w: [Double] = [0.6, -1.2, 0.3, 2.0, -0.4, 0.9, 0.1, -0.7]
        let a = -1.7
        let network = Network<Double>(
            weights: Matrix(rows: 1, columns: 8, storage: w),
            biases: [0.2],
            outputWeights: [a],
            outputBias: 0.1,
            activation: .relu
        )
        let truth = abs(a) * norm(w)
        let bounds = try Lipschitz.bounds(
            of: network,
            trainingInputs: sphere(64, d: 8, seed: 1),
            distribution: .sphere,
            seed: 1
        )
        #expect(bounds.upper >= truth && bounds.upper <= truth * (1 + 1e-8))
        #expect(bounds.lower <= truth * (1 + 1e-9) && bounds.lower >= truth * 0.98)
        #expect(bounds.supportLower <= truth * (1 + 1e-9) && bounds.supportLower >= truth * 0.98)
    }

    @Test func networkLinearOnTheSphere() throws {
        // Every neuron is active on the unit ball (b_j > |w_j|) and all a_j w_j point into one cone, so
        // f is linear there with gradient v = W^T a, and no activation pattern has a larger gradient:
        // Lip = |v|, attained on the sphere wherever x is orthogonal to v.
        let d = 12
        let k = 6
        var rng = SeededGenerator(seed: 3, stream: .initialisation)
        var weights = Matrix<Double>(rows: k, columns: d)
        var biases = [Double]()
        var outputs = [Double]()
        for j in 0..<k {
            for i in 0..<d { weights[j, i] = (i == 0 ? 2.0 : 0) + 0.2 * rng.nextGaussian() }
            biases.append(norm(weights.row(j)) + 0.5)
            outputs.append(0.5 + rng.nextUniform())
        }
        let network = Network<Double>(
            weights: weights,
            biases: biases,
            outputWeights: outputs,
            outputBias: 0,
            activation: .relu
        )
        var v = [Double](repeating: 0, count: d)
        for j in 0..<k { for i in 0..<d { v[i] += outputs[j] * weights[j, i] } }
        let truth = norm(v)
        let bounds = try Lipschitz.bounds(
            of: network,
            trainingInputs: sphere(100, d: d, seed: 2),
            distribution: .sphere,
            seed: 2
        )
        #expect(bounds.upper >= truth)
        #expect(bounds.lower <= truth * (1 + 1e-9) && bounds.lower >= truth * 0.98)
        #expect(bounds.supportLower <= truth * (1 + 1e-9) && bounds.supportLower >= truth * 0.98)
    }

    @Test func tangentialMaximumStrictlyBetweenDataPoints() throws {
        // f(x) = a tanh(beta <u, x>) on S^2: the tangential gradient |a| beta sech^2(beta t) sqrt(1 - t^2),
        // t = <u, x>, is largest on the equator t = 0. The training points all lie near the poles
        // (|t| > 0.8) and no fresh points are drawn, so only the ascent along the sphere can find it.
        let u: [Double] = [0, 0, 1]
        let beta = 2.0
        let a = 1.5
        let network = Network<Double>(
            weights: Matrix(rows: 1, columns: 3, storage: u.map { $0 * beta }),
            biases: [0],
            outputWeights: [a],
            outputBias: 0,
            activation: .tanh
        )
        var points: [Double] = []
        var rng = SeededGenerator(seed: 9, stream: .testData)
        while points.count < 3 * 40 {
            let p = InputDistribution.sphere.sample(1, d: 3, using: &rng).storage
            if abs(p[2]) > 0.8 { points += p }
        }
        let data = Matrix(rows: 40, columns: 3, storage: points)
        // What the data points themselves show: far below the truth.
        let atData = network.outputsAndInputGradients(data).gradients
        var bestAtData = 0.0
        for i in 0..<40 {
            let g = atData.row(i)
            let x = data.row(i)
            let gx = zip(g, x).reduce(0) { $0 + $1.0 * $1.1 }
            bestAtData = max(bestAtData, norm(zip(g, x).map { $0 - gx * $1 }))
        }
        let truth = a * beta  // at t = 0: sech^2(0) = 1, sqrt(1 - 0) = 1
        #expect(bestAtData < 0.5 * truth)
        var options = LipschitzOptions()
        options.freshPoints = 0
        let bounds = try Lipschitz.bounds(
            of: network,
            trainingInputs: data,
            distribution: .sphere,
            seed: 4,
            options: options
        )
        #expect(bounds.supportLower <= truth * (1 + 1e-9) && bounds.supportLower >= truth * 0.98, "\(bounds)")
        #expect(bounds.lower <= truth * (1 + 1e-9) && bounds.lower >= truth * 0.98)
        #expect(bounds.upper >= truth && bounds.upper <= truth * (1 + 1e-8))
    }

    @Test(arguments: [ActivationKind.relu, .tanh, .softplus])
    func circleAgainstBruteForce(_ activation: ActivationKind) throws {
        // On the unit circle the tangential gradient is |df/dtheta|; a 200,000-point grid gives its
        // maximum to ~1e-5 relative, which the bound must neither exceed nor miss by more than 2%.
        let network = Network<Double>(randomWithInputDimension: 2, width: 7, activation: activation, seed: 21)
        let grid = 200_000
        var storage = [Double]()
        storage.reserveCapacity(2 * grid)
        for i in 0..<grid {
            let theta = 2 * Double.pi * Double(i) / Double(grid)
            storage += [_cos(theta), _sin(theta)]
        }
        let circle = Matrix(rows: grid, columns: 2, storage: storage)
        let g = network.outputsAndInputGradients(circle).gradients
        var truth = 0.0
        for i in 0..<grid {
            truth = max(truth, abs(-circle[i, 1] * g[i, 0] + circle[i, 0] * g[i, 1]))
        }
        let bounds = try Lipschitz.bounds(
            of: network,
            trainingInputs: sphere(20, d: 2, seed: 5),
            distribution: .sphere,
            seed: 5
        )
        #expect(
            bounds.supportLower <= truth * (1 + 1e-4) && bounds.supportLower >= truth * 0.98,
            "truth \(truth), \(bounds)"
        )
        #expect(bounds.lower >= bounds.supportLower && bounds.lower <= bounds.upper)
    }

    @Test func upperBoundIsTheSmallerOfTheTwoCertificates() throws {
        // Orthogonal rows of norm 3 (||W||_op = 3) with a = (1, 1, 1, 1): ||W||_op |a| = 6, while the
        // path sum is 12; rows all along e_1 instead make the path sum (3 * 4 = 12) equal ||W||_op |a|
        // (6 * 2 = 12). A relu net with all neurons active everywhere it matters attains neither, but
        // the bound must equal min of both.
        var orthogonal = Matrix<Double>(rows: 4, columns: 5)
        for j in 0..<4 { orthogonal[j, j] = 3 }
        let a: [Double] = [1, 1, 1, 1]
        let first = Network<Double>(
            weights: orthogonal,
            biases: [0, 0, 0, 0],
            outputWeights: a,
            outputBias: 0,
            activation: .tanh
        )
        #expect(abs(try Lipschitz.upperBounds(first).best - 6) < 1e-8)
        var parallel = Matrix<Double>(rows: 4, columns: 5)
        for j in 0..<4 { parallel[j, 0] = 3 }
        let second = Network<Double>(
            weights: parallel,
            biases: [0, 0, 0, 0],
            outputWeights: a,
            outputBias: 0,
            activation: .tanh
        )
        #expect(abs(try Lipschitz.upperBounds(second).best - 12) < 12e-8)
        // For the parallel rows the constant really is 12 (tanh' = 1 at 0): the lower bound finds it.
        let bounds = try Lipschitz.bounds(of: second, trainingInputs: nil, distribution: .gaussian, seed: 1)
        #expect(bounds.lower >= 12 * 0.98 && bounds.lower <= 12 * (1 + 1e-9))
        #expect(bounds.supportLower == bounds.lower)
    }

    @Test func randomNetworksKeepTheOrder() throws {
        for seed in 0..<4 {
            for activation in ActivationKind.allCases {
                let network = Network<Double>(
                    randomWithInputDimension: 10,
                    width: 30,
                    activation: activation,
                    seed: UInt64(seed)
                )
                let bounds = try Lipschitz.bounds(
                    of: network,
                    trainingInputs: sphere(50, d: 10, seed: UInt64(seed)),
                    distribution: .sphere,
                    seed: UInt64(seed)
                )
                #expect(bounds.supportLower > 0)
                #expect(bounds.supportLower <= bounds.lower)
                #expect(bounds.lower <= bounds.upper)
                #expect(bounds.gradientMean > 0 && bounds.gradientMean <= bounds.lower)
            }
        }
    }

    @Test func oneDimensionalReLUNetworksExactly() throws {
        // In d = 1 a relu network is piecewise linear with kinks at -b_j / w_j: its Lipschitz constant
        // is the largest |slope| over the pieces, known exactly. No piece is missed by much.
        for seed in 0..<5 {
            let network = Network<Double>(randomWithInputDimension: 1, width: 6, activation: .relu, seed: UInt64(seed))
            let w = network.weights.storage
            let b = network.biases
            let a = network.outputWeights
            let kinks = (0..<6).map { -b[$0] / w[$0] }.sorted()
            var samples = [kinks[0] - 1, kinks[5] + 1]
            for j in 0..<5 { samples.append((kinks[j] + kinks[j + 1]) / 2) }
            let truth = samples.map { x in
                abs((0..<6).reduce(0.0) { $0 + (w[$1] * x + b[$1] > 0 ? a[$1] * w[$1] : 0) })
            }.max()!
            let probes = Matrix<Double>(rows: 4, columns: 1, storage: [-1, -0.3, 0.3, 1])
            let bounds = try Lipschitz.bounds(
                of: network,
                trainingInputs: probes,
                distribution: .gaussian,
                seed: UInt64(seed)
            )
            #expect(bounds.lower <= truth * (1 + 1e-9), "seed \(seed)")
            #expect(bounds.lower >= truth * 0.98, "seed \(seed): \(bounds.lower) vs \(truth)")
            #expect(bounds.upper >= truth)
        }
    }
}
