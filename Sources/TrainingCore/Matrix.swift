/// A dense row-major matrix: the layout every BLAS call of the core uses, so no call copies.
public struct Matrix<Scalar: BLASScalar>: Sendable, Equatable {
    /// Number of rows.
    public let rows: Int
    /// Number of columns.
    public let columns: Int
    /// Entries, row after row.
    public var storage: [Scalar]

    /// A matrix of zeros.
    public init(rows: Int, columns: Int) {
        precondition(rows >= 0 && columns >= 0, "matrix dimensions must be non-negative")
        self.rows = rows
        self.columns = columns
        self.storage = [Scalar](repeating: 0, count: rows * columns)
    }

    /// A matrix over the given row-major entries.
    /// A matrix whose every element the caller writes before reading any (a whole-matrix pass
    /// or a GEMM with beta 0): zeroing it first would be a second pass over memory.
    init(uninitialisedRows rows: Int, columns: Int) {
        precondition(rows >= 0 && columns >= 0, "matrix dimensions must be non-negative")
        self.rows = rows
        self.columns = columns
        self.storage = [Scalar](unsafeUninitializedCapacity: rows * columns) { _, count in count = rows * columns }
    }

    public init(rows: Int, columns: Int, storage: [Scalar]) {
        precondition(storage.count == rows * columns, "storage has \(storage.count) entries, not \(rows)x\(columns)")
        self.rows = rows
        self.columns = columns
        self.storage = storage
    }

    /// The entry at (row, column).
    public subscript(row: Int, column: Int) -> Scalar {
        get { storage[row * columns + column] }
        set { storage[row * columns + column] = newValue }
    }

    /// A copy of one row.
    public func row(_ index: Int) -> [Scalar] {
        Array(storage[(index * columns)..<((index + 1) * columns)])
    }

    /// The same matrix in another precision.
    public func converted<Other: BLASScalar>(to: Other.Type = Other.self) -> Matrix<Other> {
        Matrix<Other>(rows: rows, columns: columns, storage: storage.map { Other($0) })
    }

    /// The rows in `range` as a new matrix.
    public func rows(_ range: Range<Int>) -> Matrix {
        Matrix(
            rows: range.count,
            columns: columns,
            storage: Array(storage[(range.lowerBound * columns)..<(range.upperBound * columns)])
        )
    }
}

extension Matrix {
    /// Scales row i to unit Euclidean norm (a zero row stays as it is).
    mutating func normaliseRow(_ i: Int) {
        var squares: Scalar = 0
        for j in 0..<columns { squares += self[i, j] * self[i, j] }
        let length = squares.squareRoot()
        guard length > 0 else { return }
        for j in 0..<columns { self[i, j] /= length }
    }

    /// Removes from row i its component along row `j` of `x` (a zero row of `x` removes nothing).
    mutating func projectRow(_ i: Int, orthogonalTo x: Matrix, row j: Int) {
        var xx: Scalar = 0
        var mx: Scalar = 0
        for c in 0..<columns {
            xx += x[j, c] * x[j, c]
            mx += self[i, c] * x[j, c]
        }
        guard xx > 0 else { return }
        for c in 0..<columns { self[i, c] -= mx / xx * x[j, c] }
    }

    /// The norm of row i or, given `x`, of its component orthogonal to row i of `x`:
    /// sqrt(|g|^2 - <g,x>^2 / |x|^2) (|g| when that row of `x` is zero). NaN when row i is not
    /// finite: max(0, NaN) would make it 0, and nothing must take it for a value.
    func rowNorm(_ i: Int, orthogonalTo x: Matrix? = nil) -> Scalar {
        var gg: Scalar = 0
        var gx: Scalar = 0
        var xx: Scalar = 0
        for j in 0..<columns {
            gg += self[i, j] * self[i, j]
            if let x {
                gx += self[i, j] * x[i, j]
                xx += x[i, j] * x[i, j]
            }
        }
        guard gg.isFinite else { return .nan }
        guard x != nil, xx > 0 else { return gg.squareRoot() }
        return max(0, gg - gx * gx / xx).squareRoot()
    }

    /// The rows at `indices`, in that order, as a new matrix.
    func gathering(rows indices: [Int]) -> Matrix {
        var result = Matrix(rows: indices.count, columns: columns)
        for (r, i) in indices.enumerated() {
            result.storage.replaceSubrange(
                (r * columns)..<((r + 1) * columns),
                with: storage[(i * columns)..<((i + 1) * columns)]
            )
        }
        return result
    }

    /// Overwrites row i with row j of `other`.
    mutating func copyRow(_ i: Int, from other: Matrix, row j: Int) {
        storage.replaceSubrange(
            (i * columns)..<((i + 1) * columns),
            with: other.storage[(j * columns)..<((j + 1) * columns)]
        )
    }
}
