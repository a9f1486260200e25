/// A first-order optimiser over a flat parameter buffer; a step allocates nothing.
public struct Optimizer<Scalar: BLASScalar>: Sendable {
    /// The update rule.
    public enum Kind: Sendable {
        /// Adam with the Kingma & Ba defaults (beta1 0.9, beta2 0.999, epsilon 1e-8).
        case adam
        /// Plain gradient descent.
        case gradientDescent
    }

    static var beta1: Double { 0.9 }
    static var beta2: Double { 0.999 }
    static var epsilon: Double { 1e-8 }

    /// The update rule.
    public let kind: Kind
    /// The learning rate.
    public let learningRate: Double
    /// Steps taken so far.
    public private(set) var steps = 0
    private var firstMoment: [Scalar]
    private var secondMoment: [Scalar]
    private var beta1Power = 1.0
    private var beta2Power = 1.0

    /// Weight decay and the parameter ranges it applies to.
    public let weightDecay: Double
    public let decayed: [Range<Int>]

    /// An optimiser for `parameterCount` parameters. With `weightDecay`, each step first shrinks
    /// the parameters in `decayed` by (1 - lr * weightDecay): for gradient descent that is the
    /// gradient of (weightDecay / 2) ||theta||^2, for Adam the decoupled decay of AdamW
    /// (Loshchilov & Hutter; PyTorch's AdamW), which Adam's scaling does not undo.
    public init(
        kind: Kind,
        learningRate: Double,
        parameterCount: Int,
        weightDecay: Double = 0,
        decayed: [Range<Int>] = []
    ) {
        self.kind = kind
        self.learningRate = learningRate
        self.weightDecay = weightDecay
        self.decayed = decayed
        let moments = kind == .adam ? parameterCount : 0
        firstMoment = [Scalar](repeating: 0, count: moments)
        secondMoment = [Scalar](repeating: 0, count: moments)
    }

    /// Moves `parameters` one step against `gradient`.
    // Specialised for both scalars and exported: code outside TrainingCore (the library's users,
    // `bench train`) would otherwise run the unspecialised generic body, about 1.5x slower.
    @_specialize(exported:true,where Scalar == Float)
    @_specialize(exported:true,where Scalar == Double)
    public mutating func step(_ parameters: inout [Scalar], gradient: [Scalar]) {
        precondition(parameters.count == gradient.count)
        steps += 1
        if weightDecay > 0 {
            let shrink = Scalar(1 - learningRate * weightDecay)
            parameters.withUnsafeMutableBufferPointer { theta in
                for range in decayed { for index in range { theta[index] *= shrink } }
            }
        }
        switch kind {
        case .gradientDescent:
            let lr = Scalar(learningRate)
            parameters.withUnsafeMutableBufferPointer { theta in
                gradient.withUnsafeBufferPointer { g in
                    for index in 0..<theta.count { theta[index] -= lr * g[index] }
                }
            }
        case .adam:
            beta1Power *= Self.beta1
            beta2Power *= Self.beta2
            // Bias corrections folded into the step size and epsilon (Kingma & Ba, section 2).
            let correction = (1 - beta2Power).squareRoot()
            let stepSize = Scalar(learningRate * correction / (1 - beta1Power))
            let eps = Scalar(Self.epsilon * correction)
            let b1 = Scalar(Self.beta1)
            let b2 = Scalar(Self.beta2)
            parameters.withUnsafeMutableBufferPointer { theta in
                gradient.withUnsafeBufferPointer { g in
                    firstMoment.withUnsafeMutableBufferPointer { m in
                        secondMoment.withUnsafeMutableBufferPointer { v in
                            for index in 0..<theta.count {
                                let gi = g[index]
                                m[index] = b1 * m[index] + (1 - b1) * gi
                                v[index] = b2 * v[index] + (1 - b2) * gi * gi
                                theta[index] -= stepSize * m[index] / (v[index].squareRoot() + eps)
                            }
                        }
                    }
                }
            }
        }
    }
}

extension Optimizer {
    /// A fresh optimiser of `cell`'s trainer for `network`: its kind, learning rate (times
    /// `rateFactor`) and weight decay on the decayed parameters (W and a).
    init(for cell: CellParameters, network: Network<Scalar>, rateFactor: Double = 1) {
        self.init(
            kind: cell.trainer == .adam ? .adam : .gradientDescent,
            learningRate: cell.resolvedLearningRate * rateFactor,
            parameterCount: network.parameters.count,
            weightDecay: cell.weightDecay ?? 0,
            decayed: network.decayedRanges
        )
    }
}

extension Optimizer {
    /// What a step depends on beyond the optimiser's settings (a checkpoint's share of it).
    struct State: Equatable, Sendable {
        var steps: Int
        /// Adam's moments (empty for gradient descent).
        var firstMoment: [Scalar]
        var secondMoment: [Scalar]
        var beta1Power: Double
        var beta2Power: Double
    }

    /// The optimiser's state, to save and to restore (a restored optimiser takes the same steps
    /// as the one saved, bit for bit).
    var state: State {
        get {
            State(
                steps: steps,
                firstMoment: firstMoment,
                secondMoment: secondMoment,
                beta1Power: beta1Power,
                beta2Power: beta2Power
            )
        }
        set {
            precondition(newValue.firstMoment.count == firstMoment.count, "a checkpoint of another optimiser")
            steps = newValue.steps
            firstMoment = newValue.firstMoment
            secondMoment = newValue.secondMoment
            beta1Power = newValue.beta1Power
            beta2Power = newValue.beta2Power
        }
    }
}
