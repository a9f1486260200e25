import CKernels
import Diagnostics

/// Gradient-norm ascent of every start at once: the search half of the Lipschitz lower bound, run
/// in float32 (`Scalar == Float`, with `FastMath`) and then polished in float64 from its best
/// points. Each step costs at most four GEMMs over the whole batch (free and tangential starts
/// together): Z = X W^T and G = (a psi'(Z)) W at the candidate points, W v and W^T (a psi''(Z) W v)
/// for the directions of the rows that take a new one. A row's gradient and curvature are kept
/// from the step that accepted it, and its direction until its point moves, so nothing is
/// evaluated twice. In float32 the passes over rows are `CKernels`' (`isosweep_ascent_*`); the
/// float64 polish takes its activations from libmvec.
///
/// The ascent only steers: what the search reports (`GradientSearch.ascend`) is the float64
/// gradient norm at the points it ends on, re-evaluated there, so every bound is certified as
/// before.
struct GradientAscent<Scalar: BLASScalar> {
    let weights: Matrix<Scalar>
    let biases: [Scalar]
    let outputWeights: [Scalar]
    let activation: ActivationKind
    /// Parts the row passes are split into (nil: one a BLAS thread, `ParallelRows.parts`).
    var rowParts: Int?
    /// Threads the whole batch is split over (`LipschitzOptions.threads`): each part's rows are
    /// evaluated and steered on a thread of its own with BLAS calls of its own, which should then
    /// be single-threaded. A row's path depends on the split only through the hops (which leave
    /// from the best point of the whole batch) and the GEMMs' shapes; the split is fixed by the
    /// thread count and the batch, so a search is deterministic for a given thread count.
    var threads = 1
    /// W packed for `CKernels`' products (`isosweep_ascent_xwt`): in float32 on processors that
    /// run the AVX-512 variant; nil elsewhere, where the products are BLAS's.
    let packedUnits: [Float]?
    var width: Int { weights.rows }
    var inputDimension: Int { weights.columns }

    /// Where a step leaves a batch: the points, their gradients g = W^T (a psi'(z)), and the
    /// curvatures a psi''(z) (k per row) that point the next direction.
    struct Batch {
        var points: Matrix<Scalar>
        var gradients: Matrix<Scalar>
        /// (For relu the pre-activations X W^T, without the bias: `directions` computes its
        /// curvatures from them, and the next step's slopes are compared with theirs.)
        var curvatures: Matrix<Scalar>
        /// |g| or, on tangential rows, |P_x g| (x on the sphere).
        var values: [Scalar]
    }

    init(_ network: Network<Double>, threads: Int = 1) {
        self.threads = max(1, threads)
        let single = network.converted(to: Scalar.self)
        weights = single.weights
        biases = single.biases
        outputWeights = single.outputWeights
        activation = network.activation
        let (k, d) = (single.weights.rows, single.weights.columns)
        if Scalar.self == Float.self && bestKernelVariant == Int32(ISOSWEEP_ISA_AVX512) && k > 0 && d > 0 {
            let count = (k + 15) / 16 * 16 * d
            packedUnits = single.weights.storage.withUnsafeBufferPointer { w in
                [Float](unsafeUninitializedCapacity: count) { packed, initialised in
                    isosweep_pack_units(Int64(k), Int64(d), w.baseAddress!.asFloat, packed.baseAddress!)
                    initialised = count
                }
            }
        } else {
            packedUnits = nil
        }
    }

    /// X W^T (rows x k): `CKernels`' product where W is packed, else SGEMM or DGEMM.
    func timesWeightsTransposed(_ x: Matrix<Scalar>) -> Matrix<Scalar> {
        guard let packedUnits, x.rows > 0 else { return BLAS.multiply(x, weights, transposeB: true) }
        let (k, d) = (width, inputDimension)
        var z = Matrix<Scalar>(uninitialisedRows: x.rows, columns: k)
        x.storage.withUnsafeBufferPointer { xs in
            z.storage.withUnsafeMutableBufferPointer { zs in
                isosweep_ascent_xwt(
                    Int64(x.rows),
                    Int64(k),
                    Int64(d),
                    xs.baseAddress!.asFloat,
                    packedUnits,
                    zs.baseAddress!.asFloat
                )
            }
        }
        return z
    }

    /// S W (rows x d): `CKernels`' product where W is packed, else SGEMM or DGEMM.
    func timesWeights(_ s: Matrix<Scalar>) -> Matrix<Scalar> {
        guard packedUnits != nil, s.rows > 0 else { return BLAS.multiply(s, weights) }
        let (k, d) = (width, inputDimension)
        var g = Matrix<Scalar>(uninitialisedRows: s.rows, columns: d)
        s.storage.withUnsafeBufferPointer { ss in
            weights.storage.withUnsafeBufferPointer { w in
                g.storage.withUnsafeMutableBufferPointer { gs in
                    isosweep_ascent_sw(
                        Int64(s.rows),
                        Int64(k),
                        Int64(d),
                        ss.baseAddress!.asFloat,
                        w.baseAddress!.asFloat,
                        gs.baseAddress!.asFloat
                    )
                }
            }
        }
        return g
    }

    /// Gradients, curvatures and norms at every row of `points`. For relu, a row whose slopes
    /// differ from row i of `reference` in few units gets its gradient from the reference's by
    /// those units' terms (+-a_j w_j) instead of from the second SGEMM: a step rarely crosses
    /// more than a few of relu's hyperplanes. Relu keeps the pre-activations instead of its
    /// curvatures, which `directions` computes for the rows it steers only (most trial rows are
    /// rejected, and a sigmoid an element is the costliest part of relu's pass).
    func evaluate(_ points: Matrix<Scalar>, tangential: [Bool], reference: Batch? = nil) -> Batch {
        let product = timesWeightsTransposed(points)  // rows x k: z (no bias)
        var curvatures: Matrix<Scalar>
        var gradients: Matrix<Scalar>
        switch activation {
        case .relu:
            curvatures = product
            gradients = reluGradients(preactivations: product, reference: reference)
        case .tanh, .softplus:
            var slopes = product
            curvatures = Matrix(uninitialisedRows: points.rows, columns: width)
            slopesAndCurvatures(&slopes, &curvatures)
            gradients = timesWeights(slopes)  // rows x d
        }
        var values = [Scalar](repeating: 0, count: points.rows)
        for i in 0..<points.rows {
            values[i] = gradients.rowNorm(i, orthogonalTo: tangential[i] ? points : nil)
        }
        return Batch(points: points, gradients: gradients, curvatures: curvatures, values: values)
    }

    /// Relu's gradients W^T (a [z + b > 0]): against a reference, from the reference's gradient
    /// by the changed units' terms where few changed (counted in one vectorisable pass over both
    /// rows' pre-activations), else, and without a reference, by SGEMM over slopes made for those
    /// rows only. The rows are split over the BLAS threads (`ParallelRows`); each row's arithmetic
    /// is the same whatever the split.
    private func reluGradients(preactivations z: Matrix<Scalar>, reference: Batch?) -> Matrix<Scalar> {
        let k = width
        let rows = z.rows
        guard let reference, k > 0 else { return timesWeights(reluSlopes(z, rows: Array(0..<rows))) }
        let limit = Self.sparseUnits(k)
        var changes = [Int](repeating: k + 1, count: rows)
        var gradients = reference.gradients
        biases.withUnsafeBufferPointer { bBuffer in
            outputWeights.withUnsafeBufferPointer { aBuffer in
                z.storage.withUnsafeBufferPointer { zBuffer in
                    reference.curvatures.storage.withUnsafeBufferPointer { oldBuffer in
                        weights.storage.withUnsafeBufferPointer { wBuffer in
                            gradients.storage.withUnsafeMutableBufferPointer { gBuffer in
                                changes.withUnsafeMutableBufferPointer { changes in
                                    guard let b = bBuffer.baseAddress, let a = aBuffer.baseAddress,
                                        let zs = zBuffer.baseAddress, let old = oldBuffer.baseAddress,
                                        let w = wBuffer.baseAddress, let g = gBuffer.baseAddress
                                    else { return }
                                    ParallelRows.forEach(rows, parts: rowParts ?? ParallelRows.parts(rows)) { range in
                                        reluUpdates(
                                            range,
                                            width: k,
                                            z: zs,
                                            reference: old,
                                            b: b,
                                            a: a,
                                            changes: changes.baseAddress!,
                                            gradients: g,
                                            w: w,
                                            limit: limit
                                        )
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        let dense = (0..<rows).filter { changes[$0] > limit }
        if !dense.isEmpty {
            let computed = timesWeights(reluSlopes(z, rows: dense))
            for (r, i) in dense.enumerated() { gradients.copyRow(i, from: computed, row: r) }
        }
        return gradients
    }

    /// Relu's slopes a_j [z_j + b_j > 0] of the given rows of `z`, one output row each.
    private func reluSlopes(_ z: Matrix<Scalar>, rows: [Int]) -> Matrix<Scalar> {
        let k = width
        var slopes = Matrix<Scalar>(uninitialisedRows: rows.count, columns: k)
        slopes.storage.withUnsafeMutableBufferPointer { sBuffer in
            z.storage.withUnsafeBufferPointer { zBuffer in
                biases.withUnsafeBufferPointer { b in
                    outputWeights.withUnsafeBufferPointer { a in
                        for (r, i) in rows.enumerated() {
                            let (sRow, zRow) = (sBuffer.baseAddress! + r * k, zBuffer.baseAddress! + i * k)
                            if Scalar.self == Float.self {
                                let (bs, as_) = (b.baseAddress!.asFloat, a.baseAddress!.asFloat)
                                isosweep_relu_slopes_rows(
                                    bestKernelVariant,
                                    1,
                                    Int64(k),
                                    zRow.asFloat,
                                    sRow.asFloat,
                                    bs,
                                    as_
                                )
                            } else {
                                for j in 0..<k { sRow[j] = zRow[j] + b[j] > 0 ? a[j] : 0 }
                            }
                        }
                    }
                }
            }
        }
        return slopes
    }

    /// Against row i of `reference` (pre-activations), how many units of each row in `range`
    /// changed slope; where at most `limit` did, the row's gradient is updated by those units'
    /// terms (+-a_j w_j) in unit order: `CKernels`' pass in either precision.
    @inline(__always)
    private func reluUpdates(
        _ range: Range<Int>,
        width k: Int,
        z: UnsafePointer<Scalar>,
        reference: UnsafePointer<Scalar>,
        b: UnsafePointer<Scalar>,
        a: UnsafePointer<Scalar>,
        changes: UnsafeMutablePointer<Int>,
        gradients: UnsafeMutablePointer<Scalar>,
        w: UnsafePointer<Scalar>,
        limit: Int
    ) {
        guard !range.isEmpty else { return }
        let d = inputDimension
        if Scalar.self == Float.self {
            let offset = range.lowerBound * k
            (changes + range.lowerBound).withMemoryRebound(to: Int64.self, capacity: range.count) { counts in
                isosweep_ascent_relu_rows(
                    bestKernelVariant,
                    Int64(range.count),
                    Int64(k),
                    (z + offset).asFloat,
                    (reference + offset).asFloat,
                    b.asFloat,
                    a.asFloat,
                    counts,
                    (gradients + range.lowerBound * d).asFloat,
                    w.asFloat,
                    Int64(d),
                    Int64(limit)
                )
            }
            return
        }
        (changes + range.lowerBound).withMemoryRebound(to: Int64.self, capacity: range.count) { counts in
            isosweep_ascent_relu_rows_f64(
                Int64(range.count),
                Int64(k),
                (z + range.lowerBound * k).asDouble,
                (reference + range.lowerBound * k).asDouble,
                b.asDouble,
                a.asDouble,
                counts,
                (gradients + range.lowerBound * d).asDouble,
                w.asDouble,
                Int64(d),
                Int64(limit)
            )
        }
    }

    /// Up to this many changed units a gradient is updated rather than recomputed (an update costs
    /// 2d scalar flops a unit, the SGEMM 2kd vectorised flops a row).
    static func sparseUnits(_ width: Int) -> Int { width / 16 }

    /// z <- a psi'(z + b), curvature <- a psi''(z + b) for tanh and softplus: `CKernels`' ascent
    /// pass (FastMath's functions in float32, libmvec's in float64), the rows split over threads.
    private func slopesAndCurvatures(_ z: inout Matrix<Scalar>, _ curvatures: inout Matrix<Scalar>) {
        let k = width
        let kernel = activation.kernelIndex
        biases.withUnsafeBufferPointer { bBuffer in
            outputWeights.withUnsafeBufferPointer { aBuffer in
                z.storage.withUnsafeMutableBufferPointer { zBuffer in
                    curvatures.storage.withUnsafeMutableBufferPointer { cBuffer in
                        guard k > 0, let b = bBuffer.baseAddress, let a = aBuffer.baseAddress,
                            let zs = zBuffer.baseAddress, let cs = cBuffer.baseAddress
                        else { return }
                        let rows = zBuffer.count / k
                        ParallelRows.forEach(rows, parts: rowParts ?? ParallelRows.parts(rows)) { range in
                            guard !range.isEmpty else { return }
                            let (count, offset) = (Int64(range.count), range.lowerBound * k)
                            if Scalar.self == Float.self {
                                isosweep_ascent_rows(
                                    bestKernelVariant,
                                    kernel,
                                    count,
                                    Int64(k),
                                    (zs + offset).asFloat,
                                    (cs + offset).asFloat,
                                    b.asFloat,
                                    a.asFloat
                                )
                            } else {
                                isosweep_ascent_rows_f64(
                                    bestKernelVariant,
                                    kernel,
                                    count,
                                    Int64(k),
                                    (zs + offset).asDouble,
                                    (cs + offset).asDouble,
                                    b.asDouble,
                                    a.asDouble
                                )
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
        var v = g
        for (r, i) in rows.enumerated() where tangential[i] { v.projectRow(r, orthogonalTo: x, row: r) }
        var u = timesWeightsTransposed(v)  // rows x k: W v
        let k = width
        batch.curvatures.storage.withUnsafeBufferPointer { cBuffer in
            u.storage.withUnsafeMutableBufferPointer { uBuffer in
                biases.withUnsafeBufferPointer { bBuffer in
                    outputWeights.withUnsafeBufferPointer { aBuffer in
                        guard k > 0, let cs = cBuffer.baseAddress, let us = uBuffer.baseAddress,
                            let b = bBuffer.baseAddress, let a = aBuffer.baseAddress
                        else { return }
                        let relu = activation == .relu
                        ParallelRows.forEach(rows.count, parts: rowParts ?? ParallelRows.parts(rows.count)) { range in
                            guard !range.isEmpty else { return }
                            guard relu else {
                                for r in range {
                                    let (uRow, cRow) = (us + r * k, cs + rows[r] * k)
                                    for j in 0..<k { uRow[j] *= cRow[j] }
                                }
                                return
                            }
                            // Relu's batch holds z: its sharp-softplus curvature is computed here,
                            // for the rows that steer only.
                            let zRows = rows[range].map { Int64($0) }
                            let (count, u) = (Int64(range.count), us + range.lowerBound * k)
                            if Scalar.self == Float.self {
                                isosweep_ascent_relu_curvature_rows(
                                    bestKernelVariant,
                                    count,
                                    Int64(k),
                                    u.asFloat,
                                    cs.asFloat,
                                    zRows,
                                    b.asFloat,
                                    a.asFloat,
                                    Float(ReLUKernel.surrogateSharpness)
                                )
                            } else {
                                var scratch = [Double](repeating: 0, count: k)
                                isosweep_ascent_relu_curvature_rows_f64(
                                    bestKernelVariant,
                                    count,
                                    Int64(k),
                                    u.asDouble,
                                    cs.asDouble,
                                    zRows,
                                    b.asDouble,
                                    a.asDouble,
                                    ReLUKernel.surrogateSharpness,
                                    &scratch
                                )
                            }
                        }
                    }
                }
            }
        }
        var direction = timesWeights(u)  // rows x d: H v
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
    ///
    /// The batch is split into `threads` parts, each stepped whole on a thread of its own
    /// (directions, candidates, evaluation and acceptance); between steps the parts share only the
    /// best point of each kind, where hops leave from. Each row draws its random directions from a
    /// stream of its own (seeded from `rng`), so the draws do not depend on the split either.
    func ascend(
        from starts: Matrix<Scalar>,
        tangential: [Bool],
        steps: Int,
        rng: inout SeededGenerator,
        stopAt: ContinuousClock.Instant?,
        shouldStop: @Sendable () -> Bool
    ) throws(IsosweepError) -> Matrix<Scalar> {
        let rows = starts.rows
        guard rows > 0 && steps > 0 else { return starts }
        let ranges = ParallelRows.ranges(rows, parts: min(threads, max(1, rows / ParallelRows.minimumAscentRows)))
        var single = self
        if ranges.count > 1 { single.rowParts = 1 }
        let seeds = (0..<rows).map { _ in rng.next() }
        var parts = ParallelRows.map(ranges.count) { p in
            AscentPart(
                single,
                starts: starts.rows(ranges[p]),
                tangential: Array(tangential[ranges[p]]),
                seeds: Array(seeds[ranges[p]])
            )
        }
        for _ in 0..<steps {
            // Out of time: the points reached so far are still real points, certified by the caller.
            if let stopAt, ContinuousClock.now >= stopAt { break }
            if shouldStop() {
                throw IsosweepError(.cancelled, "the Lipschitz search stopped: the worker is shutting down")
            }
            let hopFrom = [false, true].map { kind in AscentPart.bestPoint(of: parts, tangential: kind) }
            parts.withUnsafeMutableBufferPointer { buffer in
                guard let base = buffer.baseAddress else { return }
                _ = ParallelRows.map(buffer.count) { p in base[p].step(single, hopFrom: hopFrom) }
            }
        }
        return Matrix(rows: rows, columns: inputDimension, storage: parts.flatMap(\.best.storage))
    }

    /// A Gaussian direction (tangent to the sphere at row i of `x` on tangential rows).
    func randomDirection(
        _ u: inout Matrix<Scalar>,
        at x: Matrix<Scalar>,
        row i: Int,
        tangential: Bool,
        rng: inout SeededGenerator
    ) {
        for j in 0..<u.columns { u[0, j] = Scalar(rng.nextGaussian()) }
        if tangential { u.projectRow(0, orthogonalTo: x, row: i) }
    }

    func copyRow(_ i: Int, from trial: Batch, into batch: inout Batch) {
        batch.points.copyRow(i, from: trial.points, row: i)
        batch.gradients.copyRow(i, from: trial.gradients, row: i)
        batch.curvatures.copyRow(i, from: trial.curvatures, row: i)
        batch.values[i] = trial.values[i]
    }
}
