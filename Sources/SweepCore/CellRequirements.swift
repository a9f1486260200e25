public import Diagnostics
import TrainingCore

/// What a cell needs from the worker that runs it: cores for its BLAS threads and memory. The
/// scheduler leases a cell only to a worker whose free cores and memory hold it.
public struct CellRequirements: Sendable, Hashable {
    /// BLAS threads it asks for (0: it needs no core of its own, e.g. a no-op benchmark cell). A
    /// worker with fewer cores gives it all of its cores instead.
    public var threads: UInt16
    /// The memory it is given, in bytes, which the scheduler reserves on its worker: the
    /// estimate (`memory: auto`) or the sweep's fixed `resources.memory` (0: nothing).
    public var memoryBytes: UInt64
    /// The resident memory its runner is stopped beyond (0: not enforced). With `memory: auto`
    /// it is the estimate plus a margin of 25%, at least 64 MiB: the estimate models the cell's
    /// allocations, not every build's process baseline (a debug build's runner starts larger),
    /// so the limit catches a runaway cell without failing an honest one by a few megabytes.
    /// A fixed `memory` is enforced as given.
    public var limitBytes: UInt64

    public init(threads: UInt16, memoryBytes: UInt64, limitBytes: UInt64? = nil) {
        self.threads = threads
        self.memoryBytes = memoryBytes
        self.limitBytes = limitBytes ?? memoryBytes
    }

    /// Needs nothing: fits any worker.
    public static let none = CellRequirements(threads: 0, memoryBytes: 0)

    /// The margin `memory: auto` adds to an estimate for the enforced limit.
    public static func autoLimit(_ estimate: UInt64) -> UInt64 {
        estimate + max(estimate / 4, 64 << 20)
    }
}

extension CellWork {
    /// Floating-point operations of a training step per BLAS thread under `threads: auto`.
    public static let autoThreadStepFlops = 256e6
    /// Floating-point operations of a random-features solve per BLAS thread under `threads: auto`.
    public static let autoThreadSolveFlops = 16e9
    /// Most BLAS threads `threads: auto` gives a cell.
    public static let autoThreadsMaximum = 64

    /// The BLAS threads `threads: auto` gives this cell: one per 256 MFLOP of a training step
    /// (the step's two GEMMs, 4 n d k flops), or for random features one per 16 GFLOP of the
    /// solve, at least 1 and at most 64. Small cells run on one core each, which uses a machine
    /// best; a cell whose GEMMs are large enough to scale gets several, so that a sweep's
    /// makespan is not one huge cell on one core. The scheduler then caps it at the cores of
    /// the worker that takes it. Benchmark cells need no core (0).
    public var autoThreads: UInt16 {
        guard case .train(let parameters) = self else { return 0 }
        let p = parameters.resolved()
        let per: Double
        let work: Double
        if p.trainer == .randomFeatures {
            per = Self.autoThreadSolveFlops
            work = estimatedCost
        } else {
            per = Self.autoThreadStepFlops
            work = 4 * Double(p.n) * Double(p.d) * Double(p.width)
        }
        return UInt16(min(Double(Self.autoThreadsMaximum), max(1, (work / per).rounded(.down))))
    }

    /// What this cell needs under the sweep's `resources:` (`limits`: threads 0 = auto, memory
    /// 0 = auto). A fixed `memory` below the cell's estimate is an error: the cell would be
    /// stopped before it could finish. Benchmark cells need nothing.
    public func requirements(resources limits: ResourceLimits) throws(IsosweepError) -> CellRequirements {
        if case .diagnostic(let cell) = self, cell.behaviour == .hog {
            return CellRequirements(threads: 0, memoryBytes: DiagnosticCell.hogAllowance)
        }
        guard case .train(let parameters) = self else { return .none }
        let threads = limits.threads > 0 ? limits.threads : autoThreads
        let estimate = UInt64(parameters.estimatedPeakMemory(threads: Int(threads)))
        if limits.memoryBytes > 0 && limits.memoryBytes < estimate {
            throw IsosweepError(
                .sweepFile,
                """
                resources.memory \(Units.formatSize(limits.memoryBytes)) is below the estimated peak of cell \
                n=\(parameters.n) d=\(parameters.d) width=\(parameters.width) (\(Units.formatSize(estimate)))
                """,
                remedy: "raise resources.memory to at least \(Units.formatSize(estimate)), or set it to auto"
            )
        }
        if limits.memoryBytes > 0 { return CellRequirements(threads: threads, memoryBytes: limits.memoryBytes) }
        return CellRequirements(
            threads: threads,
            memoryBytes: estimate,
            limitBytes: CellRequirements.autoLimit(estimate)
        )
    }
}
