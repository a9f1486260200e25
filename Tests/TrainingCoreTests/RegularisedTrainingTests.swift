import Diagnostics
import Foundation
import Testing
import TrainingCore

/// The trainer options of issue 13: the gradient penalty's exact gradient, weight decay, the
/// output layer's initialisation scale, extra steps, and the construction.
@Suite struct RegularisedTrainingTests {
    /// A small random problem in double precision: gaussian inputs, or unit rows for the sphere.
    func problem(
        _ activation: ActivationKind,
        sphere: Bool,
        seed: UInt64 = 7
    ) -> (Network<Double>, Dataset<Double>) {
        var rng = SeededGenerator(seed: seed, stream: .trainingData)
        let x = (sphere ? InputDistribution.sphere : .gaussian).sample(9, d: 5, using: &rng)
        let y = (0..<9).map { _ in rng.nextGaussian() }
        var network = Network<Double>(randomWithInputDimension: 5, width: 4, activation: activation, seed: seed)
        network.parameters[network.parameters.count - 1] = 0.3
        return (network, Dataset(inputs: x, labels: y))
    }

    /// MSE + lambda / n sum_i |P_i g_i|^2, from the network's own outputs and input gradients
    /// (independent of the penalised step's kernel).
    func objective(_ network: Network<Double>, _ data: Dataset<Double>, lambda: Double, tangential: Bool) -> Double {
        let (f, g) = network.outputsAndInputGradients(data.inputs)
        var mse = 0.0
        var penalty = 0.0
        for i in 0..<data.count {
            mse += (f[i] - data.labels[i]) * (f[i] - data.labels[i])
            var gi = g.row(i)
            if tangential {
                let x = data.inputs.row(i)
                let along = zip(gi, x).reduce(0) { $0 + $1.0 * $1.1 } / x.reduce(0) { $0 + $1 * $1 }
                gi = zip(gi, x).map { $0 - along * $1 }
            }
            penalty += gi.reduce(0) { $0 + $1 * $1 }
        }
        return mse / Double(data.count) + lambda * penalty / Double(data.count)
    }

    @Test(arguments: ActivationKind.allCases, [false, true])
    func penaltyGradientMatchesFiniteDifferences(_ activation: ActivationKind, tangential: Bool) {
        let (network, data) = problem(activation, sphere: tangential)
        let lambda = 0.37
        var workspace = TrainingWorkspace(points: data.count, network: network, penalty: true)
        let value = network.penalisedLossAndGradient(
            on: data,
            penalty: lambda,
            tangential: tangential,
            workspace: &workspace
        )
        #expect(
            abs(value.mse + value.penalty - objective(network, data, lambda: lambda, tangential: tangential)) < 1e-12
        )
        #expect(value.penalty > 0)
        let h = 1e-6
        var worst = 0.0
        for index in network.parameters.indices {
            var plus = network
            var minus = network
            plus.parameters[index] += h
            minus.parameters[index] -= h
            let numeric =
                (objective(plus, data, lambda: lambda, tangential: tangential)
                    - objective(minus, data, lambda: lambda, tangential: tangential)) / (2 * h)
            let analytic = workspace.gradient[index]
            worst = max(worst, abs(analytic - numeric) / max(abs(numeric), abs(analytic), 1e-6))
        }
        #expect(worst < 1e-4, "\(activation), tangential \(tangential): worst relative error \(worst)")
        // With lambda = 0 it is the plain step's gradient.
        var plain = TrainingWorkspace(points: data.count, network: network)
        _ = network.lossAndGradient(on: data, workspace: &plain)
        var none = TrainingWorkspace(points: data.count, network: network, penalty: true)
        _ = network.penalisedLossAndGradient(on: data, penalty: 0, tangential: tangential, workspace: &none)
        let difference = zip(plain.gradient, none.gradient).map { abs($0 - $1) }.max() ?? 1
        #expect(difference < 1e-12)
    }

    @Test(arguments: ActivationKind.allCases)
    func thePenalisedLossDecreasesUnderGradientDescent(_ activation: ActivationKind) {
        var (network, data) = problem(activation, sphere: true, seed: 3)
        var workspace = TrainingWorkspace(points: data.count, network: network, penalty: true)
        var optimizer = Optimizer<Double>(
            kind: .gradientDescent,
            learningRate: 0.01,
            parameterCount: network.parameters.count
        )
        var values: [Double] = []
        for _ in 0..<60 {
            let value = network.penalisedLossAndGradient(
                on: data,
                penalty: 0.5,
                tangential: true,
                workspace: &workspace
            )
            values.append(value.mse + value.penalty)
            optimizer.step(&network.parameters, gradient: workspace.gradient)
        }
        #expect(zip(values, values.dropFirst()).allSatisfy { $1 < $0 }, "\(values)")
        #expect(values.last! < 0.95 * values.first!)
    }

    @Test func weightDecayShrinksWAndAOnly() {
        let (network, data) = problem(.tanh, sphere: false)
        var workspace = TrainingWorkspace(points: data.count, network: network)
        _ = network.lossAndGradient(on: data, workspace: &workspace)
        let g = workspace.gradient
        let theta = network.parameters
        let lr = 0.1
        let decay = 0.3
        let k = network.width
        let d = network.inputDimension
        let decayed = Set(Array(0..<(k * d)) + Array((k * (d + 1))..<(k * (d + 2))))
        // Gradient descent: the gradient of (decay / 2) |theta|^2 on W and a.
        var gd = Optimizer<Double>(
            kind: .gradientDescent,
            learningRate: lr,
            parameterCount: theta.count,
            weightDecay: decay,
            decayed: [0..<(k * d), (k * (d + 1))..<(k * (d + 2))]
        )
        var stepped = theta
        gd.step(&stepped, gradient: g)
        for index in theta.indices {
            let expected = theta[index] - lr * (g[index] + (decayed.contains(index) ? decay * theta[index] : 0))
            #expect(abs(stepped[index] - expected) < 1e-12, "parameter \(index)")
        }
        // Adam: decoupled (AdamW): the first step moves each parameter by lr sign(g) plus the decay.
        var adam = Optimizer<Double>(
            kind: .adam,
            learningRate: lr,
            parameterCount: theta.count,
            weightDecay: decay,
            decayed: [0..<(k * d), (k * (d + 1))..<(k * (d + 2))]
        )
        var adamStepped = theta
        adam.step(&adamStepped, gradient: g)
        for index in theta.indices where abs(g[index]) > 1e-6 {
            let shrunk = decayed.contains(index) ? theta[index] * (1 - lr * decay) : theta[index]
            let expected = shrunk - lr * (g[index] > 0 ? 1 : -1)
            #expect(abs(adamStepped[index] - expected) < 1e-6, "parameter \(index)")
        }
    }

    @Test func initScaleScalesTheOutputLayerAndIsRecorded() throws {
        let plain = Network<Double>(randomWithInputDimension: 6, width: 10, activation: .relu, seed: 4)
        let small = Network<Double>(
            randomWithInputDimension: 6,
            width: 10,
            activation: .relu,
            seed: 4,
            outputScale: 0.1
        )
        #expect(plain.weights == small.weights && plain.biases == small.biases)
        for (a, b) in zip(plain.outputWeights, small.outputWeights) { #expect(abs(0.1 * a - b) < 1e-15) }
        let cell = CellParameters(n: 32, d: 6, width: 10, seed: 4, maxSteps: 5)
        var scaled = cell
        scaled.initScale = 0.1
        #expect(scaled.resolved() != cell.resolved())
        var neutral = cell
        neutral.initScale = 1
        neutral.weightDecay = 0
        neutral.gradPenalty = 0
        neutral.extraSteps = 0
        // The neutral values are the old cell: the same JSON, so the same key.
        #expect(neutral.resolved() == cell.resolved())
        let json = String(decoding: try JSONEncoder().encode(neutral.resolved()), as: UTF8.self)
        #expect(!json.contains("init_scale") && !json.contains("grad_penalty") && !json.contains("extra_steps"))
        let m = try Cell.run(scaled).result.metrics
        #expect(m.initialisation.contains("init_scale = 0.1"))
        #expect(try Cell.run(cell).result.metrics.initialisation == Network<Float>.initialisationScheme)
    }

    @Test func extraStepsKeepAFittingNetworkAndMoveIt() throws {
        var cell = CellParameters(n: 48, d: 8, width: 64, seed: 1, maxSteps: 3000)
        let plain = try Cell.run(cell).result.metrics
        #expect(plain.stopReason == .targetReached)
        cell.gradPenalty = 0.003
        cell.extraSteps = 300
        let run = try Cell.run(cell)
        let m = run.result.metrics
        #expect(m.stopReason == .extraSteps || m.stopReason == .fitLost, "\(m.stopReason)")
        #expect(m.trainMSE! <= cell.targetMSE, "the measured network fits")
        #expect(m.steps > plain.steps)
        // The reported MSE is the returned network's.
        let data = try CellData.make(for: cell)
        let fit = Measure.fit(run.network.converted(to: Double.self), data.train.converted(to: Float.self).converted())
        #expect(abs(fit.mse - m.trainMSE!) < 1e-12)
    }

    @Test func optionsThatDoNotApplyAreRefusedWithTheFix() {
        func message(_ cell: CellParameters) -> String {
            do {
                try cell.validate()
                return ""
            } catch { return error.message }
        }
        var features = CellParameters(n: 32, d: 4, width: 8, trainer: .randomFeatures)
        features.gradPenalty = 0.1
        #expect(message(features).contains("grad_penalty apply to the adam and gd trainers"))
        var negative = CellParameters(n: 32, d: 4, width: 8)
        negative.weightDecay = -1
        #expect(message(negative).contains("weight_decay must be"))
        #expect(message(CellParameters(n: 32, d: 4, width: 16, trainer: .construction)).contains("width >= n"))
        #expect(
            message(CellParameters(n: 8, d: 4, width: 8, data: .gaussian, trainer: .construction)).contains(
                "unit sphere"
            )
        )
        #expect(
            message(CellParameters(n: 8, d: 4, width: 8, activation: .tanh, trainer: .construction)).contains(
                "activation relu"
            )
        )
    }

    /// The construction interpolates, and its bounds bracket the constant derived for it.
    @Test func theConstructionInterpolatesAndItsBoundsBracketItsConstant() throws {
        for (n, d, width) in [(48, 8, 48), (64, 6, 80)] {
            let cell = CellParameters(n: n, d: d, width: width, seed: 2, trainer: .construction)
            let run = try Cell.run(cell)
            let m = run.result.metrics
            #expect(m.stopReason == .constructed && m.steps == 0)
            #expect(m.trainMSE! <= cell.targetMSE && m.fitFraction == 1, "mse \(m.trainMSE!)")
            let data = try CellData.make(for: cell)
            let theta = try Construction.smallestAngle(
                Matrix(
                    rows: n,
                    columns: d,
                    storage: data.train.converted(to: Float.self).inputs.converted(to: Double.self).storage
                ).unitRowsForTests
            )
            let constant = Construction.supportConstant(smallestAngle: theta)
            let lower = try #require(m.lipSupportLower)
            // The network's weights are float32, so its constant is the derived one only to float32
            // rounding (the ascent has found it 1.8e-6 above).
            #expect(lower <= constant * (1 + 1e-5), "support bound \(lower) above the derived \(constant)")
            #expect(lower >= 0.8 * constant, "support bound \(lower) far below the derived \(constant)")
            #expect(constant <= m.lipUpper!)
            // About twice the floor of the closest pair: the floor is never above the constant.
            #expect(m.interpFloor! <= constant)
            #expect(m.lipInitSupportLower == nil)
        }
    }
}

extension Matrix where Scalar == Double {
    /// Each row scaled to unit norm.
    var unitRowsForTests: Matrix<Double> {
        var unit = self
        for i in 0..<rows {
            let norm = row(i).reduce(0) { $0 + $1 * $1 }.squareRoot()
            for m in 0..<columns { unit[i, m] /= norm }
        }
        return unit
    }
}
