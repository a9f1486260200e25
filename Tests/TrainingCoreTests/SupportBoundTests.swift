import Foundation
import Testing
import TrainingCore

/// The support each data kind is measured on, and the baselines every result carries.
@Suite struct SupportBoundTests {
    /// Every vertex of {-v, v}^d, v = 1/sqrt(d).
    func allVertices(_ d: Int) -> Matrix<Double> {
        let v = 1 / Double(d).squareRoot()
        var x = Matrix<Double>(rows: 1 << d, columns: d)
        for r in 0..<(1 << d) { for j in 0..<d { x[r, j] = (r >> j) & 1 == 1 ? v : -v } }
        return x
    }

    /// max |f(x) - f(y)| / ||x - y|| over all pairs of vertices.
    func vertexConstant(_ network: Network<Double>) -> Double {
        let x = allVertices(network.inputDimension)
        let f = network.outputs(x)
        var best = 0.0
        for i in 0..<x.rows {
            for j in (i + 1)..<x.rows {
                let distance = zip(x.row(i), x.row(j)).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }.squareRoot()
                best = max(best, abs(f[i] - f[j]) / distance)
            }
        }
        return best
    }

    @Test func eachDataKindHasItsSupport() {
        #expect(InputDistribution.sphere.support == .sphere)
        #expect(InputDistribution.empirical(Matrix(rows: 1, columns: 2, storage: [1, 0])).support == .sphere)
        #expect(InputDistribution.hypercube.support == .vertices)
        #expect(InputDistribution.gaussian.support == .space)
    }

    /// On the cube the support bound is a quotient between two vertices: never above the constant
    /// over all vertex pairs (counted by brute force at d = 7, 128 vertices), and close to it.
    @Test(arguments: [ActivationKind.relu, .tanh, .softplus])
    func hypercubeBoundsAreQuotientsBetweenVertices(activation: ActivationKind) throws {
        let d = 7
        var ratios: [Double] = []
        for seed in 0..<12 {
            let network = Network<Double>(
                randomWithInputDimension: d,
                width: 8 + 4 * seed,
                activation: activation,
                seed: UInt64(seed)
            )
            var rng = SeededGenerator(seed: UInt64(seed), stream: .trainingData)
            let training = InputDistribution.hypercube.sample(40, d: d, using: &rng)
            var options = LipschitzOptions()
            options.freshPoints = 100
            let bounds = try Lipschitz.bounds(
                of: network,
                trainingInputs: training,
                distribution: .hypercube,
                seed: UInt64(seed),
                options: options
            )
            let truth = vertexConstant(network)
            #expect(bounds.supportLower <= truth * (1 + 1e-9), "seed \(seed): \(bounds.supportLower) > \(truth)")
            #expect(bounds.supportLower <= bounds.lower && bounds.lower <= bounds.upper)
            ratios.append(bounds.supportLower / truth)
        }
        ratios.sort()
        print("hypercube support bound / vertex constant, \(activation): median \(ratios[6]), min \(ratios[0])")
        #expect(ratios[6] >= 0.9, "median \(ratios[6])")
    }

    /// Gaussian data live in R^d: the support bound is the global one, rays included.
    @Test func gaussianSupportIsTheWholeSpace() throws {
        let network = Network<Double>(randomWithInputDimension: 5, width: 20, activation: .relu, seed: 4)
        var rng = SeededGenerator(seed: 4, stream: .trainingData)
        let training = InputDistribution.gaussian.sample(30, d: 5, using: &rng)
        let bounds = try Lipschitz.bounds(of: network, trainingInputs: training, distribution: .gaussian, seed: 4)
        #expect(bounds.supportLower == bounds.lower)
        #expect(bounds.lower >= Lipschitz.rayLowerBound(network, seed: 4).value)
    }

    /// A cell records the three upper bounds, the smallest as lip_upper, and both baselines, each
    /// reproducible from its definition; version 1 results keep their old shape.
    @Test(arguments: [DataKind.sphere, .hypercube, .gaussian])
    func aCellRecordsItsBoundsAndBaselines(data: DataKind) throws {
        // d = 12: 4096 vertices, so 48 hypercube points are distinct (a repeated point with two
        // labels would make the floor infinite, reported as null).
        let cell = CellParameters(n: 48, d: 12, width: 24, seed: 3, data: data, maxSteps: 300)
        let run = try Cell.run(cell)
        let m = run.result.metrics
        let product = try #require(m.lipUpperProduct)
        let path = try #require(m.lipUpperPath)
        let centred = try #require(m.lipUpperCentred)
        #expect(m.lipUpper == min(product, path, centred))
        #expect(centred <= min(product, path))
        #expect(m.lipSupportLower! <= m.lipLower! && m.lipLower! <= m.lipUpper!)

        let inputs = run.trainingData.inputs.converted(to: Double.self)
        let labels = try CellData.make(for: cell).train.labels
        let floor = InterpolationFloor.value(
            inputs: inputs,
            labels: labels,
            metric: data == .sphere ? .geodesic : .euclidean
        )
        #expect(m.interpFloor == floor && floor > 0 && floor.isFinite)
        // The network's own floor: its outputs' largest quotient over training pairs, measured the
        // same way, a certified lower bound of its constant on the support (below its upper bound).
        let own = InterpolationFloor.value(
            inputs: inputs,
            labels: run.network.converted(to: Double.self).outputs(inputs),
            metric: data == .sphere ? .geodesic : .euclidean
        )
        #expect(m.fitFloor == own && own > 0 && own <= m.lipUpper!)
        let initial = Network<Float>(randomWithInputDimension: 12, width: 24, activation: .relu, seed: 3)
        let distribution: InputDistribution = data == .sphere ? .sphere : data == .hypercube ? .hypercube : .gaussian
        let baseline = try Lipschitz.lowerBounds(
            of: initial.converted(to: Double.self),
            trainingInputs: inputs,
            distribution: distribution,
            seed: 3,
            supportOnly: true
        ).support
        #expect(m.lipInitSupportLower == baseline && baseline > 0)

        let json = try JSONEncoder().encode(run.result)
        let object = try #require(try JSONSerialization.jsonObject(with: json) as? [String: Any])
        for key in [
            "lip_upper_product", "lip_upper_path", "lip_upper_centred", "lip_init_support_lower", "interp_floor",
        ] {
            #expect(object[key] is Double, "\(key) missing")
        }
        #expect(try JSONDecoder().decode(CellResult.self, from: json) == run.result)
        var old = run.result
        old.metrics.scienceVersion = 1
        let oldObject = try #require(
            try JSONSerialization.jsonObject(with: try JSONEncoder().encode(old)) as? [String: Any]
        )
        #expect(oldObject["interp_floor"] == nil && oldObject["lip_upper_centred"] == nil)
    }
}
