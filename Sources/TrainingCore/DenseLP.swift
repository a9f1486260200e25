/// A small dense linear program, solved by the two-phase simplex method with Bland's rule (no
/// cycling): maximise c . y subject to A y <= b and y >= 0. For the tens of constraints and
/// variables of the exact Lipschitz search; not for large problems.
struct DenseLP {
    /// What solving found.
    enum Outcome: Equatable {
        case optimal(value: Double, y: [Double])
        case infeasible
        case unbounded
    }

    /// Pivots before giving up (Bland's rule terminates; this only guards against rounding).
    static let pivotLimit = 10_000
    static let tolerance = 1e-11

    /// Solves max c . y, A y <= b, y >= 0 (A given by rows).
    static func maximize(_ c: [Double], _ a: [[Double]], _ b: [Double]) -> Outcome {
        let m = a.count
        let n = c.count
        // Columns: n variables, m slacks, then one artificial per row with b < 0; last: the RHS.
        let negative = (0..<m).filter { b[$0] < 0 }
        let width = n + m + negative.count + 1
        var tableau = [[Double]](repeating: [Double](repeating: 0, count: width), count: m)
        var basis = [Int](repeating: 0, count: m)
        var artificial = n + m
        for i in 0..<m {
            let sign = b[i] < 0 ? -1.0 : 1.0
            for j in 0..<n { tableau[i][j] = sign * a[i][j] }
            tableau[i][n + i] = sign
            tableau[i][width - 1] = sign * b[i]
            if b[i] < 0 {
                tableau[i][artificial] = 1
                basis[i] = artificial
                artificial += 1
            } else {
                basis[i] = n + i
            }
        }
        // Phase 1: minimise the sum of the artificials (maximise its negative).
        if !negative.isEmpty {
            var objective = [Double](repeating: 0, count: width)
            for column in (n + m)..<(width - 1) { objective[column] = -1 }
            guard case .optimal(let value) = run(&tableau, &basis, objective: objective, columns: width - 1)
            else { return .infeasible }
            if value < -1e-9 { return .infeasible }
            // Artificials still basic at zero are pivoted out where possible.
            for i in 0..<m where basis[i] >= n + m {
                if let j = (0..<(n + m)).first(where: { abs(tableau[i][$0]) > Self.tolerance }) {
                    pivot(&tableau, &basis, row: i, column: j)
                }
            }
        }
        // Phase 2 on the original columns only.
        var objective = [Double](repeating: 0, count: width)
        for j in 0..<n { objective[j] = c[j] }
        switch run(&tableau, &basis, objective: objective, columns: n + m) {
        case .unbounded: return .unbounded
        case .optimal(let value):
            var y = [Double](repeating: 0, count: n)
            for i in 0..<m where basis[i] < n { y[basis[i]] = tableau[i][width - 1] }
            return .optimal(value: value, y: y)
        }
    }

    private enum Run {
        case optimal(Double)
        case unbounded
    }

    /// Simplex iterations maximising `objective` over the first `columns` columns.
    private static func run(_ t: inout [[Double]], _ basis: inout [Int], objective: [Double], columns: Int) -> Run {
        let rhs = t.isEmpty ? 0 : t[0].count - 1
        for _ in 0..<pivotLimit {
            // Reduced costs: c_j - c_B . column j.
            var entering: Int?
            for j in 0..<columns where !basis.contains(j) {
                var reduced = objective[j]
                for i in t.indices { reduced -= objective[basis[i]] * t[i][j] }
                if reduced > Self.tolerance {
                    entering = j
                    break  // Bland: the lowest index that improves
                }
            }
            guard let column = entering else {
                var value = 0.0
                for i in t.indices { value += objective[basis[i]] * t[i][rhs] }
                return .optimal(value)
            }
            var leaving: Int?
            var ratio = Double.infinity
            for i in t.indices where t[i][column] > Self.tolerance {
                let r = t[i][rhs] / t[i][column]
                if r < ratio - Self.tolerance || (abs(r - ratio) <= Self.tolerance && basis[i] < basis[leaving!]) {
                    ratio = r
                    leaving = i
                }
            }
            guard let row = leaving else { return .unbounded }
            pivot(&t, &basis, row: row, column: column)
        }
        var value = 0.0
        for i in t.indices { value += objective[basis[i]] * t[i][rhs] }
        return .optimal(value)
    }

    private static func pivot(_ t: inout [[Double]], _ basis: inout [Int], row: Int, column: Int) {
        let p = t[row][column]
        for j in t[row].indices { t[row][j] /= p }
        for i in t.indices where i != row && t[i][column] != 0 {
            let factor = t[i][column]
            for j in t[i].indices { t[i][j] -= factor * t[row][j] }
        }
        basis[row] = column
    }
}
