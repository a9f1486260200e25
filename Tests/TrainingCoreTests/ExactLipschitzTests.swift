import Diagnostics
import Testing
import TrainingCore

/// The exact constant of small ReLU networks, checked by hand where it is known and used as the
/// oracle of the certified bounds: lip_lower <= exact <= lip_upper on every network.
@Suite struct ExactLipschitzTests {
    func norm(_ v: [Double]) -> Double { v.reduce(0) { $0 + $1 * $1 }.squareRoot() }

    func randomNetwork(d: Int, k: Int, rng: inout SeededGenerator) -> Network<Double> {
        var weights = Matrix<Double>(rows: k, columns: d)
        for j in 0..<k { for i in 0..<d { weights[j, i] = rng.nextGaussian() } }
        return Network<Double>(
            weights: weights,
            biases: (0..<k).map { _ in rng.nextGaussian() },
            outputWeights: (0..<k).map { _ in rng.nextGaussian() / Double(k).squareRoot() },
            outputBias: 0,
            activation: .relu
        )
    }

    /// In one dimension: the largest |slope| between consecutive kinks and beyond the last.
    func oneDimensional(_ network: Network<Double>) -> Double {
        let w = network.weights
        let a = network.outputWeights
        let b = network.biases
        let kinks = (0..<network.width).filter { w[$0, 0] != 0 }.map { -b[$0] / w[$0, 0] }.sorted()
        var points = [(kinks.first ?? 0) - 1, (kinks.last ?? 0) + 1]
        for i in kinks.indices.dropLast() { points.append((kinks[i] + kinks[i + 1]) / 2) }
        return points.map { x in
            abs((0..<network.width).reduce(0.0) { $0 + (w[$1, 0] * x + b[$1] > 0 ? a[$1] * w[$1, 0] : 0) })
        }.max() ?? 0
    }

    @Test func agreesWithTheOneDimensionalAnswerAndKnownNetworks() throws {
        var rng = SeededGenerator(seed: 5, stream: .testData)
        for _ in 0..<50 {
            let network = randomNetwork(d: 1, k: 12, rng: &rng)
            let exact = try ExactLipschitz.constant(of: network)
            #expect(abs(exact.value - oneDimensional(network)) <= 1e-12 * max(1, exact.value))
        }
        // Parallel units all active far along w: sum a_j ||w||.
        let w: [Double] = [0.6, -1.2, 0.3]
        let parallel = Network<Double>(
            weights: Matrix(rows: 4, columns: 3, storage: (0..<4).flatMap { _ in w }),
            biases: [0, 1, 2, 3],
            outputWeights: [0.5, 0.25, 1, 0.125],
            outputBias: 0,
            activation: .relu
        )
        #expect(abs(try ExactLipschitz.constant(of: parallel).value - 1.875 * norm(w)) < 1e-12)
        // Opposite units never active together: the larger of the two.
        let opposite = Network<Double>(
            weights: Matrix(rows: 2, columns: 2, storage: [1, 0, -1, 0]),
            biases: [-1, -1],
            outputWeights: [3, 2],
            outputBias: 0,
            activation: .relu
        )
        #expect(abs(try ExactLipschitz.constant(of: opposite).value - 3) < 1e-12)
    }

    @Test func refusesWhatItCannotDo() throws {
        var rng = SeededGenerator(seed: 6, stream: .testData)
        let wide = randomNetwork(d: 2, k: 41, rng: &rng)
        #expect(throws: IsosweepError.self) { try ExactLipschitz.constant(of: wide) }
        let smooth = Network<Double>(
            weights: Matrix(rows: 1, columns: 2, storage: [1, 1]),
            biases: [0],
            outputWeights: [1],
            outputBias: 0,
            activation: .tanh
        )
        do {
            _ = try ExactLipschitz.constant(of: smooth)
            Issue.record("a tanh network was accepted")
        } catch {
            #expect(error.description.contains("needs a ReLU network"))
        }
    }

    @Test func theCertifiedBoundsBracketTheExactConstant() throws {
        var rng = SeededGenerator(seed: 9, stream: .testData)
        var options = LipschitzOptions()
        options.freshPoints = 200
        options.ascentStarts = 16
        options.ascentSteps = 40
        var lowerRatios: [Double] = []
        var upperRatios: [Double] = []
        for index in 0..<200 {
            let d = 1 + index % 5
            let k = 2 + (index * 5) % 15
            let network = randomNetwork(d: d, k: k, rng: &rng)
            let exact = try ExactLipschitz.constant(of: network).value
            var inputs = Matrix<Double>(rows: 32, columns: d)
            for r in 0..<32 { for i in 0..<d { inputs[r, i] = rng.nextGaussian() } }
            let bounds = try Lipschitz.bounds(
                of: network,
                trainingInputs: inputs,
                distribution: .gaussian,
                seed: UInt64(index),
                options: options
            )
            let upper = try Lipschitz.upperBounds(network)
            #expect(bounds.lower <= exact * (1 + 1e-9), "network \(index): lower \(bounds.lower) > exact \(exact)")
            #expect(upper.centred >= exact * (1 - 1e-12), "network \(index): centred \(upper.centred) < exact \(exact)")
            #expect(bounds.upper >= exact * (1 - 1e-12) && bounds.upper == upper.best)
            guard exact > 0 else { continue }
            // lip_lower as a cell reports it: near the data and far out along rays.
            lowerRatios.append(bounds.lower / exact)
            upperRatios.append(bounds.upper / exact)
        }
        lowerRatios.sort()
        upperRatios.sort()
        let median = { (v: [Double]) in v[v.count / 2] }
        // The lower bound finds at least 90% of the constant in the median.
        #expect(median(lowerRatios) >= 0.9)
        print(
            "exact oracle: lip_lower/exact median \(median(lowerRatios)), min \(lowerRatios.first!); "
                + "lip_upper/exact median \(median(upperRatios)), max \(upperRatios.last!)"
        )
    }
}

/// The ray search: certified, and it finds a constant attained far from every data point.
@Suite struct RaySearchTests {
    @Test func findsAConstantAttainedFarFromTheData() throws {
        // Units that switch on only beyond radius 5 along e_1 (b_j = -5): on the unit sphere no
        // unit is active and the gradient is 0 everywhere near the data.
        let d = 4
        let k = 6
        var weights = Matrix<Double>(rows: k, columns: d)
        for j in 0..<k {
            weights[j, 0] = 1
            weights[j, 1 + j % 3] = 0.2
        }
        let network = Network<Double>(
            weights: weights,
            biases: [Double](repeating: -5, count: k),
            outputWeights: (0..<k).map { 0.5 + 0.1 * Double($0) },
            outputBias: 0,
            activation: .relu
        )
        let exact = try ExactLipschitz.constant(of: network).value
        let ray = Lipschitz.rayLowerBound(network, seed: 1)
        #expect(ray.value <= exact * (1 + 1e-9))
        #expect(ray.value >= 0.99 * exact, "ray \(ray.value), exact \(exact)")
        var rng = SeededGenerator(seed: 2, stream: .testData)
        let sphere = InputDistribution.sphere.sample(64, d: d, using: &rng)
        var options = LipschitzOptions()
        options.freshPoints = 200
        let near = try Lipschitz.bounds(
            of: network,
            trainingInputs: sphere,
            distribution: .sphere,
            seed: 3,
            options: options
        )
        // The search near the data cannot see it (its support bound, on the sphere, stays low);
        // the R^d bound does, through the rays.
        #expect(near.supportLower < 0.5 * exact)
        #expect(near.lower >= 0.99 * exact && near.lower <= exact * (1 + 1e-9))
    }

    @Test func neverAboveTheExactConstantAndLiftsTheWorstCase() throws {
        var rng = SeededGenerator(seed: 9, stream: .testData)
        var ratios: [Double] = []
        for index in 0..<200 {
            let d = 1 + index % 5
            let k = 2 + (index * 5) % 15
            var weights = Matrix<Double>(rows: k, columns: d)
            for j in 0..<k { for i in 0..<d { weights[j, i] = rng.nextGaussian() } }
            let network = Network<Double>(
                weights: weights,
                biases: (0..<k).map { _ in rng.nextGaussian() },
                outputWeights: (0..<k).map { _ in rng.nextGaussian() / Double(k).squareRoot() },
                outputBias: 0,
                activation: .relu
            )
            let exact = try ExactLipschitz.constant(of: network).value
            let ray = Lipschitz.rayLowerBound(network, seed: UInt64(index))
            #expect(ray.value <= exact * (1 + 1e-9), "network \(index): ray \(ray.value) > exact \(exact)")
            if exact > 0 { ratios.append(ray.value / exact) }
        }
        ratios.sort()
        print("rays alone: ray/exact median \(ratios[ratios.count / 2]), min \(ratios.first!)")
        #expect(ratios[ratios.count / 2] >= 0.9)
    }
}
