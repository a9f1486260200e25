public import Diagnostics

/// Certified upper bounds on the Lipschitz constant of f(x) = a . psi(W x + b) + c on R^d, for an
/// activation whose derivative lies in [0, 1] (relu, tanh and softplus all do).
///
/// The gradient is W^T (a * s) with s = psi'(W x + b) in [0, 1]^k. Writing s = 1/2 + t/2 with t in
/// [-1, 1]^k gives grad f = W^T a / 2 + W^T (a * t) / 2, so
///
///     Lip(f) <= ||W^T a|| / 2 + (1/2) max over t in [-1, 1]^k of ||W^T (a * t)||,
///
/// and the maximum is at most each of
/// - ||W||_op ||a||  (since ||a * t|| <= ||a||),
/// - sum_j |a_j| ||w_j||  (the triangle inequality over the rows w_j of W),
/// - sqrt(sum_j a_j^2 / q_j) sqrt(lambda_max(W^T diag(q) W)) for any q > 0 (write
///   W^T (a * t) = (diag(sqrt q) W)^T ((a * t) / sqrt q) and bound both factors).
/// Rows with a_j = 0 contribute nothing and are left out of the last one.
public struct UpperBounds: Sendable, Equatable {
    /// ||W||_op ||a||_2: the product bound (any 1-Lipschitz activation).
    public var product: Double
    /// sum_j |a_j| ||w_j||: the path bound (any 1-Lipschitz activation).
    public var path: Double
    /// The centred bound with the best second term (activations with psi' in [0, 1]).
    public var centred: Double

    /// The smallest of the three: what `lip_upper` reports.
    public var best: Double { min(product, path, centred) }
}

extension Lipschitz {
    /// Multiplicative updates of q after the first choices (each gives a valid bound; the
    /// smallest is kept).
    static let weightUpdates = 3

    /// The product, path and centred upper bounds of `network`, each with a relative margin for
    /// the rounding of its computation. The centred bound's q is tried as 1, |a_j|, |a_j| / ||w_j||,
    /// then refined from the best by q_j <- sqrt(q_j |a_j| / |w_j . v|), v the top eigenvector of
    /// W^T diag(q) W (the fixed point of minimising the bound over q).
    public static func upperBounds(_ network: Network<Double>) throws(IsosweepError) -> UpperBounds {
        let w = network.weights
        let a = network.outputWeights
        let k = network.width
        let d = network.inputDimension
        let (product, path, rowNorms) = try productAndPath(network)
        var centre = [Double](repeating: 0, count: d)  // W^T a
        for j in 0..<k { for i in 0..<d { centre[i] += a[j] * w[j, i] } }
        let margin = 1 + upperBoundMargin
        guard network.activation.slopeWithinUnitInterval else {
            return UpperBounds(product: product * margin, path: path * margin, centred: .infinity)
        }
        let centreNorm = centre.reduce(0) { $0 + $1 * $1 }.squareRoot()
        var second = min(product, path)
        let live = (0..<k).filter { a[$0] != 0 }
        var candidates: [[Double]] = [
            live.map { abs(a[$0]) },
            live.map { abs(a[$0]) / max(rowNorms[$0], .leastNormalMagnitude) },
        ]
        var best: (value: Double, q: [Double])?
        var updates = 0
        while let q = candidates.popLast() {
            let value = try weightedBound(w, a: a, rows: live, q: q)
            if value < second { second = value }
            if best == nil || value < best!.value { best = (value, q) }
            if candidates.isEmpty && updates < weightUpdates, let current = best {
                updates += 1
                candidates.append(refined(w, a: a, rows: live, q: current.q))
            }
        }
        let centred = centreNorm / 2 + second / 2
        return UpperBounds(product: product * margin, path: path * margin, centred: centred * margin)
    }

    /// sqrt(sum a_j^2 / q_j) sqrt(lambda_max(W^T diag(q) W)) over `rows` (q given for those rows).
    static func weightedBound(
        _ w: Matrix<Double>,
        a: [Double],
        rows: [Int],
        q: [Double]
    ) throws(IsosweepError)
        -> Double
    {
        guard !rows.isEmpty else { return 0 }
        var scaled = Matrix<Double>(rows: rows.count, columns: w.columns)
        var weightedSquares = 0.0
        for (r, j) in rows.enumerated() {
            let qj = max(q[r], .leastNormalMagnitude)
            weightedSquares += a[j] * a[j] / qj
            let root = qj.squareRoot()
            for i in 0..<w.columns { scaled[r, i] = root * w[j, i] }
        }
        // lambda_max(W^T diag(q) W) = sigma_max(diag(sqrt q) W)^2.
        return weightedSquares.squareRoot() * (try BLAS.largestSingularValue(scaled))
    }

    /// One multiplicative update of q towards the minimiser of the weighted bound.
    static func refined(_ w: Matrix<Double>, a: [Double], rows: [Int], q: [Double]) -> [Double] {
        // The top eigenvector of W^T diag(q) W by power iteration (it only guides the update).
        let d = w.columns
        var v = [Double](repeating: 1 / Double(max(1, d)).squareRoot(), count: d)
        var projections = [Double](repeating: 0, count: rows.count)
        var next = [Double](repeating: 0, count: d)
        for _ in 0..<50 {
            // On raw pointers (subscripts check bounds an element), in the same order of operations.
            w.storage.withUnsafeBufferPointer { wBuffer in
                v.withUnsafeBufferPointer { vBuffer in
                    next.withUnsafeMutableBufferPointer { nextBuffer in
                        guard d > 0, let ws = wBuffer.baseAddress, let vs = vBuffer.baseAddress,
                            let ns = nextBuffer.baseAddress
                        else { return }
                        for i in 0..<d { ns[i] = 0 }
                        for (r, j) in rows.enumerated() {
                            let row = ws + j * d
                            var dot = 0.0
                            for i in 0..<d { dot += row[i] * vs[i] }
                            projections[r] = dot
                            let scale = q[r] * dot
                            for i in 0..<d { ns[i] += scale * row[i] }
                        }
                    }
                }
            }
            let norm = next.reduce(0) { $0 + $1 * $1 }.squareRoot()
            guard norm > 0 else { break }
            v = next.map { $0 / norm }
        }
        return rows.indices.map { r in
            let target = abs(a[rows[r]]) / max(abs(projections[r]), 1e-12 * abs(a[rows[r]]) + .leastNormalMagnitude)
            return (q[r] * target).squareRoot()
        }
    }
}

extension ActivationKind {
    /// Whether psi' lies in [0, 1] everywhere, as the centred upper bound needs (relu: 0 or 1;
    /// tanh: 1 - tanh^2 in (0, 1]; softplus: the logistic function in (0, 1)).
    public var slopeWithinUnitInterval: Bool {
        switch self {
        case .relu, .tanh, .softplus: true
        }
    }
}
