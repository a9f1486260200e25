/// Reusable buffers of the training step, allocated once per cell so that steps allocate nothing.
public struct TrainingWorkspace<Scalar: BLASScalar>: Sendable {
    /// n x k: pre-activations, then activations, then back-propagated slopes, in place.
    var hidden: [Scalar]
    /// Gradient of the loss, in the network's flat layout.
    public internal(set) var gradient: [Scalar]
    /// One row's slopes, for activations that compute them with their values (k).
    var rowSlopes: [Scalar]
    /// The gradient penalty's buffers (`penalisedLossAndGradient`), one element each without it:
    /// psi'(Z) (n x k), the input gradients (n x d), U W^T (n x k, smooth activations only), the
    /// scaled residuals (n), S^T U and diag(a) W (k x d).
    var slopes: [Scalar]
    var inputGradients: [Scalar]
    var mixed: [Scalar]
    var residuals: [Scalar]
    var t: [Scalar]
    var scaledW: [Scalar]

    /// Buffers for a network of this shape on n points, with the gradient penalty's if `penalty`.
    public init(points n: Int, network: Network<Scalar>, penalty: Bool = false) {
        let k = network.width
        let d = network.inputDimension
        hidden = [Scalar](repeating: 0, count: n * k)
        gradient = [Scalar](repeating: 0, count: network.parameters.count)
        rowSlopes = [Scalar](repeating: 0, count: max(1, k))
        func buffer(_ count: Int, _ wanted: Bool) -> [Scalar] { [Scalar](repeating: 0, count: wanted ? count : 1) }
        slopes = buffer(n * k, penalty)
        inputGradients = buffer(n * d, penalty)
        mixed = buffer(n * k, penalty && network.activation != .relu)
        residuals = buffer(n, penalty)
        t = buffer(k * d, penalty)
        scaledW = buffer(k * d, penalty)
    }
}

extension Network {
    /// The mean squared error on `data`, leaving its gradient with respect to every parameter in
    /// `workspace.gradient`.
    ///
    /// One training step costs two GEMMs (Z = X W^T, dW = Delta^T X; 4 n d k flops) and one pass over
    /// the n x k hidden matrix: each row is activated, dotted with a, and turned into its
    /// back-propagated slopes while it is still in cache. psi' is recovered from psi(z), so the
    /// pre-activations need no second buffer.
    public func lossAndGradient(on data: Dataset<Scalar>, workspace: inout TrainingWorkspace<Scalar>) -> Double {
        precondition(data.inputs.columns == inputDimension && workspace.hidden.count == data.count * width)
        switch activation {
        case .relu: return lossAndGradient(ReLUKernel.self, data, &workspace)
        case .tanh: return lossAndGradient(TanhKernel.self, data, &workspace)
        case .softplus: return lossAndGradient(SoftplusKernel.self, data, &workspace)
        }
    }

    @inline(__always)
    private func lossAndGradient<K: ActivationKernel>(
        _ kernel: K.Type,
        _ data: Dataset<Scalar>,
        _ workspace: inout TrainingWorkspace<Scalar>
    ) -> Double {
        let n = data.count
        let k = width
        let d = inputDimension
        let scale = 2 / Scalar(n)
        var sumOfSquares = 0.0
        parameters.withUnsafeBufferPointer { theta in
            data.inputs.storage.withUnsafeBufferPointer { xBuffer in
                data.labels.withUnsafeBufferPointer { y in
                    workspace.hidden.withUnsafeMutableBufferPointer { hiddenBuffer in
                        workspace.rowSlopes.withUnsafeMutableBufferPointer { slopeBuffer in
                            workspace.gradient.withUnsafeMutableBufferPointer { gradientBuffer in
                                let w = theta.baseAddress!
                                let b = w + biasOffset
                                let a = w + outputWeightOffset
                                let c = theta[outputBiasOffset]
                                let x = xBuffer.baseAddress!
                                let hidden = hiddenBuffer.baseAddress!
                                let rowSlopes = slopeBuffer.baseAddress!
                                let withValue = K.slopeWithValue(Scalar.self)
                                let gradient = gradientBuffer.baseAddress!
                                let gradB = gradient + biasOffset
                                let gradA = gradient + outputWeightOffset
                                gradientBuffer.update(repeating: 0)
                                // Z = X W^T (n x k).
                                Scalar.gemm(
                                    transposeA: false,
                                    transposeB: true,
                                    m: n,
                                    n: k,
                                    k: d,
                                    alpha: 1,
                                    a: x,
                                    lda: d,
                                    b: w,
                                    ldb: d,
                                    beta: 0,
                                    c: hidden,
                                    ldc: k
                                )
                                var gradC: Scalar = 0
                                for i in 0..<n {
                                    let row = hidden + i * k
                                    if withValue {
                                        for j in 0..<k {
                                            let (h, slope) = K.trainingValueAndSlope(row[j] + b[j])
                                            row[j] = h
                                            rowSlopes[j] = slope
                                        }
                                    } else {
                                        for j in 0..<k { row[j] = K.trainingValue(row[j] + b[j]) }
                                    }
                                    let residual = Scalar.dot(k, row, a) + c - y[i]
                                    sumOfSquares += Double(residual) * Double(residual)
                                    let r = scale * residual
                                    gradC += r
                                    for j in 0..<k {
                                        let h = row[j]
                                        gradA[j] += r * h
                                        let psiPrime = withValue ? rowSlopes[j] : K.trainingDerivative(fromValue: h)
                                        let slope = psiPrime * a[j] * r
                                        row[j] = slope
                                        gradB[j] += slope
                                    }
                                }
                                gradient[outputBiasOffset] = gradC
                                // dW = Delta^T X (k x d).
                                Scalar.gemm(
                                    transposeA: true,
                                    transposeB: false,
                                    m: k,
                                    n: d,
                                    k: n,
                                    alpha: 1,
                                    a: hidden,
                                    lda: k,
                                    b: x,
                                    ldb: d,
                                    beta: 0,
                                    c: gradient,
                                    ldc: d
                                )
                            }
                        }
                    }
                }
            }
        }
        return sumOfSquares / Double(n)
    }
}
