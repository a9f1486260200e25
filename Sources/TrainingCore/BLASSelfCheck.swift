/// A check of the loaded GEMM kernels against a float64 reference, run once per process before
/// isosweep relies on kernels it chose itself (`BLASKernel.Plan.check`): SGEMM and DGEMM in
/// every transpose combination, with beta 0 and 1, at 1 and 2 threads, on shapes that cross the
/// kernels' register tiles (16 x 4 and 16 x 2 on SkylakeX, 8 x 4 on Haswell) and their M and K
/// cache blocks (M beyond 768, K beyond 768), the small-matrix paths, a long N loop, a product
/// large enough for OpenBLAS to thread (m n k > 262,144), and padded leading dimensions. The N
/// block (R, tens of thousands of columns) is not crossed: no GEMM of a cell's step comes near it.
/// About 2 million multiply-adds in all: milliseconds in a release build.
public enum BLASSelfCheck {
    /// A GEMM result outside its rounding bound.
    public struct Mismatch: Error, Sendable, Equatable, CustomStringConvertible {
        public var routine: String
        public var transposeA: Bool
        public var transposeB: Bool
        public var m: Int
        public var n: Int
        public var k: Int
        public var threads: Int
        /// The largest error found, in units of the element's rounding bound (> 1 fails).
        public var errorOverBound: Double

        public var description: String {
            let op = (transposeA ? "T" : "N") + (transposeB ? "T" : "N")
            let size = errorOverBound.isFinite ? "\(Int(errorOverBound.rounded(.up)))x" : "infinitely"
            return "\(routine) \(op) \(m)x\(n)x\(k) at \(threads) threads is \(size) outside its rounding bound"
        }
    }

    /// One product to check: op(A) is m x k, op(B) is k x n, leading dimensions padded by `pad`.
    struct Shape {
        var m: Int
        var n: Int
        var k: Int
        var pad: Int
        var beta: Double
    }

    static let shapes: [Shape] = [
        Shape(m: 1, n: 1, k: 1, pad: 0, beta: 0),
        Shape(m: 7, n: 3, k: 5, pad: 0, beta: 1),
        Shape(m: 16, n: 4, k: 32, pad: 0, beta: 0),
        Shape(m: 32, n: 2, k: 16, pad: 3, beta: 1),
        Shape(m: 33, n: 17, k: 65, pad: 0, beta: 0),
        Shape(m: 20, n: 4, k: 800, pad: 0, beta: 1),
        Shape(m: 1000, n: 3, k: 5, pad: 2, beta: 0),
        Shape(m: 2, n: 5000, k: 2, pad: 0, beta: 1),
        Shape(m: 100, n: 40, k: 70, pad: 5, beta: 0),
    ]

    /// Checks SGEMM and DGEMM at each thread count (the thread count is restored afterwards).
    /// `corrupt` alters one output element of the last SGEMM, as a broken kernel would
    /// (`BLASKernel.selfCheckVariable`).
    public static func run(threadCounts: [Int] = [1, 2], corrupt: Bool = false) -> Mismatch? {
        let saved = BLAS.threads
        defer { BLAS.setThreads(saved) }
        var generator = SeededGenerator(seed: 0, stream: .blasSelfCheck)
        for (index, shape) in shapes.enumerated() {
            for (transposeA, transposeB) in [(false, false), (false, true), (true, false), (true, true)] {
                let problem = Problem(shape, transposeA: transposeA, transposeB: transposeB, using: &generator)
                for threads in threadCounts {
                    BLAS.setThreads(threads)
                    let corruptHere =
                        corrupt && index == shapes.count - 1 && transposeA && transposeB && threads == threadCounts.last
                    if let mismatch = problem.checkDGEMM(threads: threads) { return mismatch }
                    if let mismatch = problem.checkSGEMM(threads: threads, corrupt: corruptHere) { return mismatch }
                }
            }
        }
        return nil
    }

    /// One shape and transpose combination: inputs, and their float64 reference computed once.
    /// The inputs are float32 values, so that SGEMM and DGEMM multiply the same numbers.
    struct Problem {
        var shape: Shape
        var transposeA: Bool
        var transposeB: Bool
        var lda: Int
        var ldb: Int
        var ldc: Int
        var a: [Double]
        var b: [Double]
        var c: [Double]
        /// C's reference value and its rounding bound's scale (|A||B| + |beta C|), per element.
        var exact: [Double]
        var magnitude: [Double]

        init(_ shape: Shape, transposeA: Bool, transposeB: Bool, using generator: inout SeededGenerator) {
            self.shape = shape
            self.transposeA = transposeA
            self.transposeB = transposeB
            let (m, n, k) = (shape.m, shape.n, shape.k)
            let (aRows, aColumns) = transposeA ? (k, m) : (m, k)
            let (bRows, bColumns) = transposeB ? (n, k) : (k, n)
            let (lda, ldb, ldc) = (aColumns + shape.pad, bColumns + shape.pad, n + shape.pad)
            (self.lda, self.ldb, self.ldc) = (lda, ldb, ldc)
            func random(_ count: Int) -> [Double] {
                (0..<count).map { _ in Double(Float(generator.nextUniform() * 2 - 1)) }
            }
            let a = random(aRows * lda)
            let b = random(bRows * ldb)
            let c = random(m * ldc)
            (self.a, self.b, self.c) = (a, b, c)
            var exact = [Double](repeating: 0, count: m * n)
            var magnitude = exact
            // Raw pointers: this loop is most of the check's time, and debug builds (the tests' cell
            // runners) check array indices element by element.
            a.withUnsafeBufferPointer { a in
                b.withUnsafeBufferPointer { b in
                    let (a, b) = (a.baseAddress!, b.baseAddress!)
                    let (strideAI, strideAP) = transposeA ? (1, lda) : (lda, 1)
                    let (strideBP, strideBJ) = transposeB ? (1, ldb) : (ldb, 1)
                    for i in 0..<m {
                        for j in 0..<n {
                            var sum = shape.beta * c[i * ldc + j]
                            var size = abs(sum)
                            var x = a + i * strideAI
                            var y = b + j * strideBJ
                            for _ in 0..<k {
                                let product = x.pointee * y.pointee
                                sum += product
                                size += abs(product)
                                x += strideAP
                                y += strideBP
                            }
                            exact[i * n + j] = sum
                            magnitude[i * n + j] = size
                        }
                    }
                }
            }
            self.exact = exact
            self.magnitude = magnitude
        }

        /// DGEMM on the problem against the reference; nil when every element is within its bound.
        func checkDGEMM(threads: Int) -> Mismatch? {
            var c = self.c
            multiply(a, b, &c)
            let worst = compare(c, corrupt: false, unit: Double.ulpOfOne / 2, tiny: Double.leastNormalMagnitude)
            return worst.map { mismatch("DGEMM", threads: threads, errorOverBound: $0) }
        }

        /// SGEMM likewise (the conversions are written out of generic code: debug builds, the tests'
        /// cell runners, would otherwise convert element by element through witness tables).
        func checkSGEMM(threads: Int, corrupt: Bool = false) -> Mismatch? {
            var c = self.c.map(Float.init)
            multiply(a.map(Float.init), b.map(Float.init), &c)
            let result = c.map(Double.init)
            let worst = compare(result, corrupt: corrupt, unit: Double(Float.ulpOfOne) / 2, tiny: 0x1p-126)
            return worst.map { mismatch("SGEMM", threads: threads, errorOverBound: $0) }
        }

        private func mismatch(_ routine: String, threads: Int, errorOverBound: Double) -> Mismatch {
            Mismatch(
                routine: routine,
                transposeA: transposeA,
                transposeB: transposeB,
                m: shape.m,
                n: shape.n,
                k: shape.k,
                threads: threads,
                errorOverBound: errorOverBound
            )
        }

        private func multiply<T: BLASScalar>(_ a: [T], _ b: [T], _ c: inout [T]) {
            a.withUnsafeBufferPointer { pa in
                b.withUnsafeBufferPointer { pb in
                    c.withUnsafeMutableBufferPointer { pc in
                        T.gemm(
                            transposeA: transposeA,
                            transposeB: transposeB,
                            m: shape.m,
                            n: shape.n,
                            k: shape.k,
                            alpha: 1,
                            a: pa.baseAddress!,
                            lda: lda,
                            b: pb.baseAddress!,
                            ldb: ldb,
                            beta: T(shape.beta),
                            c: pc.baseAddress!,
                            ldc: ldc
                        )
                    }
                }
            }
        }

        /// The worst error over its bound, or nil if none exceeds it. Any order of k products and
        /// sums errs by at most gamma_(k+1) (|A||B| + |beta C|) (Higham, Accuracy and Stability of
        /// Numerical Algorithms, 3.5); twice that covers the reference's own rounding for DGEMM.
        private func compare(_ result: [Double], corrupt: Bool, unit: Double, tiny: Double) -> Double? {
            var result = result
            let (m, n, k) = (shape.m, shape.n, shape.k)
            if corrupt { result[(m / 2) * ldc + n / 2] += 1 }
            let gamma = Double(k + 2) * unit / (1 - Double(k + 2) * unit)
            var worst = 0.0
            for i in 0..<m {
                for j in 0..<n {
                    let error = abs(result[i * ldc + j] - exact[i * n + j])
                    let bound = 2 * gamma * magnitude[i * n + j] + tiny
                    // NaN fails too: `!(error <= bound)`.
                    if !(error <= bound) { worst = max(worst, error.isNaN ? .infinity : error / bound) }
                }
                // Padding past each row's n columns must be untouched.
                for j in n..<ldc where result[i * ldc + j] != c[i * ldc + j] { worst = .infinity }
            }
            return worst > 0 ? worst : nil
        }
    }
}
