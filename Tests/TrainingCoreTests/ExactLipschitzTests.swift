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
            #expect(bounds.upper >= exact * (1 - 1e-12))
            guard exact > 0 else { continue }
            lowerRatios.append(bounds.lower / exact)
            upperRatios.append(upper.best / exact)
        }
        lowerRatios.sort()
        upperRatios.sort()
        let median = { (v: [Double]) in v[v.count / 2] }
        print(
            "exact oracle: lip_lower/exact median \(median(lowerRatios)), min \(lowerRatios.first!); "
                + "upper/exact median \(median(upperRatios)), max \(upperRatios.last!)"
        )
    }
}
