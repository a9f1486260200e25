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
    /// `workspace.gradient`. `workspace` must have been made with `penalty: true`.
    public func penalisedLossAndGradient(
        on data: Dataset<Scalar>,
        penalty lambda: Double,
        tangential: Bool,
        workspace: inout TrainingWorkspace<Scalar>
    ) -> (mse: Double, penalty: Double) {
        precondition(data.inputs.columns == inputDimension && workspace.hidden.count == data.count * width)
        precondition(workspace.slopes.count == data.count * width, "the workspace was made without penalty buffers")
        switch activation {
        case .relu: return penalised(ReLUKernel.self, data, lambda, tangential, &workspace)
        case .tanh: return penalised(TanhKernel.self, data, lambda, tangential, &workspace)
        case .softplus: return penalised(SoftplusKernel.self, data, lambda, tangential, &workspace)
        }
    }

    @inline(__always)
    private func penalised<K: ActivationKernel>(
        _ kernel: K.Type,
        _ data: Dataset<Scalar>,
        _ lambda: Double,
        _ tangential: Bool,
        _ workspace: inout TrainingWorkspace<Scalar>
    ) -> (mse: Double, penalty: Double) {
        let n = data.count
        let k = width
        let d = inputDimension
        let scale = 2 / Scalar(n)
        let c = Scalar(2 * lambda / Double(n))
        let curved = !K.isPiecewiseLinear
        var sumOfSquares = 0.0
        var penaltySum = 0.0
        parameters.withUnsafeBufferPointer { theta in
            data.inputs.storage.withUnsafeBufferPointer { xBuffer in
                data.labels.withUnsafeBufferPointer { y in
                    workspace.withPenaltyBuffers {
                        hidden,
                        gradient,
                        slopes,
                        inputGradients,
                        mixed,
                        residuals,
                        t,
                        scaledW in
                        let w = theta.baseAddress!
                        let b = w + biasOffset
                        let a = w + outputWeightOffset
                        let bias = theta[outputBiasOffset]
                        let x = xBuffer.baseAddress!
                        let gradB = gradient + biasOffset
                        let gradA = gradient + outputWeightOffset
                        for index in 0..<parameters.count { gradient[index] = 0 }
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
                            let slopeRow = slopes + i * k
                            for j in 0..<k { row[j] = K.trainingValue(row[j] + b[j]) }
                            let residual = Scalar.dot(k, row, a) + bias - y[i]
                            sumOfSquares += Double(residual) * Double(residual)
                            let r = scale * residual
                            residuals[i] = r
                            gradC += r
                            for j in 0..<k {
                                let h = row[j]
                                gradA[j] += r * h
                                let s = K.trainingDerivative(fromValue: h)
                                slopeRow[j] = s
                                if !curved {
                                    // The loss's slopes are final: relu has no s2 terms.
                                    let delta = s * a[j] * r
                                    row[j] = delta
                                    gradB[j] += delta
                                }
                            }
                        }
                        gradient[outputBiasOffset] = gradC
                        // G = S diag(a) W (n x d): the input gradients.
                        for j in 0..<k {
                            for i in 0..<d { scaledW[j * d + i] = a[j] * w[j * d + i] }
                        }
                        Scalar.gemm(
                            transposeA: false,
                            transposeB: false,
                            m: n,
                            n: d,
                            k: k,
                            alpha: 1,
                            a: slopes,
                            lda: k,
                            b: scaledW,
                            ldb: d,
                            beta: 0,
                            c: inputGradients,
                            ldc: d
                        )
                        // U = P G, row by row, and the penalty.
                        for i in 0..<n {
                            let u = inputGradients + i * d
                            if tangential {
                                let xi = x + i * d
                                let xx = Scalar.dot(d, xi, xi)
                                if xx > 0 {
                                    let along = Scalar.dot(d, u, xi) / xx
                                    for m in 0..<d { u[m] -= along * xi[m] }
                                }
                            }
                            penaltySum += Double(Scalar.dot(d, u, u))
                        }
                        // T = S^T U (k x d).
                        Scalar.gemm(
                            transposeA: true,
                            transposeB: false,
                            m: k,
                            n: d,
                            k: n,
                            alpha: 1,
                            a: slopes,
                            lda: k,
                            b: inputGradients,
                            ldb: d,
                            beta: 0,
                            c: t,
                            ldc: d
                        )
                        if curved {
                            // V = U W^T (n x k), then Delta = a (r s + c s2 V), in place of h.
                            Scalar.gemm(
                                transposeA: false,
                                transposeB: true,
                                m: n,
                                n: k,
                                k: d,
                                alpha: 1,
                                a: inputGradients,
                                lda: d,
                                b: w,
                                ldb: d,
                                beta: 0,
                                c: mixed,
                                ldc: k
                            )
                            for i in 0..<n {
                                let row = hidden + i * k
                                let slopeRow = slopes + i * k
                                let v = mixed + i * k
                                let r = residuals[i]
                                for j in 0..<k {
                                    let s2 = K.secondDerivative(fromValue: row[j])
                                    let delta = a[j] * (r * slopeRow[j] + c * s2 * v[j])
                                    row[j] = delta
                                    gradB[j] += delta
                                }
                            }
                        }
                        // dW = Delta^T X (k x d), then the penalty's c a_j T_j and c w_j . T_j.
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
                        for j in 0..<k {
                            let tj = t + j * d
                            let scaled = c * a[j]
                            for i in 0..<d { gradient[j * d + i] += scaled * tj[i] }
                            gradA[j] += c * Scalar.dot(d, w + j * d, tj)
                        }
                    }
                }
            }
        }
        return (sumOfSquares / Double(n), lambda * penaltySum / Double(n))
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
            _ t: UnsafeMutablePointer<Scalar>, _ scaledW: UnsafeMutablePointer<Scalar>
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
                                        body(
                                            hidden.baseAddress!,
                                            gradient.baseAddress!,
                                            slopes.baseAddress!,
                                            inputGradients.baseAddress!,
                                            mixed.baseAddress!,
                                            residuals.baseAddress!,
                                            t.baseAddress!,
                                            scaledW.baseAddress!
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
