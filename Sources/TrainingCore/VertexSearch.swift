/// The support of hypercube data is the set of the cube's vertices, so the constant the law
/// bounds there is max |f(x) - f(y)| / ||x - y|| over pairs of vertices: a gradient norm at a
/// vertex is not one of these quotients (the function between vertices is not on the support).
/// The search takes quotients between real vertex pairs only:
/// - every probed vertex against its flip along the coordinate the gradient favours most;
/// - the best vertices against all their single-coordinate flips (the 64 most promising
///   coordinates when d is larger), and against multi-coordinate flips: flipping coordinate i
///   changes f by about c_i = -2 x_i g_i, so flipping the m coordinates with the largest c_i
///   (or the most negative) gives the largest first-order quotient sum / (2 v sqrt(m)) for that m;
///   m runs over powers of two;
/// - a few rounds restarted from the best partners found (a greedy walk on the cube).
extension GradientSearch {
    /// Single-coordinate flips tried from each of the best vertices.
    static let vertexFlipCoordinates = 64
    /// Rounds of restarting from the best partners, and how many partners restart.
    static let vertexRounds = 3
    static let vertexRestarts = 16

    /// Quotients between the rows of `vertices` (points of {-v, v}^d) and vertices near them;
    /// the best `starts` of them are explored further.
    mutating func vertexQuotients(_ vertices: Matrix<Double>, starts: Int) {
        guard vertices.rows > 0, vertices.columns > 0 else { return }
        // One flip per vertex, along the most favoured coordinate.
        var gains: [Double] = []  // per vertex, the first-order gain of its flip
        var partners = Matrix<Double>(rows: vertices.rows, columns: vertices.columns)
        var start = 0
        while start < vertices.rows {
            let end = min(vertices.rows, start + batchRows)
            let g = network.evaluate(vertices.rows(start..<end)).gradients
            for i in start..<end {
                var best = (gain: -1.0, coordinate: 0)
                for j in 0..<vertices.columns {
                    let gain = abs(2 * vertices[i, j] * g[i - start, j])
                    if gain > best.gain { best = (gain, j) }
                }
                for j in 0..<vertices.columns { partners[i, j] = vertices[i, j] }
                partners[i, best.coordinate] = -vertices[i, best.coordinate]
                gains.append(best.gain)
            }
            start = end
        }
        let quotients = pairQuotients(vertices, partners)
        // The most promising vertices: by the quotient found, then by first-order gain.
        let order = gains.indices.sorted {
            (quotients[$0], gains[$0]) > (quotients[$1], gains[$1])
        }
        var current = Matrix<Double>(
            rows: min(starts, order.count),
            columns: vertices.columns,
            storage: order.prefix(starts).flatMap { vertices.row($0) }
        )
        for _ in 0..<Self.vertexRounds {
            guard current.rows > 0 else { break }
            let best = exploreVertices(current)
            current = best
        }
    }

    /// Quotients from each row of `x` to its single and multi-coordinate flips; returns the
    /// partners of the best quotients (up to `vertexRestarts`) for the next round. The partners
    /// of one vertex are evaluated together, so memory stays at a few dozen rows.
    private mutating func exploreVertices(_ x: Matrix<Double>) -> Matrix<Double> {
        let d = x.columns
        let (outputs, g, _) = network.evaluate(x)
        var found: [(quotient: Double, partner: [Double])] = []
        for i in 0..<x.rows {
            let point = x.row(i)
            // c_j: the first-order change of f when coordinate j flips.
            let change = (0..<d).map { -2 * point[$0] * g[i, $0] }
            var candidates: [[Int]] = []
            let byMagnitude = (0..<d).sorted { abs(change[$0]) > abs(change[$1]) }
            for j in byMagnitude.prefix(Self.vertexFlipCoordinates) { candidates.append([j]) }
            for sign in [1.0, -1.0] {
                let favoured = (0..<d).filter { sign * change[$0] > 0 }.sorted { sign * change[$0] > sign * change[$1] }
                var m = 2
                while m <= favoured.count {
                    candidates.append(Array(favoured.prefix(m)))
                    if m == favoured.count { break }
                    m = min(2 * m, favoured.count)
                }
            }
            var partners = Matrix<Double>(rows: candidates.count, columns: d)
            for (r, flips) in candidates.enumerated() {
                for j in 0..<d { partners[r, j] = point[j] }
                for j in flips { partners[r, j] = -point[j] }
            }
            let from = Matrix(
                rows: candidates.count,
                columns: d,
                storage: Array(repeating: point, count: candidates.count).flatMap { $0 }
            )
            let quotients = pairQuotients(
                from,
                partners,
                fromOutputs: Array(repeating: outputs[i], count: candidates.count)
            )
            for r in quotients.indices { found.append((quotients[r], partners.row(r))) }
            if found.count > 4 * Self.vertexRestarts {
                found.sort { $0.quotient > $1.quotient }
                found.removeLast(found.count - Self.vertexRestarts)
            }
        }
        found.sort { $0.quotient > $1.quotient }
        let best = found.prefix(Self.vertexRestarts)
        return Matrix(rows: best.count, columns: d, storage: best.flatMap(\.partner))
    }

    /// |f(x_i) - f(y_i)| / ||x_i - y_i|| for each pair of rows, recorded in `bestVertex` (and
    /// `bestFree`: a quotient between real points bounds the constant on R^d as well). f(x_i) is
    /// computed unless given.
    mutating func pairQuotients(_ x: Matrix<Double>, _ y: Matrix<Double>, fromOutputs: [Double]? = nil) -> [Double] {
        precondition(x.rows == y.rows && x.columns == y.columns)
        var quotients = [Double](repeating: 0, count: x.rows)
        var start = 0
        while start < x.rows {
            let end = min(x.rows, start + batchRows)
            let fx = fromOutputs.map { Array($0[start..<end]) } ?? network.outputs(x.rows(start..<end))
            let fy = network.outputs(y.rows(start..<end))
            for i in start..<end {
                var distance = 0.0
                for j in 0..<x.columns { distance += (x[i, j] - y[i, j]) * (x[i, j] - y[i, j]) }
                guard distance > 0 else { continue }
                let quotient = abs(fx[i - start] - fy[i - start]) / distance.squareRoot()
                guard quotient.isFinite else { continue }
                quotients[i] = quotient
                bestVertex = max(bestVertex, quotient)
                bestFree = max(bestFree, quotient)
            }
            start = end
        }
        return quotients
    }
}

extension Matrix {
    /// This matrix with the rows of `other` below it.
    func appendingRows(_ other: Matrix) -> Matrix {
        precondition(other.columns == columns)
        return Matrix(rows: rows + other.rows, columns: columns, storage: storage + other.storage)
    }
}
