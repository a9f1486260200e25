import Testing
import TrainingCore

/// The analytic gradients of the training step and of the input, against central finite differences.
@Suite struct GradientTests {
    /// A small random problem in double precision.
    func problem(_ activation: ActivationKind, seed: UInt64 = 7) -> (Network<Double>, Dataset<Double>) {
        var rng = SeededGenerator(seed: seed, stream: .trainingData)
        let x = InputDistribution.gaussian.sample(9, d: 5, using: &rng)
        let y = (0..<9).map { _ in rng.nextGaussian() }
        var network = Network<Double>(randomWithInputDimension: 5, width: 4, activation: activation, seed: seed)
        network.parameters[network.parameters.count - 1] = 0.3  // a non-zero output bias
        return (network, Dataset(inputs: x, labels: y))
    }

    func loss(_ network: Network<Double>, _ data: Dataset<Double>) -> Double {
        let f = network.outputs(data.inputs)
        return zip(f, data.labels).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) } / Double(data.count)
    }

    @Test(arguments: ActivationKind.allCases)
    func parameterGradientMatchesFiniteDifferences(_ activation: ActivationKind) {
        let (network, data) = problem(activation)
        var workspace = TrainingWorkspace(points: data.count, network: network)
        let value = network.lossAndGradient(on: data, workspace: &workspace)
        #expect(abs(value - loss(network, data)) < 1e-12)
        let h = 1e-6
        var worst = 0.0
        for index in network.parameters.indices {
            var plus = network
            var minus = network
            plus.parameters[index] += h
            minus.parameters[index] -= h
            let numeric = (loss(plus, data) - loss(minus, data)) / (2 * h)
            let analytic = workspace.gradient[index]
            let error = abs(analytic - numeric) / max(abs(numeric), abs(analytic), 1e-6)
            worst = max(worst, error)
        }
        // Every parameter group is covered: W, b, a and c.
        #expect(workspace.gradient.count == 5 * 4 + 4 + 4 + 1)
        #expect(worst < 1e-3, "worst relative error \(worst)")
    }

    @Test(arguments: ActivationKind.allCases)
    func floatStepAgreesWithDouble(_ activation: ActivationKind) {
        let (network, data) = problem(activation, seed: 11)
        var exact = TrainingWorkspace(points: data.count, network: network)
        let exactLoss = network.lossAndGradient(on: data, workspace: &exact)
        let single = network.converted(to: Float.self)
        var fast = TrainingWorkspace(points: data.count, network: single)
        let fastLoss = single.lossAndGradient(on: data.converted(to: Float.self), workspace: &fast)
        #expect(abs(fastLoss - exactLoss) / exactLoss < 1e-5)
        let difference = zip(fast.gradient, exact.gradient).reduce(0.0) {
            $0 + (Double($1.0) - $1.1) * (Double($1.0) - $1.1)
        }
        let norm = exact.gradient.reduce(0.0) { $0 + $1 * $1 }
        #expect((difference / norm).squareRoot() < 1e-4)
    }

    @Test(arguments: ActivationKind.allCases)
    func inputGradientMatchesFiniteDifferences(_ activation: ActivationKind) {
        let (network, data) = problem(activation, seed: 5)
        let (_, gradients) = network.outputsAndInputGradients(data.inputs)
        let h = 1e-6
        var worst = 0.0
        for i in 0..<data.count {
            for j in 0..<network.inputDimension {
                var plus = data.inputs.rows(i..<(i + 1))
                var minus = plus
                plus[0, j] += h
                minus[0, j] -= h
                let numeric = (network.outputs(plus)[0] - network.outputs(minus)[0]) / (2 * h)
                let error = abs(gradients[i, j] - numeric) / max(abs(numeric), abs(gradients[i, j]), 1e-6)
                worst = max(worst, error)
            }
        }
        #expect(worst < 1e-3, "worst relative error \(worst)")
    }

    @Test func softplusIsStableForLargeInputs() {
        let network = Network<Double>(
            weights: Matrix(rows: 1, columns: 1, storage: [1]),
            biases: [0],
            outputWeights: [1],
            outputBias: 0,
            activation: .softplus
        )
        let x = Matrix<Double>(rows: 3, columns: 1, storage: [800, -800, 0])
        let (f, g) = network.outputsAndInputGradients(x)
        #expect(f[0] == 800)
        #expect(f[1] >= 0 && f[1] < 1e-300)
        #expect(abs(f[2] - 0.693_147_180_559_945_3) < 1e-15)
        #expect(g[0, 0] == 1 && g[1, 0] >= 0 && g[1, 0] < 1e-300 && g[2, 0] == 0.5)
    }
}
