import CKernels

/// A lower bound on the Lipschitz constant from far away: along a ray x = R u, for large R, a
/// ReLU-like unit is active exactly when w_j . u > 0, so the gradient tends to
/// g(u) = sum over { j : w_j . u > 0 } of a_j w_j. The regions that reach infinity are cones, and
/// a constant attained in one of them can lie far from every training or fresh point, where a
/// search near the data never looks.
///
/// Directions come from random draws, the units' own directions (both signs) and the gradients
/// found (u <- g(u) / ||g(u)||, a few times). The value reported is not g(u) but the network's
/// true gradient norm at a real point R u far enough out, so it is a certified lower bound
/// whatever the activation (for tanh, whose slopes vanish far away, it is small and harmless).
extension Lipschitz {
    /// Random directions tried, units' directions at most (both signs each), and refinements.
    static let rayDirections = 256
    static let rayUnitDirections = 256
    static let rayRefinements = 8
    /// Directions certified at real points.
    static let rayCertified = 16

    /// The largest gradient norm found far out along rays (a certified lower bound), and the
    /// point. Zero for activations whose slopes vanish far out (tanh), where rays find nothing.
    /// With `threads` above 1 the directions are split over that many threads (each direction is
    /// refined alone, so the result does not depend on the split); BLAS should then be
    /// single-threaded (`LipschitzOptions.threads`).
    public static func rayLowerBound(
        _ network: Network<Double>,
        seed: UInt64,
        threads: Int = 1
    ) -> (value: Double, point: [Double]) {
        let d = network.inputDimension
        let k = network.width
        let w = network.weights
        let a = network.outputWeights
        let b = network.biases
        guard d > 0, k > 0, network.activation.hasSlopesAtInfinity else { return (0, []) }
        var rng = SeededGenerator(seed: seed, stream: .probes)
        func normalised(_ v: [Double]) -> [Double]? {
            let n = v.reduce(0) { $0 + $1 * $1 }.squareRoot()
            return n > 0 && n.isFinite ? v.map { $0 / n } : nil
        }
        // Starts: the directions of the units that weigh most (|a_j| ||w_j||), both signs, and
        // random directions.
        let rowNorms = (0..<k).map { j in (0..<d).reduce(0.0) { $0 + w[j, $1] * w[j, $1] }.squareRoot() }
        let units = (0..<k).sorted { abs(a[$0]) * rowNorms[$0] > abs(a[$1]) * rowNorms[$1] }
        var starts: [Double] = []
        for j in units.prefix(rayUnitDirections) {
            if let u = normalised(w.row(j)) {
                starts.append(contentsOf: u)
                starts.append(contentsOf: u.map { -$0 })
            }
        }
        for _ in 0..<rayDirections {
            if let u = normalised((0..<d).map { _ in rng.nextGaussian() }) { starts.append(contentsOf: u) }
        }
        // Refine every start towards its own asymptotic gradient, all at once and in float32
        // (the directions only steer; the value is certified below in float64):
        // g(u) = W^T (a * [W u > 0]), two SGEMMs per round.
        let single = w.converted(to: Float.self)
        let singleA = a.map { Float($0) }
        let all = Matrix(rows: starts.count / d, columns: d, storage: starts.map { Float($0) })
        let ranges = ParallelRows.ranges(all.rows, parts: threads)
        let best = ParallelRows.map(ranges.count) { p in
            refineRays(all.rows(ranges[p]), weights: single, outputWeights: singleA, split: ranges.count == 1)
        }.flatMap { $0 }
        let found = best.filter { !$0.u.isEmpty }.sorted { $0.norm > $1.norm }.map { candidate in
            (norm: Double(candidate.norm), u: candidate.u.map { Double($0) })
        }
        // Certify the best directions at real points: far enough that every unit whose
        // direction is not orthogonal to u has the sign it has at infinity.
        var points: [Double] = []
        for candidate in found.prefix(rayCertified) {
            var radius = 1.0
            for j in 0..<k {
                var dot = 0.0
                for i in 0..<d { dot += w[j, i] * candidate.u[i] }
                if abs(dot) > 1e-12 { radius = max(radius, 10 * abs(b[j]) / abs(dot)) }
            }
            radius = min(radius, 1e8)
            points.append(contentsOf: candidate.u.map { radius * $0 })
        }
        guard !points.isEmpty else { return (0, [Double](repeating: 0, count: d)) }
        let x = Matrix(rows: points.count / d, columns: d, storage: points)
        let g = network.evaluate(x).gradients
        var result = (value: 0.0, point: [Double](repeating: 0, count: d))
        for i in 0..<x.rows {
            let value = g.row(i).norm
            if value > result.value && value.isFinite { result = (value, x.row(i)) }
        }
        return result
    }
    /// Refines every row of `directions` towards its own asymptotic gradient (`rayRefinements`
    /// rounds) and returns, for each, the largest asymptotic gradient norm seen and where.
    static func refineRays(
        _ directions: Matrix<Float>,
        weights single: Matrix<Float>,
        outputWeights singleA: [Float],
        split: Bool
    ) -> [(norm: Float, u: [Float])] {
        let k = single.rows
        let d = single.columns
        var u = directions
        var best = [(norm: Float, u: [Float])](repeating: (0, []), count: u.rows)
        let zeros = [Float](repeating: 0, count: k)
        for _ in 0...rayRefinements {
            var mask = BLAS.multiply(u, single, transposeB: true)  // rows x k: W u
            // a_j [(W u)_j > 0], in place: the ascent's relu pass with zero biases.
            mask.storage.withUnsafeMutableBufferPointer { maskBuffer in
                singleA.withUnsafeBufferPointer { aBuffer in
                    zeros.withUnsafeBufferPointer { zeroBuffer in
                        guard k > 0, let m = maskBuffer.baseAddress, let a = aBuffer.baseAddress,
                            let b = zeroBuffer.baseAddress
                        else { return }
                        let rows = maskBuffer.count / k
                        ParallelRows.forEach(rows, parts: split ? ParallelRows.parts(rows) : 1) { range in
                            guard !range.isEmpty else { return }
                            let row = m + range.lowerBound * k
                            isosweep_relu_slopes_rows(bestKernelVariant, Int64(range.count), Int64(k), row, row, b, a)
                        }
                    }
                }
            }
            let g = BLAS.multiply(mask, single)  // rows x d
            var next = u
            for i in 0..<u.rows {
                var squares: Float = 0
                for c in 0..<d { squares += g[i, c] * g[i, c] }
                let norm = squares.squareRoot()
                if norm > best[i].norm { best[i] = (norm, u.row(i)) }
                guard norm > 0, norm.isFinite else { continue }
                for c in 0..<d { next[i, c] = g[i, c] / norm }
            }
            u = next
        }
        return best
    }
}

extension ActivationKind {
    /// Whether psi' tends to constants that are not both zero far out (relu, softplus), so that
    /// rays reach regions of large gradient; tanh's slopes vanish there.
    var hasSlopesAtInfinity: Bool {
        switch self {
        case .relu, .softplus: true
        case .tanh: false
        }
    }
}
