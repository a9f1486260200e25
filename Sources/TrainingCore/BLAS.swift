import COpenBLAS
import Diagnostics
import Foundation
public import RealModule

/// A floating-point type with BLAS kernels: `Float` for training (SGEMM), `Double` for the
/// Lipschitz bounds and for checking gradients to tight tolerances.
public protocol BLASScalar: BinaryFloatingPoint, Real, Sendable {
    /// C = alpha op(A) op(B) + beta C, all row-major.
    static func gemm(
        transposeA: Bool,
        transposeB: Bool,
        m: Int,
        n: Int,
        k: Int,
        alpha: Self,
        a: UnsafePointer<Self>,
        lda: Int,
        b: UnsafePointer<Self>,
        ldb: Int,
        beta: Self,
        c: UnsafeMutablePointer<Self>,
        ldc: Int
    )
    /// Inner product of two contiguous vectors.
    static func dot(_ count: Int, _ x: UnsafePointer<Self>, _ y: UnsafePointer<Self>) -> Self
}

extension Float: BLASScalar {
    @inline(__always)
    public static func gemm(
        transposeA: Bool,
        transposeB: Bool,
        m: Int,
        n: Int,
        k: Int,
        alpha: Float,
        a: UnsafePointer<Float>,
        lda: Int,
        b: UnsafePointer<Float>,
        ldb: Int,
        beta: Float,
        c: UnsafeMutablePointer<Float>,
        ldc: Int
    ) {
        cblas_sgemm(
            CblasRowMajor,
            transposeA ? CblasTrans : CblasNoTrans,
            transposeB ? CblasTrans : CblasNoTrans,
            blasint(m),
            blasint(n),
            blasint(k),
            alpha,
            a,
            blasint(lda),
            b,
            blasint(ldb),
            beta,
            c,
            blasint(ldc)
        )
    }

    @inline(__always)
    public static func dot(_ count: Int, _ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>) -> Float {
        cblas_sdot(blasint(count), x, 1, y, 1)
    }
}

extension Double: BLASScalar {
    @inline(__always)
    public static func gemm(
        transposeA: Bool,
        transposeB: Bool,
        m: Int,
        n: Int,
        k: Int,
        alpha: Double,
        a: UnsafePointer<Double>,
        lda: Int,
        b: UnsafePointer<Double>,
        ldb: Int,
        beta: Double,
        c: UnsafeMutablePointer<Double>,
        ldc: Int
    ) {
        cblas_dgemm(
            CblasRowMajor,
            transposeA ? CblasTrans : CblasNoTrans,
            transposeB ? CblasTrans : CblasNoTrans,
            blasint(m),
            blasint(n),
            blasint(k),
            alpha,
            a,
            blasint(lda),
            b,
            blasint(ldb),
            beta,
            c,
            blasint(ldc)
        )
    }

    @inline(__always)
    public static func dot(_ count: Int, _ x: UnsafePointer<Double>, _ y: UnsafePointer<Double>) -> Double {
        cblas_ddot(blasint(count), x, 1, y, 1)
    }
}

/// OpenBLAS process-wide settings and facts, recorded in every result for provenance.
public enum BLAS {
    /// Sets how many threads OpenBLAS uses for each call (process-wide).
    public static func setThreads(_ count: Int) {
        openblas_set_num_threads(Int32(max(1, count)))
    }

    /// The number of threads OpenBLAS currently uses.
    public static var threads: Int { Int(openblas_get_num_threads()) }

    /// The kernels OpenBLAS runs in this process ("SkylakeX", "Prescott", ...): `blas_core`.
    public static var core: String { BLASKernel.loaded }

    /// How those kernels were chosen (`BLASKernel.Provenance`), from this process's environment.
    public static var coreProvenance: BLASKernel.Provenance {
        BLASKernel.provenance(environment: ProcessInfo.processInfo.environment, loaded: core)
    }

    /// OpenBLAS's build configuration, its kernels and how they were chosen, and its threads.
    public static var configuration: String {
        let config = openblas_get_config().map { String(cString: $0) } ?? "unknown"
        return "\(config.trimmingSpaces()) core=\(core) (\(coreProvenance.description)) threads=\(threads)"
    }

    /// SGEMM's speed on one thread, in GFLOP/s: the best of five 512 x 512 x 512 products (about
    /// a tenth of a second), what `isosweep plan` assumes a core does.
    public static func measuredSgemmGflops() -> Double {
        let saved = threads
        setThreads(1)
        defer { setThreads(saved) }
        let size = 512
        let a = Matrix<Float>(rows: size, columns: size, storage: (0..<(size * size)).map { Float($0 % 7) / 7 })
        let clock = ContinuousClock()
        var best = Double.infinity
        for _ in 0..<5 {
            let start = clock.now
            _ = multiply(a, a)
            best = min(best, (clock.now - start).seconds)
        }
        return 2 * Double(size * size * size) / best / 1e9
    }

    /// C = A B for row-major matrices.
    static func multiply<T: BLASScalar>(
        _ a: Matrix<T>,
        _ b: Matrix<T>,
        transposeA: Bool = false,
        transposeB: Bool = false
    ) -> Matrix<T> {
        let m = transposeA ? a.columns : a.rows
        let k = transposeA ? a.rows : a.columns
        let n = transposeB ? b.rows : b.columns
        precondition(k == (transposeB ? b.columns : b.rows), "inner dimensions differ")
        if m == 0 || n == 0 || k == 0 { return Matrix<T>(rows: m, columns: n) }
        // With beta 0 GEMM writes every element of C without reading it (BLAS's contract), so C
        // starts uninitialised: zeroing it first was a second pass over the result.
        let storage = [T](unsafeUninitializedCapacity: m * n) { pc, count in
            a.storage.withUnsafeBufferPointer { pa in
                b.storage.withUnsafeBufferPointer { pb in
                    T.gemm(
                        transposeA: transposeA,
                        transposeB: transposeB,
                        m: m,
                        n: n,
                        k: k,
                        alpha: 1,
                        a: pa.baseAddress!,
                        lda: a.columns,
                        b: pb.baseAddress!,
                        ldb: b.columns,
                        beta: 0,
                        c: pc.baseAddress!,
                        ldc: n
                    )
                }
            }
            count = m * n
        }
        return Matrix(rows: m, columns: n, storage: storage)
    }

    /// The largest singular value of a matrix (LAPACK dgesdd, values only).
    static func largestSingularValue(_ matrix: Matrix<Double>) throws(IsosweepError) -> Double {
        if matrix.rows == 0 || matrix.columns == 0 { return 0 }
        // Row-major A (r x c) is column-major A^T (c x r): same singular values, no copy needed.
        var m = Int32(matrix.columns)
        var n = Int32(matrix.rows)
        var lda = m
        var a = matrix.storage
        var s = [Double](repeating: 0, count: Int(min(m, n)))
        var one: Int32 = 1
        var oneVT: Int32 = 1
        var iwork = [Int32](repeating: 0, count: 8 * Int(min(m, n)))
        var info: Int32 = 0
        var jobz = Int8(UInt8(ascii: "N"))
        var dummyU = 0.0
        var dummyVT = 0.0
        var lwork: Int32 = -1
        var query = 0.0
        dgesdd_(&jobz, &m, &n, &a, &lda, &s, &dummyU, &one, &dummyVT, &oneVT, &query, &lwork, &iwork, &info, 1)
        lwork = Int32(query)
        var work = [Double](repeating: 0, count: max(1, Int(lwork)))
        dgesdd_(&jobz, &m, &n, &a, &lda, &s, &dummyU, &one, &dummyVT, &oneVT, &work, &lwork, &iwork, &info, 1)
        guard info == 0 else {
            throw IsosweepError(.numerical, "LAPACK dgesdd failed (info \(info)) computing ||W||_op")
        }
        return s.max() ?? 0
    }

    /// The minimum-norm least-squares solution of A x = b (LAPACK dgelsd), for row-major A.
    /// Singular values below `relativeCutoff` times the largest are treated as zero.
    static func minimumNormLeastSquares(
        _ matrix: Matrix<Double>,
        _ rhs: [Double],
        relativeCutoff: Double
    ) throws(IsosweepError) -> [Double] {
        precondition(rhs.count == matrix.rows)
        var m = Int32(matrix.rows)
        var n = Int32(matrix.columns)
        var nrhs: Int32 = 1
        // LAPACK is column-major: transpose the row-major storage once.
        var a = [Double](repeating: 0, count: matrix.rows * matrix.columns)
        for i in 0..<matrix.rows {
            for j in 0..<matrix.columns {
                a[j * matrix.rows + i] = matrix.storage[i * matrix.columns + j]
            }
        }
        var lda = max(1, m)
        var ldb = max(m, n, 1)
        var b = [Double](repeating: 0, count: Int(ldb))
        for i in 0..<rhs.count { b[i] = rhs[i] }
        var s = [Double](repeating: 0, count: Int(max(1, min(m, n))))
        var rcond = relativeCutoff
        var rank: Int32 = 0
        var info: Int32 = 0
        var lwork: Int32 = -1
        var query = 0.0
        var iworkQuery: Int32 = 0
        dgelsd_(&m, &n, &nrhs, &a, &lda, &b, &ldb, &s, &rcond, &rank, &query, &lwork, &iworkQuery, &info)
        guard info == 0 else { throw IsosweepError(.numerical, "LAPACK dgelsd workspace query failed (info \(info))") }
        lwork = Int32(query)
        var work = [Double](repeating: 0, count: max(1, Int(lwork)))
        var iwork = [Int32](repeating: 0, count: max(1, Int(iworkQuery)))
        dgelsd_(&m, &n, &nrhs, &a, &lda, &b, &ldb, &s, &rcond, &rank, &work, &lwork, &iwork, &info)
        guard info == 0 else {
            throw IsosweepError(
                .numerical,
                "LAPACK dgelsd did not converge (info \(info)) solving the random-features least squares"
            )
        }
        return Array(b[0..<Int(n)])
    }
}

extension String {
    func trimmingSpaces() -> String {
        var s = Substring(self)
        while let f = s.first, f == " " || f == "\n" { s.removeFirst() }
        while let l = s.last, l == " " || l == "\n" { s.removeLast() }
        return String(s)
    }
}
