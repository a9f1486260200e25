import CKernels

/// The two-layer network f(x) = sum_j a_j psi(<w_j, x> + b_j) + c.
///
/// All parameters live in one flat buffer [W (k x d, row-major) | b (k) | a (k) | c], so that a
/// gradient has the same layout and an optimiser step is one loop with no allocation.
public struct Network<Scalar: BLASScalar>: Sendable, Equatable {
    /// Input dimension d.
    public let inputDimension: Int
    /// Width k.
    public let width: Int
    /// Activation psi.
    public let activation: ActivationKind
    /// [W | b | a | c].
    public var parameters: [Scalar]

    /// The initialisation scheme, recorded in every result.
    public static var initialisationScheme: String { initialisationScheme(outputScale: 1) }

    /// The scheme with the output layer scaled by `outputScale` (`init_scale`).
    public static func initialisationScheme(outputScale: Double) -> String {
        let output = outputScale == 1 ? "a_j ~ N(0, 1/k)" : "a_j ~ N(0, s^2/k) with s = init_scale = \(outputScale)"
        return "isosweep-init-v1: w_j ~ N(0, I_d/2), b_j ~ N(0, 1/2), \(output), c = 0"
    }

    /// A network with the given parameters.
    public init(inputDimension: Int, width: Int, activation: ActivationKind, parameters: [Scalar]) {
        precondition(
            parameters.count == width * (inputDimension + 2) + 1,
            "parameter count does not match k (d + 2) + 1"
        )
        self.inputDimension = inputDimension
        self.width = width
        self.activation = activation
        self.parameters = parameters
    }

    /// A network from its tensors.
    public init(
        weights: Matrix<Scalar>,
        biases: [Scalar],
        outputWeights: [Scalar],
        outputBias: Scalar,
        activation: ActivationKind
    ) {
        precondition(biases.count == weights.rows && outputWeights.count == weights.rows)
        self.init(
            inputDimension: weights.columns,
            width: weights.rows,
            activation: activation,
            parameters: weights.storage + biases + outputWeights + [outputBias]
        )
    }

    /// A freshly initialised network (see `initialisationScheme`): <w_j, x> + b_j ~ N(0, 1) for
    /// unit-norm x, and the output has variance O(1) at any width.
    /// `outputScale` multiplies a's standard deviation (`init_scale`); the draws are the same.
    public init(
        randomWithInputDimension d: Int,
        width k: Int,
        activation: ActivationKind,
        seed: UInt64,
        outputScale scale: Double = 1
    ) {
        var rng = SeededGenerator(seed: seed, stream: .initialisation)
        let half = (0.5).squareRoot()
        let outputScale = scale / Double(k).squareRoot()
        var values = [Scalar]()
        values.reserveCapacity(k * (d + 2) + 1)
        for _ in 0..<(k * d) { values.append(Scalar(rng.nextGaussian() * half)) }
        for _ in 0..<k { values.append(Scalar(rng.nextGaussian() * half)) }
        for _ in 0..<k { values.append(Scalar(rng.nextGaussian() * outputScale)) }
        values.append(0)
        self.init(inputDimension: d, width: k, activation: activation, parameters: values)
    }

    /// Offsets of the tensors in `parameters`.
    var biasOffset: Int { width * inputDimension }
    /// The ranges of W and a in `parameters`: what weight decay shrinks.
    var decayedRanges: [Range<Int>] { [0..<biasOffset, outputWeightOffset..<outputBiasOffset] }
    var outputWeightOffset: Int { width * (inputDimension + 1) }
    var outputBiasOffset: Int { width * (inputDimension + 2) }

    /// Hidden weights W (k x d).
    public var weights: Matrix<Scalar> {
        Matrix(rows: width, columns: inputDimension, storage: Array(parameters[0..<biasOffset]))
    }
    /// Hidden biases b.
    public var biases: [Scalar] { Array(parameters[biasOffset..<outputWeightOffset]) }
    /// Output weights a.
    public var outputWeights: [Scalar] { Array(parameters[outputWeightOffset..<outputBiasOffset]) }
    /// Output bias c.
    public var outputBias: Scalar { parameters[outputBiasOffset] }

    /// The same network in another precision.
    public func converted<Other: BLASScalar>(to: Other.Type = Other.self) -> Network<Other> {
        Network<Other>(
            inputDimension: inputDimension,
            width: width,
            activation: activation,
            parameters: parameters.map { Other($0) }
        )
    }

    /// Pre-activations Z = X W^T + b (rows x k).
    func preactivations(_ inputs: Matrix<Scalar>) -> Matrix<Scalar> {
        precondition(
            inputs.columns == inputDimension,
            "inputs have \(inputs.columns) columns, the network expects \(inputDimension)"
        )
        var z = BLAS.multiply(inputs, weights, transposeB: true)
        let k = width
        z.storage.withUnsafeMutableBufferPointer { zs in
            biases.withUnsafeBufferPointer { b in
                for i in 0..<(k == 0 ? 0 : zs.count / k) {
                    let row = zs.baseAddress! + i * k
                    for j in 0..<k { row[j] += b[j] }
                }
            }
        }
        return z
    }

    /// f(x) for every row of `inputs`.
    public func outputs(_ inputs: Matrix<Scalar>) -> [Scalar] {
        let z = preactivations(inputs)
        let a = outputWeights
        let c = outputBias
        var values = [Scalar](repeating: 0, count: width)
        return (0..<inputs.rows).map { i in
            var sum = c
            if activation != .relu {
                z.storage.withUnsafeBufferPointer { zs in
                    values.withUnsafeMutableBufferPointer { vs in
                        activationValues(zs.baseAddress! + i * width, vs.baseAddress!)
                    }
                }
                for j in 0..<width { sum += a[j] * values[j] }
                return sum
            }
            z.storage.withUnsafeBufferPointer { zs in
                let row = zs.baseAddress! + i * width
                switch activation {
                case .relu: for j in 0..<width { sum += a[j] * ReLUKernel.value(row[j]) }
                default: for j in 0..<width { sum += a[j] * activation.value(row[j]) }
                }
            }
            return sum
        }
    }

    /// psi over one row of k pre-activations (tanh and softplus), through `CKernels`' loops:
    /// libmvec's functions in float64 (libm was most of the float64 search's time), FastMath's
    /// in float32 (the search's float32 screening of probes).
    private func activationValues(_ z: UnsafePointer<Scalar>, _ values: UnsafeMutablePointer<Scalar>) {
        let count = Int64(width)
        switch (activation, Scalar.self == Double.self) {
        case (.tanh, true): isosweep_tanh_f64(bestKernelVariant, count, z.asDouble, values.asDouble)
        case (.softplus, true): isosweep_softplus_f64(bestKernelVariant, count, z.asDouble, values.asDouble)
        case (.tanh, false): isosweep_tanh(bestKernelVariant, count, z.asFloat, values.asFloat)
        case (.softplus, false): isosweep_softplus(bestKernelVariant, count, z.asFloat, values.asFloat)
        case (.relu, _): preconditionFailure("relu needs no activation loop")
        }
    }

    /// f(x) and the input gradient W^T (a * psi'(Wx + b)) for every row of `inputs`.
    public func outputsAndInputGradients(_ inputs: Matrix<Scalar>) -> (outputs: [Scalar], gradients: Matrix<Scalar>) {
        let probe = evaluate(inputs)
        return (probe.outputs, probe.gradients)
    }

    /// Outputs, input gradients and pre-activations of a batch.
    func evaluate(
        _ inputs: Matrix<Scalar>
    ) -> (outputs: [Scalar], gradients: Matrix<Scalar>, preactivations: Matrix<Scalar>) {
        let z = preactivations(inputs)
        // Every slope is written below (`valuesAndSlopes` covers each row's every unit).
        var slopes = Matrix<Scalar>(uninitialisedRows: inputs.rows, columns: width)
        var outputs = [Scalar](repeating: outputBias, count: inputs.rows)
        // One switch per batch, not per element, so that each loop specialises.
        switch activation {
        case .relu: valuesAndSlopes(ReLUKernel.self, z, &outputs, &slopes)
        case .tanh: valuesAndSlopes(TanhKernel.self, z, &outputs, &slopes)
        case .softplus: valuesAndSlopes(SoftplusKernel.self, z, &outputs, &slopes)
        }
        return (outputs, BLAS.multiply(slopes, weights), z)
    }

    /// outputs[i] += sum_j a_j psi(z_ij), slopes_ij = a_j psi'(z_ij), with the exact functions
    /// (psi' from psi: for tanh one call per element, not two).
    private func valuesAndSlopes<K: ActivationKernel>(
        _: K.Type,
        _ z: Matrix<Scalar>,
        _ outputs: inout [Scalar],
        _ slopes: inout Matrix<Scalar>
    ) {
        let a = outputWeights
        if K.self != ReLUKernel.self {
            // The same values and slopes with libmvec's functions for libm's in float64, FastMath's
            // vectorised ones in float32 (`activationValues`).
            var values = [Scalar](repeating: 0, count: width)
            z.storage.withUnsafeBufferPointer { zs in
                slopes.storage.withUnsafeMutableBufferPointer { ss in
                    values.withUnsafeMutableBufferPointer { vs in
                        for i in 0..<z.rows {
                            let h = vs.baseAddress!
                            let slope = ss.baseAddress! + i * width
                            activationValues(zs.baseAddress! + i * width, h)
                            if K.self == SoftplusKernel.self && Scalar.self == Double.self {
                                isosweep_softplus_slope_f64(bestKernelVariant, Int64(width), h.asDouble, slope.asDouble)
                            } else if K.self == SoftplusKernel.self {
                                isosweep_softplus_slope(bestKernelVariant, Int64(width), h.asFloat, slope.asFloat)
                            }
                            var sum = outputs[i]
                            for j in 0..<width {
                                sum += a[j] * h[j]
                                slope[j] = a[j] * (K.self == SoftplusKernel.self ? slope[j] : 1 - h[j] * h[j])
                            }
                            outputs[i] = sum
                        }
                    }
                }
            }
            return
        }
        let k = width
        z.storage.withUnsafeBufferPointer { zs in
            slopes.storage.withUnsafeMutableBufferPointer { ss in
                a.withUnsafeBufferPointer { a in
                    for i in 0..<z.rows {
                        let (zRow, slope) = (zs.baseAddress! + i * k, ss.baseAddress! + i * k)
                        var sum = outputs[i]
                        for j in 0..<k {
                            let h = K.value(zRow[j])
                            sum += a[j] * h
                            slope[j] = a[j] * K.derivative(fromValue: h)
                        }
                        outputs[i] = sum
                    }
                }
            }
        }
    }
}
