import CKernels

/// How a training step splits the n rows of its data: `parts` contiguous ranges, one per thread,
/// each processed in blocks of `blockRows` rows (Z_block = X_block W^T, the row pass while the
/// block is in cache, dW += Delta_block^T X_block). The split depends only on n, the thread count
/// and the block size, and partial sums are added in part order, so a step at a given thread
/// count gives the same bits run after run.
struct RowPartition: Sendable {
    /// Rows per block: a block of the hidden matrix (blockRows x k floats, 512 KB at width 1000)
    /// stays in L2 between its GEMM and its pass, where the whole n x k matrix made a round trip
    /// through memory; larger blocks gain nothing in GEMM speed.
    static let preferredBlockRows = 128

    let rows: Int
    let parts: Int
    let blockRows: Int

    init(rows n: Int, threads: Int, blockRows preferred: Int = preferredBlockRows) {
        rows = n
        parts = max(1, min(threads, n))
        blockRows = max(1, min(preferred, n / parts))
    }

    /// The rows of part `part` (`ParallelRows.ranges`' split).
    func range(_ part: Int) -> Range<Int> { (part * rows / parts)..<((part + 1) * rows / parts) }

    /// Runs `body(part)` for every part, concurrently when there are several (`ParallelRows.map`:
    /// threads of its own), with OpenBLAS at one thread meanwhile: each part's GEMMs are
    /// single-threaded, which on these skinny shapes scales better than OpenBLAS's own threading of
    /// whole-matrix GEMMs. The thread count is restored before returning, so the cell's setting
    /// stays the number of threads its steps use.
    func run(_ body: (Int) -> Void) {
        if parts == 1 {
            body(0)
            return
        }
        let saved = BLAS.threads
        BLAS.setThreads(1)
        _ = ParallelRows.map(parts, body)
        BLAS.setThreads(saved)
    }
}

/// The instruction-set variant of `CKernels` the float32 step uses: the best this processor runs.
let bestKernelVariant = isosweep_best_isa()

/// The `CKernels` number of an activation.
extension ActivationKind {
    var kernelIndex: Int32 {
        switch self {
        case .relu: ReLUKernel.kernelIndex
        case .tanh: TanhKernel.kernelIndex
        case .softplus: SoftplusKernel.kernelIndex
        }
    }
}

extension ActivationKernel {
    static var kernelIndex: Int32 {
        if self == ReLUKernel.self { return Int32(ISOSWEEP_RELU) }
        if self == TanhKernel.self { return Int32(ISOSWEEP_TANH) }
        return Int32(ISOSWEEP_SOFTPLUS)
    }
}

extension UnsafeMutablePointer {
    /// This pointer as a `Float` (`Double`) one, for `CKernels` (only where Pointee is Float (Double)).
    @inline(__always) var asFloat: UnsafeMutablePointer<Float> {
        UnsafeMutableRawPointer(self).assumingMemoryBound(to: Float.self)
    }
    @inline(__always) var asDouble: UnsafeMutablePointer<Double> {
        UnsafeMutableRawPointer(self).assumingMemoryBound(to: Double.self)
    }
}

extension UnsafePointer {
    @inline(__always) var asFloat: UnsafePointer<Float> { UnsafeRawPointer(self).assumingMemoryBound(to: Float.self) }
    @inline(__always) var asDouble: UnsafePointer<Double> {
        UnsafeRawPointer(self).assumingMemoryBound(to: Double.self)
    }
}

/// The elementwise functions of one `CKernels` variant over arrays, for testing each variant
/// against `FastMath` (the step itself calls the row passes).
enum KernelVariant {
    /// The variants this processor runs, baseline first.
    static var supported: [Int32] {
        [ISOSWEEP_ISA_BASELINE, ISOSWEEP_ISA_AVX2, ISOSWEEP_ISA_AVX512].map { Int32($0) }
            .filter { isosweep_isa_supported($0) != 0 }
    }

    static func tanh(_ variant: Int32, _ x: [Float]) -> [Float] {
        elementwise(x) { isosweep_tanh(variant, Int64(x.count), $0, $1) }
    }

    static func softplus(_ variant: Int32, _ x: [Float]) -> [Float] {
        elementwise(x) { isosweep_softplus(variant, Int64(x.count), $0, $1) }
    }

    static func softplusSlope(_ variant: Int32, fromValues h: [Float]) -> [Float] {
        elementwise(h) { isosweep_softplus_slope(variant, Int64(h.count), $0, $1) }
    }

    static func softplusAndSigmoid(_ variant: Int32, _ x: [Float]) -> (value: [Float], slope: [Float]) {
        var slope = [Float](repeating: 0, count: x.count)
        let value = elementwise(x) { input, output in
            slope.withUnsafeMutableBufferPointer {
                isosweep_softplus_and_sigmoid(variant, Int64(x.count), input, output, $0.baseAddress!)
            }
        }
        return (value, slope)
    }

    private static func elementwise(
        _ x: [Float],
        _ body: (UnsafePointer<Float>, UnsafeMutablePointer<Float>) -> Void
    ) -> [Float] {
        var out = [Float](repeating: 0, count: x.count)
        x.withUnsafeBufferPointer { input in
            out.withUnsafeMutableBufferPointer { output in body(input.baseAddress!, output.baseAddress!) }
        }
        return out
    }
}
