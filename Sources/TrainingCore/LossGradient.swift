import CKernels

/// Reusable buffers of the training step, allocated once per cell so that steps allocate nothing
/// (the per-thread buffers grow once, at the first step with more threads).
public struct TrainingWorkspace<Scalar: BLASScalar>: Sendable {
    /// n x k: pre-activations, then activations, then back-propagated slopes, in place. The plain
    /// step uses only one block of rows per thread of it (`RowPartition`).
    var hidden: [Scalar]
    /// Gradient of the loss, in the network's flat layout.
    public internal(set) var gradient: [Scalar]
    /// Two rows' slopes per thread, for activations that compute them with their values (2k each:
    /// the float32 pass takes rows in pairs).
    var rowSlopes: [Scalar]
    /// The partial gradients of threads 1, 2, ... (thread 0 writes `gradient`), and each thread's
    /// sums of squares.
    var partials: [Scalar]
    var partSums: [Double]
    /// The `CKernels` variant of the float32 passes (tests pick each one in turn).
    var kernelVariant = bestKernelVariant
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
        partials = []
        partSums = [0]
        func buffer(_ count: Int, _ wanted: Bool) -> [Scalar] { [Scalar](repeating: 0, count: wanted ? count : 1) }
        slopes = buffer(n * k, penalty)
        inputGradients = buffer(n * d, penalty)
        mixed = buffer(n * k, penalty && network.activation != .relu)
        residuals = buffer(n, penalty)
        t = buffer(k * d, penalty)
        scaledW = buffer(k * d, penalty)
    }

    /// Makes room for `parts` threads' partial results of `parameterCount` parameters (`extra`
    /// more per part, for the penalty's S^T U) and two rows of scratch of `width`.
    mutating func reserveParts(_ parts: Int, parameterCount: Int, extra: Int = 0, width: Int) {
        let partialCount = (parts - 1) * (parameterCount + extra)
        if partials.count < partialCount { partials = [Scalar](repeating: 0, count: partialCount) }
        if rowSlopes.count < 2 * parts * width { rowSlopes = [Scalar](repeating: 0, count: 2 * parts * width) }
        if partSums.count < 2 * parts { partSums = [Double](repeating: 0, count: 2 * parts) }
    }
}

extension Network {
    /// The mean squared error on `data`, leaving its gradient with respect to every parameter in
    /// `workspace.gradient`, computed on as many threads as OpenBLAS is set to use.
    ///
    /// One training step costs two GEMMs (Z = X W^T, dW = Delta^T X; 4 n d k flops) and one pass over
    /// the n x k hidden matrix: each row is activated, dotted with a, and turned into its
    /// back-propagated slopes while it is still in cache. psi' is recovered from psi(z), so the
    /// pre-activations need no second buffer. The rows are split between threads and processed in
    /// blocks (`RowPartition`); in float32 the pass is `CKernels`' vectorised one.
    // Specialised for both scalars and exported: code outside TrainingCore (the library's users,
    // `bench train`) would otherwise run the unspecialised generic body, about 1.5x slower.
    @_specialize(exported:true,where Scalar == Float)
    @_specialize(exported:true,where Scalar == Double)
    public func lossAndGradient(on data: Dataset<Scalar>, workspace: inout TrainingWorkspace<Scalar>) -> Double {
        lossAndGradient(on: data, workspace: &workspace, threads: BLAS.threads)
    }

    /// `lossAndGradient(on:workspace:)` split into `threads` parts (a cell's thread count, which
    /// OpenBLAS's own setting may not be while it runs on fewer).
    // Specialised for both scalars and exported: code outside TrainingCore (the library's users,
    // `bench train`) would otherwise run the unspecialised generic body, about 1.5x slower.
    @_specialize(exported:true,where Scalar == Float)
    @_specialize(exported:true,where Scalar == Double)
    public func lossAndGradient(
        on data: Dataset<Scalar>,
        workspace: inout TrainingWorkspace<Scalar>,
        threads: Int
    ) -> Double {
        precondition(data.inputs.columns == inputDimension && workspace.hidden.count == data.count * width)
        let partition = RowPartition(rows: data.count, threads: threads)
        workspace.reserveParts(partition.parts, parameterCount: parameters.count, width: width)
        switch activation {
        case .relu: return lossAndGradient(ReLUKernel.self, data, partition, &workspace)
        case .tanh: return lossAndGradient(TanhKernel.self, data, partition, &workspace)
        case .softplus: return lossAndGradient(SoftplusKernel.self, data, partition, &workspace)
        }
    }

    @inline(__always)
    private func lossAndGradient<K: ActivationKernel>(
        _ kernel: K.Type,
        _ data: Dataset<Scalar>,
        _ partition: RowPartition,
        _ workspace: inout TrainingWorkspace<Scalar>
    ) -> Double {
        let n = data.count
        let k = width
        let d = inputDimension
        let count = parameters.count
        let scale = 2 / Scalar(n)
        let variant = workspace.kernelVariant
        let (biasOffset, outputWeightOffset, outputBiasOffset) = (biasOffset, outputWeightOffset, outputBiasOffset)
        parameters.withUnsafeBufferPointer { theta in
            data.inputs.storage.withUnsafeBufferPointer { xBuffer in
                data.labels.withUnsafeBufferPointer { yBuffer in
                    workspace.withStepBuffers { hidden, gradient, rowSlopes, partials, partSums in
                        let w = theta.baseAddress!
                        let b = w + biasOffset
                        let a = w + outputWeightOffset
                        let c = theta[outputBiasOffset]
                        let x = xBuffer.baseAddress!
                        let y = yBuffer.baseAddress!
                        partition.run { part in
                            let g = part == 0 ? gradient : partials + (part - 1) * count
                            g.update(repeating: 0, count: count)
                            let block = hidden + part * partition.blockRows * k
                            let scratch = rowSlopes + 2 * part * k
                            var gradC: Scalar = 0
                            var sumOfSquares = 0.0
                            let rows = partition.range(part)
                            for start in stride(from: rows.lowerBound, to: rows.upperBound, by: partition.blockRows) {
                                let m = min(partition.blockRows, rows.upperBound - start)
                                // Z = X W^T for the block (m x k).
                                Scalar.gemm(
                                    transposeA: false,
                                    transposeB: true,
                                    m: m,
                                    n: k,
                                    k: d,
                                    alpha: 1,
                                    a: x + start * d,
                                    lda: d,
                                    b: w,
                                    ldb: d,
                                    beta: 0,
                                    c: block,
                                    ldc: k
                                )
                                trainingRows(
                                    K.self,
                                    variant: variant,
                                    rows: m,
                                    width: k,
                                    block: block,
                                    scratch: scratch,
                                    b: b,
                                    a: a,
                                    c: c,
                                    y: y + start,
                                    scale: scale,
                                    gradA: g + outputWeightOffset,
                                    gradB: g + biasOffset,
                                    gradC: &gradC,
                                    sumOfSquares: &sumOfSquares
                                )
                                // dW += Delta^T X for the block (k x d).
                                Scalar.gemm(
                                    transposeA: true,
                                    transposeB: false,
                                    m: k,
                                    n: d,
                                    k: m,
                                    alpha: 1,
                                    a: block,
                                    lda: k,
                                    b: x + start * d,
                                    ldb: d,
                                    beta: start == rows.lowerBound ? 0 : 1,
                                    c: g,
                                    ldc: d
                                )
                            }
                            g[outputBiasOffset] = gradC
                            partSums[part] = sumOfSquares
                        }
                        // The other parts' sums, in part order.
                        for part in 1..<max(1, partition.parts) {
                            let g = partials + (part - 1) * count
                            for index in 0..<count { gradient[index] += g[index] }
                            partSums[0] += partSums[part]
                        }
                    }
                }
            }
        }
        return workspace.partSums[0] / Double(n)
    }
}

/// The plain step's pass over `rows` rows of a block (see `isosweep_training_rows`): each row
/// is activated, dotted with a, and turned into its back-propagated slopes in place, adding to
/// the gradients of a, b and c and to the sum of squared residuals.
@inline(__always)
func trainingRows<K: ActivationKernel, Scalar: BLASScalar>(
    _ kernel: K.Type,
    variant: Int32,
    rows: Int,
    width k: Int,
    block: UnsafeMutablePointer<Scalar>,
    scratch rowSlopes: UnsafeMutablePointer<Scalar>,
    b: UnsafePointer<Scalar>,
    a: UnsafePointer<Scalar>,
    c: Scalar,
    y: UnsafePointer<Scalar>,
    scale: Scalar,
    gradA: UnsafeMutablePointer<Scalar>,
    gradB: UnsafeMutablePointer<Scalar>,
    gradC: inout Scalar,
    sumOfSquares: inout Double
) {
    if Scalar.self == Float.self {
        var floatGradC = unsafeBitCast(gradC, to: Float.self)
        isosweep_training_rows(
            variant,
            K.kernelIndex,
            Int64(rows),
            Int64(k),
            block.asFloat,
            rowSlopes.asFloat,
            b.asFloat,
            a.asFloat,
            unsafeBitCast(c, to: Float.self),
            y.asFloat,
            unsafeBitCast(scale, to: Float.self),
            gradA.asFloat,
            gradB.asFloat,
            &floatGradC,
            &sumOfSquares
        )
        gradC = unsafeBitCast(floatGradC, to: Scalar.self)
        return
    }
    let withValue = K.slopeWithValue(Scalar.self)
    for i in 0..<rows {
        let row = block + i * k
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
}

extension TrainingWorkspace {
    /// Hands the plain step's buffers to `body` as raw pointers.
    mutating func withStepBuffers<R>(
        _ body: (
            _ hidden: UnsafeMutablePointer<Scalar>, _ gradient: UnsafeMutablePointer<Scalar>,
            _ rowSlopes: UnsafeMutablePointer<Scalar>, _ partials: UnsafeMutablePointer<Scalar>,
            _ partSums: UnsafeMutablePointer<Double>
        ) -> R
    ) -> R {
        hidden.withUnsafeMutableBufferPointer { hidden in
            gradient.withUnsafeMutableBufferPointer { gradient in
                rowSlopes.withUnsafeMutableBufferPointer { rowSlopes in
                    partials.withUnsafeMutableBufferPointer { partials in
                        partSums.withUnsafeMutableBufferPointer { partSums in
                            body(
                                hidden.baseAddress!,
                                gradient.baseAddress!,
                                rowSlopes.baseAddress!,
                                // Empty with one part: never read then.
                                partials.baseAddress ?? gradient.baseAddress!,
                                partSums.baseAddress!
                            )
                        }
                    }
                }
            }
        }
    }
}
