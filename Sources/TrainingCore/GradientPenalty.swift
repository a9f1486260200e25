import CKernels

/// The gradient penalty R = lambda / n * sum_i ||P_i g_i||^2 and its exact parameter gradient,
/// where g_i = grad_x f(x_i) = W^T (a * psi'(z_i)), z_i = W x_i + b, and P_i is the projection
/// onto the tangent space of the sphere at x_i (sphere and file data: the constant the law bounds
/// is tangential) or the identity.
///
/// With u_i = P_i g_i, S = psi'(Z), S2 = psi''(Z) (n x k), and c = 2 lambda / n:
/// - dR/da_j = c sum_i s_ij (w_j . u_i) = c w_j . T_j, with T = S^T U (k x d);
/// - dR/dw_j = c a_j T_j + c a_j sum_i s2_ij (w_j . u_i) x_i;
/// - dR/db_j = c a_j sum_i s2_ij (w_j . u_i);
/// - dR/dc = 0.
/// The s2 terms join the loss's back-propagated slopes Delta (so they ride on the existing
/// dW = Delta^T X), and need V = U W^T; relu has s2 = 0 almost everywhere and skips them. A
/// penalised step is then five GEMMs of n x k x d (four for relu) where a plain step is two.
extension Network {
    /// The mean squared error and the penalty on `data`, with the gradient of their sum in
    /// `workspace.gradient`, computed on as many threads as OpenBLAS is set to use (the rows are
    /// split as the plain step splits them, `RowPartition`). `workspace` must have been made with
    /// `penalty: true`.
    // Specialised for both scalars and exported: code outside TrainingCore (the library's users,
    // `bench train`) would otherwise run the unspecialised generic body, about 1.5x slower.
    @_specialize(exported:true,where Scalar == Float)
    @_specialize(exported:true,where Scalar == Double)
    public func penalisedLossAndGradient(
        on data: Dataset<Scalar>,
        penalty lambda: Double,
        tangential: Bool,
        workspace: inout TrainingWorkspace<Scalar>
    ) -> (mse: Double, penalty: Double) {
        penalisedLossAndGradient(
            on: data,
            penalty: lambda,
            tangential: tangential,
            workspace: &workspace,
            threads: BLAS.threads
        )
    }

    /// `penalisedLossAndGradient(on:penalty:tangential:workspace:)` split into `threads` parts,
    /// with the mean squared error's gradient weighted by `fitWeight` (the returned MSE is not:
    /// 0 gives the penalty's gradient alone, at points whose labels do not matter).
    func penalisedLossAndGradient(
        on data: Dataset<Scalar>,
        penalty lambda: Double,
        tangential: Bool,
        workspace: inout TrainingWorkspace<Scalar>,
        threads: Int,
        fitWeight: Double = 1
    ) -> (mse: Double, penalty: Double) {
        precondition(data.inputs.columns == inputDimension && workspace.hidden.count == data.count * width)
        precondition(workspace.slopes.count == data.count * width, "the workspace was made without penalty buffers")
        let partition = RowPartition(rows: data.count, threads: threads)
        workspace.reserveParts(
            partition.parts,
            parameterCount: parameters.count,
            extra: width * inputDimension,
            width: width
        )
        switch activation {
        case .relu: return penalised(ReLUKernel.self, data, lambda, tangential, fitWeight, partition, &workspace)
        case .tanh: return penalised(TanhKernel.self, data, lambda, tangential, fitWeight, partition, &workspace)
        case .softplus:
            return penalised(SoftplusKernel.self, data, lambda, tangential, fitWeight, partition, &workspace)
        }
    }

    @inline(__always)
    private func penalised<K: ActivationKernel>(
        _ kernel: K.Type,
        _ data: Dataset<Scalar>,
        _ lambda: Double,
        _ tangential: Bool,
        _ fitWeight: Double,
        _ partition: RowPartition,
        _ workspace: inout TrainingWorkspace<Scalar>
    ) -> (mse: Double, penalty: Double) {
        let n = data.count
        let k = width
        let d = inputDimension
        let count = parameters.count
        // (2 / n itself at weight 1: the plain penalised step's bits.)
        let scale = fitWeight == 1 ? 2 / Scalar(n) : Scalar(fitWeight) * (2 / Scalar(n))
        let c = Scalar(2 * lambda / Double(n))
        let curved = !K.isPiecewiseLinear
        let variant = workspace.kernelVariant
        let outputBiasOffset = outputBiasOffset
        let blockRows = partition.blockRows
        parameters.withUnsafeBufferPointer { theta in
            data.inputs.storage.withUnsafeBufferPointer { xBuffer in
                data.labels.withUnsafeBufferPointer { yBuffer in
                    workspace.withPenaltyBuffers {
                        hidden,
                        gradient,
                        slopes,
                        inputGradients,
                        mixed,
                        residuals,
                        t,
                        scaledW,
                        partials,
                        partSums in
                        let pass = PenaltyBlockPass(
                            self,
                            theta: theta,
                            x: xBuffer.baseAddress!,
                            y: yBuffer.baseAddress!,
                            scaledW: scaledW,
                            scale: scale,
                            c: c,
                            variant: variant,
                            tangential: tangential,
                            curved: curved
                        )
                        partition.run { part in
                            // This part's gradient and S^T U: thread 0's are the workspace's own.
                            let g = part == 0 ? gradient : partials + (part - 1) * (count + k * d)
                            let tPart = part == 0 ? t : g + count
                            g.update(repeating: 0, count: count)
                            let row0 = part * blockRows
                            let hiddenBlock = hidden + row0 * k
                            let slopeBlock = slopes + row0 * k
                            let mixedBlock = mixed + (curved ? row0 * k : 0)
                            let uBlock = inputGradients + row0 * d
                            let rBlock = residuals + row0
                            var gradC: Scalar = 0
                            var sumOfSquares = 0.0
                            var penaltySum = 0.0
                            let rows = partition.range(part)
                            for start in stride(from: rows.lowerBound, to: rows.upperBound, by: blockRows) {
                                pass.run(
                                    K.self,
                                    start: start,
                                    rows: min(blockRows, rows.upperBound - start),
                                    first: start == rows.lowerBound,
                                    hiddenBlock: hiddenBlock,
                                    slopeBlock: slopeBlock,
                                    mixedBlock: mixedBlock,
                                    uBlock: uBlock,
                                    rBlock: rBlock,
                                    g: g,
                                    tPart: tPart,
                                    gradC: &gradC,
                                    sumOfSquares: &sumOfSquares,
                                    penaltySum: &penaltySum
                                )
                            }
                            g[outputBiasOffset] = gradC
                            partSums[2 * part] = sumOfSquares
                            partSums[2 * part + 1] = penaltySum
                        }
                        pass.combine(
                            parts: partition.parts,
                            count: count,
                            gradient: gradient,
                            t: t,
                            partials: partials,
                            partSums: partSums
                        )
                    }
                }
            }
        }
        return (workspace.partSums[0] / Double(n), lambda * workspace.partSums[1] / Double(n))
    }
}

/// The penalised step's chain over one block of rows (Z, the first pass, G, U = P G, T += S^T U,
/// for smooth activations V and the second pass, then dW += Delta^T X): the pointers and
/// constants every block of every part shares.
struct PenaltyBlockPass<Scalar: BLASScalar> {
    let w: UnsafePointer<Scalar>
    let b: UnsafePointer<Scalar>
    let a: UnsafePointer<Scalar>
    let bias: Scalar
    let x: UnsafePointer<Scalar>
    let y: UnsafePointer<Scalar>
    let scaledW: UnsafeMutablePointer<Scalar>
    let k: Int
    let d: Int
    let scale: Scalar
    let c: Scalar
    let variant: Int32
    let tangential: Bool
    let curved: Bool
    let biasOffset: Int
    let outputWeightOffset: Int

    /// The pass for `network` with parameters `theta`; fills `scaledW` with diag(a) W (k x d),
    /// which every part shares.
    @inline(__always)
    init(
        _ network: Network<Scalar>,
        theta: UnsafeBufferPointer<Scalar>,
        x: UnsafePointer<Scalar>,
        y: UnsafePointer<Scalar>,
        scaledW: UnsafeMutablePointer<Scalar>,
        scale: Scalar,
        c: Scalar,
        variant: Int32,
        tangential: Bool,
        curved: Bool
    ) {
        (k, d) = (network.width, network.inputDimension)
        (biasOffset, outputWeightOffset) = (network.biasOffset, network.outputWeightOffset)
        w = theta.baseAddress!
        b = w + biasOffset
        a = w + outputWeightOffset
        bias = theta[network.outputBiasOffset]
        (self.x, self.y, self.scaledW) = (x, y, scaledW)
        (self.scale, self.c, self.variant, self.tangential, self.curved) = (scale, c, variant, tangential, curved)
        for j in 0..<k {
            for i in 0..<d { scaledW[j * d + i] = a[j] * w[j * d + i] }
        }
    }

    /// Runs the chain on rows start..<start + m, whose buffers are the ...Block pointers;
    /// `first`: the part's first block, which sets T and dW instead of adding to them.
    @inline(__always)
    func run<K: ActivationKernel>(
        _ kernel: K.Type,
        start: Int,
        rows m: Int,
        first: Bool,
        hiddenBlock: UnsafeMutablePointer<Scalar>,
        slopeBlock: UnsafeMutablePointer<Scalar>,
        mixedBlock: UnsafeMutablePointer<Scalar>,
        uBlock: UnsafeMutablePointer<Scalar>,
        rBlock: UnsafeMutablePointer<Scalar>,
        g: UnsafeMutablePointer<Scalar>,
        tPart: UnsafeMutablePointer<Scalar>,
        gradC: inout Scalar,
        sumOfSquares: inout Double,
        penaltySum: inout Double
    ) {
        let xBlock = x + start * d
        // Z = X W^T (m x k).
        Scalar.gemm(
            transposeA: false,
            transposeB: true,
            m: m,
            n: k,
            k: d,
            alpha: 1,
            a: xBlock,
            lda: d,
            b: w,
            ldb: d,
            beta: 0,
            c: hiddenBlock,
            ldc: k
        )
        penaltyRows(
            K.self,
            variant: variant,
            rows: m,
            width: k,
            block: hiddenBlock,
            slopes: slopeBlock,
            b: b,
            a: a,
            c: bias,
            y: y + start,
            scale: scale,
            residuals: rBlock,
            gradA: g + outputWeightOffset,
            gradB: g + biasOffset,
            gradC: &gradC,
            sumOfSquares: &sumOfSquares
        )
        // G = S diag(a) W (m x d): the input gradients.
        Scalar.gemm(
            transposeA: false,
            transposeB: false,
            m: m,
            n: d,
            k: k,
            alpha: 1,
            a: slopeBlock,
            lda: k,
            b: scaledW,
            ldb: d,
            beta: 0,
            c: uBlock,
            ldc: d
        )
        // U = P G, row by row, and the penalty.
        projectRows(
            variant: variant,
            rows: m,
            d: d,
            u: uBlock,
            x: xBlock,
            tangential: tangential,
            penaltySum: &penaltySum
        )
        // T += S^T U (k x d).
        accumulate(slopeBlock, times: uBlock, rows: m, into: tPart, first: first)
        if curved { curvature(K.self, rows: m, hiddenBlock, slopeBlock, mixedBlock, uBlock, rBlock, g) }
        // dW += Delta^T X (k x d).
        accumulate(hiddenBlock, times: xBlock, rows: m, into: g, first: first)
    }

    /// Adds the other parts' gradients, T and sums to part 0's, in part order, then the
    /// penalty's c a_j T_j and c w_j . T_j to the gradient.
    func combine(
        parts: Int,
        count: Int,
        gradient: UnsafeMutablePointer<Scalar>,
        t: UnsafeMutablePointer<Scalar>,
        partials: UnsafeMutablePointer<Scalar>,
        partSums: UnsafeMutablePointer<Double>
    ) {
        for part in 1..<max(1, parts) {
            let partial = partials + (part - 1) * (count + k * d)
            for index in 0..<count { gradient[index] += partial[index] }
            for index in 0..<(k * d) { t[index] += partial[count + index] }
            partSums[0] += partSums[2 * part]
            partSums[1] += partSums[2 * part + 1]
        }
        let gradA = gradient + outputWeightOffset
        for j in 0..<k {
            let tj = t + j * d
            let scaled = c * a[j]
            for i in 0..<d { gradient[j * d + i] += scaled * tj[i] }
            gradA[j] += c * Scalar.dot(d, w + j * d, tj)
        }
    }

    /// into (k x d) = (first ? 0 : into) + A^T B, for A (m x k) and B (m x d).
    @inline(__always)
    func accumulate(
        _ a: UnsafePointer<Scalar>,
        times b: UnsafePointer<Scalar>,
        rows m: Int,
        into c: UnsafeMutablePointer<Scalar>,
        first: Bool
    ) {
        Scalar.gemm(
            transposeA: true,
            transposeB: false,
            m: k,
            n: d,
            k: m,
            alpha: 1,
            a: a,
            lda: k,
            b: b,
            ldb: d,
            beta: first ? 0 : 1,
            c: c,
            ldc: d
        )
    }

    /// Smooth activations' second-derivative terms: V = U W^T (m x k), then
    /// Delta = a (r s + c s2 V), in place of h. The pass leaves V's block zero, so the GEMM adds
    /// to it (beta 1: the same bits as beta 0, without OpenBLAS clearing 512 KB a block first);
    /// the workspace's buffer starts zero.
    @inline(__always)
    func curvature<K: ActivationKernel>(
        _ kernel: K.Type,
        rows m: Int,
        _ hiddenBlock: UnsafeMutablePointer<Scalar>,
        _ slopeBlock: UnsafeMutablePointer<Scalar>,
        _ mixedBlock: UnsafeMutablePointer<Scalar>,
        _ uBlock: UnsafeMutablePointer<Scalar>,
        _ rBlock: UnsafeMutablePointer<Scalar>,
        _ g: UnsafeMutablePointer<Scalar>
    ) {
        Scalar.gemm(
            transposeA: false,
            transposeB: true,
            m: m,
            n: k,
            k: d,
            alpha: 1,
            a: uBlock,
            lda: d,
            b: w,
            ldb: d,
            beta: 1,
            c: mixedBlock,
            ldc: k
        )
        penaltyCurvatureRows(
            K.self,
            variant: variant,
            rows: m,
            width: k,
            block: hiddenBlock,
            slopes: slopeBlock,
            mixed: mixedBlock,
            a: a,
            residuals: rBlock,
            penalty: c,
            gradB: g + biasOffset
        )
    }
}

/// The penalised step's first pass over a block (see `isosweep_penalty_rows`).
@inline(__always)
func penaltyRows<K: ActivationKernel, Scalar: BLASScalar>(
    _ kernel: K.Type,
    variant: Int32,
    rows: Int,
    width k: Int,
    block: UnsafeMutablePointer<Scalar>,
    slopes: UnsafeMutablePointer<Scalar>,
    b: UnsafePointer<Scalar>,
    a: UnsafePointer<Scalar>,
    c: Scalar,
    y: UnsafePointer<Scalar>,
    scale: Scalar,
    residuals: UnsafeMutablePointer<Scalar>,
    gradA: UnsafeMutablePointer<Scalar>,
    gradB: UnsafeMutablePointer<Scalar>,
    gradC: inout Scalar,
    sumOfSquares: inout Double
) {
    if Scalar.self == Float.self {
        var floatGradC = unsafeBitCast(gradC, to: Float.self)
        isosweep_penalty_rows(
            variant,
            K.kernelIndex,
            Int64(rows),
            Int64(k),
            block.asFloat,
            slopes.asFloat,
            b.asFloat,
            a.asFloat,
            unsafeBitCast(c, to: Float.self),
            y.asFloat,
            unsafeBitCast(scale, to: Float.self),
            residuals.asFloat,
            gradA.asFloat,
            gradB.asFloat,
            &floatGradC,
            &sumOfSquares
        )
        gradC = unsafeBitCast(floatGradC, to: Scalar.self)
        return
    }
    for i in 0..<rows {
        let row = block + i * k
        let slopeRow = slopes + i * k
        for j in 0..<k { row[j] = K.trainingValue(row[j] + b[j]) }
        let residual = Scalar.dot(k, row, a) + c - y[i]
        sumOfSquares += Double(residual) * Double(residual)
        let r = scale * residual
        residuals[i] = r
        gradC += r
        for j in 0..<k {
            let h = row[j]
            gradA[j] += r * h
            let s = K.trainingDerivative(fromValue: h)
            slopeRow[j] = s
            if K.isPiecewiseLinear {
                // The loss's slopes are final: relu has no s2 terms.
                let delta = s * a[j] * r
                row[j] = delta
                gradB[j] += delta
            }
        }
    }
}

/// U = P G for a block's rows, adding |u_i|^2 to `penaltySum` (see `isosweep_project_rows`).
@inline(__always)
func projectRows<Scalar: BLASScalar>(
    variant: Int32,
    rows: Int,
    d: Int,
    u: UnsafeMutablePointer<Scalar>,
    x: UnsafePointer<Scalar>,
    tangential: Bool,
    penaltySum: inout Double
) {
    if Scalar.self == Float.self {
        isosweep_project_rows(variant, Int64(rows), Int64(d), u.asFloat, x.asFloat, tangential ? 1 : 0, &penaltySum)
        return
    }
    for i in 0..<rows {
        let ui = u + i * d
        if tangential {
            let xi = x + i * d
            let xx = Scalar.dot(d, xi, xi)
            if xx > 0 {
                let along = Scalar.dot(d, ui, xi) / xx
                for column in 0..<d { ui[column] -= along * xi[column] }
            }
        }
        penaltySum += Double(Scalar.dot(d, ui, ui))
    }
}

/// The penalised step's second pass over a block, for smooth activations, leaving `mixed` zero
/// (see `isosweep_penalty_curvature_rows`; in float32, softplus' psi'' is s (1 - s) from the slope
/// already computed, where float64 recovers it from the value).
@inline(__always)
func penaltyCurvatureRows<K: ActivationKernel, Scalar: BLASScalar>(
    _ kernel: K.Type,
    variant: Int32,
    rows: Int,
    width k: Int,
    block: UnsafeMutablePointer<Scalar>,
    slopes: UnsafeMutablePointer<Scalar>,
    mixed: UnsafeMutablePointer<Scalar>,
    a: UnsafePointer<Scalar>,
    residuals: UnsafeMutablePointer<Scalar>,
    penalty c: Scalar,
    gradB: UnsafeMutablePointer<Scalar>
) {
    if Scalar.self == Float.self {
        isosweep_penalty_curvature_rows(
            variant,
            K.kernelIndex,
            Int64(rows),
            Int64(k),
            block.asFloat,
            slopes.asFloat,
            mixed.asFloat,
            a.asFloat,
            residuals.asFloat,
            unsafeBitCast(c, to: Float.self),
            gradB.asFloat
        )
        return
    }
    for i in 0..<rows {
        let row = block + i * k
        let slopeRow = slopes + i * k
        let v = mixed + i * k
        let r = residuals[i]
        for j in 0..<k {
            let s2 = K.secondDerivative(fromValue: row[j])
            let delta = a[j] * (r * slopeRow[j] + c * s2 * v[j])
            v[j] = 0
            row[j] = delta
            gradB[j] += delta
        }
    }
}

extension TrainingWorkspace {
    /// Hands the step's buffers to `body` as raw pointers (the penalty's are empty unless the
    /// workspace was made with `penalty: true`).
    mutating func withPenaltyBuffers<R>(
        _ body: (
            _ hidden: UnsafeMutablePointer<Scalar>, _ gradient: UnsafeMutablePointer<Scalar>,
            _ slopes: UnsafeMutablePointer<Scalar>, _ inputGradients: UnsafeMutablePointer<Scalar>,
            _ mixed: UnsafeMutablePointer<Scalar>, _ residuals: UnsafeMutablePointer<Scalar>,
            _ t: UnsafeMutablePointer<Scalar>, _ scaledW: UnsafeMutablePointer<Scalar>,
            _ partials: UnsafeMutablePointer<Scalar>, _ partSums: UnsafeMutablePointer<Double>
        ) -> R
    ) -> R {
        hidden.withUnsafeMutableBufferPointer { hidden in
            gradient.withUnsafeMutableBufferPointer { gradient in
                slopes.withUnsafeMutableBufferPointer { slopes in
                    inputGradients.withUnsafeMutableBufferPointer { inputGradients in
                        mixed.withUnsafeMutableBufferPointer { mixed in
                            residuals.withUnsafeMutableBufferPointer { residuals in
                                t.withUnsafeMutableBufferPointer { t in
                                    scaledW.withUnsafeMutableBufferPointer { scaledW in
                                        partials.withUnsafeMutableBufferPointer { partials in
                                            partSums.withUnsafeMutableBufferPointer { partSums in
                                                body(
                                                    hidden.baseAddress!,
                                                    gradient.baseAddress!,
                                                    slopes.baseAddress!,
                                                    inputGradients.baseAddress!,
                                                    mixed.baseAddress!,
                                                    residuals.baseAddress!,
                                                    t.baseAddress!,
                                                    scaledW.baseAddress!,
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
                }
            }
        }
    }
}
