import Testing
import TrainingCore

/// The centred upper bound: certified (never below a gradient of the network, never below
/// ||W^T (a * s)|| for any s in [0, 1]^k), never above the product and path bounds, and exact
/// where the constant is known.
@Suite struct CentredUpperBoundTests {
    func norm(_ v: [Double]) -> Double { v.reduce(0) { $0 + $1 * $1 }.squareRoot() }

    func randomNetwork(d: Int, k: Int, activation: ActivationKind, rng: inout SeededGenerator) -> Network<Double> {
        var weights = Matrix<Double>(rows: k, columns: d)
        for j in 0..<k { for i in 0..<d { weights[j, i] = rng.nextGaussian() * (j % 3 == 0 ? 2 : 0.5) } }
        return Network<Double>(
            weights: weights,
            biases: (0..<k).map { _ in rng.nextGaussian() },
            // Some output weights zero, as pruned or dead units leave them.
            outputWeights: (0..<k).map { j in j % 7 == 3 ? 0 : rng.nextGaussian() / Double(k).squareRoot() },
            outputBias: 0,
            activation: activation
        )
    }

    /// ||W^T (a * s)||: the norm of the gradient the network would have with slopes s.
    func gradient(_ network: Network<Double>, slopes s: [Double]) -> Double {
        let w = network.weights
        let a = network.outputWeights
        var g = [Double](repeating: 0, count: network.inputDimension)
        for j in 0..<network.width { for i in 0..<network.inputDimension { g[i] += a[j] * s[j] * w[j, i] } }
        return norm(g)
    }

    @Test(arguments: [ActivationKind.relu, .tanh, .softplus])
    func certifiedAndNeverAboveTheOldBoundsOnRandomNetworks(_ activation: ActivationKind) throws {
        var rng = SeededGenerator(seed: 41, stream: .testData)
        var ratios: [Double] = []
        for index in 0..<200 {
            let d = 1 + index % 8
            let k = 1 + (index * 7) % 40
            let network = randomNetwork(d: d, k: k, activation: activation, rng: &rng)
            let bounds = try Lipschitz.upperBounds(network)
            #expect(bounds.centred <= min(bounds.product, bounds.path) * (1 + 1e-12), "network \(index)")
            // Every slope vector in [0, 1]^k: vertices (every pattern, realisable or not) and inside.
            var brute = 0.0
            for trial in 0..<400 {
                let s = (0..<k).map { _ in trial % 2 == 0 ? (rng.nextUniform() < 0.5 ? 0.0 : 1.0) : rng.nextUniform() }
                brute = max(brute, gradient(network, slopes: s))
            }
            // And the network's real gradients at points near and far.
            for trial in 0..<200 {
                let radius = [0.5, 2, 20][trial % 3]
                let x = (0..<d).map { _ in radius * rng.nextGaussian() }
                let w = network.weights
                let s = (0..<k).map { j in
                    var z = network.biases[j]
                    for i in 0..<d { z += w[j, i] * x[i] }
                    return activation.derivative(z)
                }
                brute = max(brute, gradient(network, slopes: s))
            }
            #expect(bounds.centred >= brute, "network \(index): centred \(bounds.centred) < brute force \(brute)")
            ratios.append(bounds.centred / min(bounds.product, bounds.path))
        }
        ratios.sort()
        print("centred/old upper bound, \(activation): median \(ratios[ratios.count / 2]), max \(ratios.last!)")
        // On random networks the centring saves a good part of the old bound.
        #expect(ratios[ratios.count / 2] < 0.9, "median new/old \(ratios[ratios.count / 2])")
    }

    @Test func exactWhereTheConstantIsKnown() throws {
        // One ReLU neuron: Lip = |a| ||w||.
        let w: [Double] = [0.6, -1.2, 0.3, 2.0]
        let single = Network<Double>(
            weights: Matrix(rows: 1, columns: 4, storage: w),
            biases: [0.2],
            outputWeights: [-1.7],
            outputBias: 0,
            activation: .relu
        )
        let truth = 1.7 * norm(w)
        let bounds = try Lipschitz.upperBounds(single)
        #expect(bounds.centred >= truth && bounds.centred <= truth * (1 + 1e-8))
        // Parallel neurons with positive output weights, all active at once far along w: the
        // constant is sum a_j ||w||, which both the path and the centred bound reach.
        let rows = 5
        let parallel = Network<Double>(
            weights: Matrix(rows: rows, columns: 4, storage: (0..<rows).flatMap { _ in w }),
            biases: (0..<rows).map { Double($0) },
            outputWeights: (0..<rows).map { 0.3 + 0.1 * Double($0) },
            outputBias: 0,
            activation: .relu
        )
        let sum = (0..<rows).map { 0.3 + 0.1 * Double($0) }.reduce(0, +) * norm(w)
        let parallelBounds = try Lipschitz.upperBounds(parallel)
        #expect(parallelBounds.centred >= sum && parallelBounds.centred <= sum * (1 + 1e-8))
        #expect(parallelBounds.best == min(parallelBounds.product, parallelBounds.path, parallelBounds.centred))
    }
}
