import Diagnostics

/// Gradient-norm ascent of every start at once: the search half of the Lipschitz lower bound, run
/// in float32 (`Scalar == Float`, with `FastMath`) and then polished in float64 from its best
/// points. Each step costs at most four GEMMs over the whole batch (free and tangential starts
/// together): Z = X W^T and G = (a psi'(Z)) W at the candidate points, W v and W^T (a psi''(Z) W v)
/// for the directions of the rows that take one. A row's gradient and curvature are kept from the
/// step that accepted it, so nothing is evaluated twice.
///
/// The ascent only steers: what the search reports (`GradientSearch.ascend`) is the float64
/// gradient norm at the points it ends on, re-evaluated there, so every bound is certified as
/// before.
struct GradientAscent<Scalar: BLASScalar> {
    let weights: Matrix<Scalar>
    let biases: [Scalar]
    let outputWeights: [Scalar]
    let activation: ActivationKind
    var width: Int { weights.rows }
    var inputDimension: Int { weights.columns }

    /// Where a step leaves a batch: the points, their gradients g = W^T (a psi'(z)), and the
    /// curvatures a psi''(z) (k per row) that point the next direction.
    struct Batch {
        var points: Matrix<Scalar>
        var gradients: Matrix<Scalar>
        var curvatures: Matrix<Scalar>
        /// Slopes a psi'(z) (k per row), which G = slopes W sums.
        var slopes: Matrix<Scalar>
        /// |g| or, on tangential rows, |P_x g| (x on the sphere).
        var values: [Scalar]
    }

    init(_ network: Network<Double>) {
        let single = network.converted(to: Scalar.self)
        weights = single.weights
        biases = single.biases
        outputWeights = single.outputWeights
        activation = network.activation
    }

    /// Gradients, curvatures and norms at every row of `points`. For relu, a row whose slopes
    /// differ from row i of `reference` in few units gets its gradient from the reference's by
    /// those units' terms (+-a_j w_j) instead of from the second SGEMM: a step rarely crosses
    /// more than a few of relu's hyperplanes.
    func evaluate(_ points: Matrix<Scalar>, tangential: [Bool], reference: Batch? = nil) -> Batch {
        let k = width
        let d = inputDimension
        var slopes = BLAS.multiply(points, weights, transposeB: true)  // rows x k: z, then slopes
        var curvatures = Matrix<Scalar>(rows: points.rows, columns: k)
        switch activation {
        case .relu: slopesAndCurvatures(ReLUKernel.self, &slopes, &curvatures)
        case .tanh: slopesAndCurvatures(TanhKernel.self, &slopes, &curvatures)
        case .softplus: slopesAndCurvatures(SoftplusKernel.self, &slopes, &curvatures)
        }
        var gradients: Matrix<Scalar>
        if activation == .relu, let reference {
            gradients = reference.gradients
            var dense: [Int] = []
            var changed: [Int] = []
            let limit = Self.sparseUnits(k)
            slopes.storage.withUnsafeBufferPointer { new in
                reference.slopes.storage.withUnsafeBufferPointer { old in
                    weights.storage.withUnsafeBufferPointer { w in
                        gradients.storage.withUnsafeMutableBufferPointer { g in
                            guard let new = new.baseAddress, let old = old.baseAddress, let w = w.baseAddress,
                                let g = g.baseAddress
                            else { return }
                            for i in 0..<points.rows {
                                let newRow = new + i * k
                                let oldRow = old + i * k
                                let gradient = g + i * d
                                changed.removeAll(keepingCapacity: true)
                                for j in 0..<k where newRow[j] != oldRow[j] {
                                    changed.append(j)
                                    if changed.count > limit { break }
                                }
                                if changed.count > limit {
                                    dense.append(i)
                                    continue
                                }
                                for j in changed {
                                    let delta = newRow[j] - oldRow[j]
                                    let unit = w + j * d
                                    for c in 0..<d { gradient[c] += delta * unit[c] }
                                }
                            }
                        }
                    }
                }
            }
            if !dense.isEmpty {
                let computed = BLAS.multiply(slopes.gathering(rows: dense), weights)
                for (r, i) in dense.enumerated() { gradients.copyRow(i, from: computed, row: r) }
            }
        } else {
            gradients = BLAS.multiply(slopes, weights)  // rows x d
        }
        var values = [Scalar](repeating: 0, count: points.rows)
        for i in 0..<points.rows {
            values[i] = gradients.rowNorm(i, orthogonalTo: tangential[i] ? points : nil)
        }
        return Batch(points: points, gradients: gradients, curvatures: curvatures, slopes: slopes, values: values)
    }

    /// Up to this many changed units a gradient is updated rather than recomputed (an update costs
    /// 2d scalar flops a unit, the SGEMM 2kd vectorised flops a row).
    static func sparseUnits(_ width: Int) -> Int { width / 16 }

    /// z <- a psi'(z + b), curvature <- a psi''(z + b), one vectorisable pass per row.
    private func slopesAndCurvatures<K: ActivationKernel>(
        _: K.Type,
        _ z: inout Matrix<Scalar>,
        _ curvatures: inout Matrix<Scalar>
    ) {
        let k = width
        biases.withUnsafeBufferPointer { bBuffer in
            outputWeights.withUnsafeBufferPointer { aBuffer in
                z.storage.withUnsafeMutableBufferPointer { zBuffer in
                    curvatures.storage.withUnsafeMutableBufferPointer { cBuffer in
                        guard k > 0, let b = bBuffer.baseAddress, let a = aBuffer.baseAddress,
                            let zs = zBuffer.baseAddress, let cs = cBuffer.baseAddress
                        else { return }
                        // Pointers to each row, as in the training step: no index arithmetic that
                        // could trap inside the loop, so it vectorises.
                        for i in 0..<(zBuffer.count / k) {
                            let row = zs + i * k
                            let curvatureRow = cs + i * k
                            for j in 0..<k {
                                let (slope, curvature) = K.ascentSlopeAndCurvature(row[j] + b[j])
                                row[j] = a[j] * slope
                                curvatureRow[j] = a[j] * curvature
                            }
                        }
                    }
                }
            }
        }
    }

    /// The gradient of |g|^2 / 2 in x at every row: H g, H = W^T diag(a psi''(z)) W. On tangential
    /// rows the objective is |P_x g|^2 / 2, whose gradient is H g_t - <g, x> g (g_t = P_x g),
    /// projected onto the tangent space.
    ///
    /// Only the rows in `rows` (a step tries a random direction on the others), one per output row.
    func directions(_ batch: Batch, tangential: [Bool], rows: [Int]) -> Matrix<Scalar> {
        let d = inputDimension
        let x = batch.points.gathering(rows: rows)
        let g = batch.gradients.gathering(rows: rows)
        let curvatures = batch.curvatures.gathering(rows: rows)
        var v = g
        for (r, i) in rows.enumerated() where tangential[i] { v.projectRow(r, orthogonalTo: x, row: r) }
        var u = BLAS.multiply(v, weights, transposeB: true)  // rows x k: W v
        u.storage.withUnsafeMutableBufferPointer { us in
            curvatures.storage.withUnsafeBufferPointer { cs in
                for index in 0..<us.count { us[index] *= cs[index] }
            }
        }
        var direction = BLAS.multiply(u, weights)  // rows x d: H v
        for (r, i) in rows.enumerated() where tangential[i] {
            var gx: Scalar = 0
            for j in 0..<d { gx += g[r, j] * x[r, j] }
            for j in 0..<d { direction[r, j] -= gx * g[r, j] }
            direction.projectRow(r, orthogonalTo: x, row: r)
        }
        return direction
    }

    /// Step length below which a row has converged: a float32 step no longer moves a point of
    /// norm ~1 (float64: 1e-9). The row then hops: it restarts from the best point of its kind
    /// moved `restartRadius` in a random direction. Relu's gradient norm has many local maxima of
    /// nearly equal height (its regions' gradients); hops around the best one found beat both
    /// hops around each row's own and fresh starts from weaker probes, and a radius of 0.5 gave
    /// a higher median than 0.1 and 0.3 (measured against the float64 search on the relu networks of
    /// `LipschitzRegressionTests`' fixture, sphere data, probe seeds 0-7).
    static var minimumStep: Scalar { max(Scalar.ulpOfOne, 1e-9) }
    static var restartRadius: Scalar { 0.5 }

    /// Ascent of the (tangential) gradient norm from every row of `starts`, all rows in one batch.
    /// The direction is the gradient of the squared norm, alternating with random directions after
    /// a failed step (relu's gradient norm is piecewise constant, and its curvature is a sharp
    /// softplus's, a direction only). A step is kept only if the norm grows; a converged row hops
    /// (`minimumStep`). Tangential rows stay on the unit sphere. Returns the best point of each row.
    func ascend(
        from starts: Matrix<Scalar>,
        tangential: [Bool],
        steps: Int,
        rng: inout SeededGenerator,
        stopAt: ContinuousClock.Instant?,
        shouldStop: @Sendable () -> Bool
    ) throws(IsosweepError) -> Matrix<Scalar> {
        let rows = starts.rows
        let d = inputDimension
        guard rows > 0 && steps > 0 else { return starts }
        var current = evaluate(starts, tangential: tangential)
        var best = current.points
        var bestValues = current.values.map { $0.isFinite ? $0 : -.infinity }
        var stepSize = [Scalar](repeating: 0.1, count: rows)
        var failures = [Int](repeating: 0, count: rows)
        var hopping = [Bool](repeating: false, count: rows)
        var u = Matrix<Scalar>(rows: 1, columns: d)  // a row's step direction
        for _ in 0..<steps {
            // Out of time: the points reached so far are still real points, certified by the caller.
            if let stopAt, ContinuousClock.now >= stopAt { break }
            if shouldStop() {
                throw IsosweepError(.cancelled, "the Lipschitz search stopped: the worker is shutting down")
            }
            // Directions only for the rows that take one: a converged row hops, and a row tries a
            // random direction after an odd number of failures.
            let steered = (0..<rows).filter { stepSize[$0] >= Self.minimumStep && failures[$0] % 2 == 0 }
            let directions = directions(current, tangential: tangential, rows: steered)
            var steeredRow = [Int?](repeating: nil, count: rows)
            for (r, i) in steered.enumerated() { steeredRow[i] = r }
            var candidate = current.points
            for i in 0..<rows {
                var length: Scalar = 0
                var move = stepSize[i]
                hopping[i] = stepSize[i] < Self.minimumStep
                if hopping[i] {
                    stepSize[i] = 0.1
                    failures[i] = 0
                    // A hop leaves from the best point of the row's kind (free or tangential),
                    // so the batch closes in on the best maximum found.
                    var from = i
                    for r in 0..<rows where tangential[r] == tangential[i] && bestValues[r] > bestValues[from] {
                        from = r
                    }
                    candidate.copyRow(i, from: best, row: from)
                    move = Self.restartRadius
                } else if let r = steeredRow[i] {
                    u.copyRow(0, from: directions, row: r)
                    length = u.storage.reduce(0) { $0 + $1 * $1 }.squareRoot()
                }
                if !(length > 1e-12) {
                    randomDirection(&u, at: candidate, row: i, tangential: tangential[i], rng: &rng)
                    length = u.storage.reduce(0) { $0 + $1 * $1 }.squareRoot()
                }
                guard length > 0 else { continue }
                for j in 0..<d { candidate[i, j] += move * u[0, j] / length }
                if tangential[i] { candidate.normaliseRow(i) }
            }
            let trial = evaluate(candidate, tangential: tangential, reference: current)
            for i in 0..<rows {
                guard trial.values[i].isFinite else { continue }
                if hopping[i] || trial.values[i] > current.values[i] {
                    copyRow(i, from: trial, into: &current)
                    if !hopping[i] {
                        stepSize[i] = min(1, stepSize[i] * 1.5)
                        failures[i] = 0
                    }
                    if current.values[i] > bestValues[i] {
                        bestValues[i] = current.values[i]
                        best.copyRow(i, from: current.points, row: i)
                    }
                } else {
                    failures[i] += 1
                    if failures[i] % 2 == 0 { stepSize[i] *= 0.5 }
                }
            }
        }
        return best
    }

    /// A Gaussian direction (tangent to the sphere at row i of `x` on tangential rows).
    private func randomDirection(
        _ u: inout Matrix<Scalar>,
        at x: Matrix<Scalar>,
        row i: Int,
        tangential: Bool,
        rng: inout SeededGenerator
    ) {
        for j in 0..<u.columns { u[0, j] = Scalar(rng.nextGaussian()) }
        if tangential { u.projectRow(0, orthogonalTo: x, row: i) }
    }

    private func copyRow(_ i: Int, from trial: Batch, into batch: inout Batch) {
        batch.points.copyRow(i, from: trial.points, row: i)
        batch.gradients.copyRow(i, from: trial.gradients, row: i)
        batch.curvatures.copyRow(i, from: trial.curvatures, row: i)
        batch.slopes.copyRow(i, from: trial.slopes, row: i)
        batch.values[i] = trial.values[i]
    }
}
