import Synchronization

/// How far a running cell is, written by the computation as it goes and read from another
/// thread (a cell runner reports it to its worker about once a second). Lock-free: recording a
/// step costs a few relaxed atomic stores.
public final class CellProgress: Sendable {
    /// What the cell is doing.
    public enum Phase: UInt8, Sendable {
        /// Making its data and network.
        case setup = 0
        case train = 1
        case lipschitz = 2
    }

    /// A consistent-enough reading (each field is read atomically).
    public struct Snapshot: Sendable, Equatable {
        public var phase: Phase
        public var step: Int
        public var maxSteps: Int
        /// The latest training loss (nil before the first step).
        public var trainMSE: Double?
        /// Units of work done: it grows with every training step, every poll of a long search
        /// and every phase change, so a cell whose count stands still is stuck.
        public var work: UInt64 = 0
    }

    private let phase = Atomic<UInt8>(Phase.setup.rawValue)
    private let step = Atomic<Int>(0)
    private let maxSteps = Atomic<Int>(0)
    private let lossBits = Atomic<UInt64>(Double.nan.bitPattern)
    private let work = Atomic<UInt64>(0)

    public init() {}

    /// Starts a new cell: setup, no step, no loss.
    public func reset(maxSteps: Int) {
        phase.store(Phase.setup.rawValue, ordering: .relaxed)
        step.store(0, ordering: .relaxed)
        self.maxSteps.store(maxSteps, ordering: .relaxed)
        lossBits.store(Double.nan.bitPattern, ordering: .relaxed)
    }

    /// The cell moves to `phase`.
    public func enter(_ phase: Phase) {
        self.phase.store(phase.rawValue, ordering: .relaxed)
        tick()
    }

    /// The cell did some work (a watchdog reads the count to tell a slow cell from a stuck one).
    public func tick() {
        work.add(1, ordering: .relaxed)
    }

    /// Training reached `step` with training loss `loss`.
    public func record(step: Int, loss: Double) {
        self.step.store(step, ordering: .relaxed)
        lossBits.store(loss.bitPattern, ordering: .relaxed)
        tick()
    }

    /// The latest state.
    public var snapshot: Snapshot {
        let loss = Double(bitPattern: lossBits.load(ordering: .relaxed))
        return Snapshot(
            phase: Phase(rawValue: phase.load(ordering: .relaxed)) ?? .setup,
            step: step.load(ordering: .relaxed),
            maxSteps: maxSteps.load(ordering: .relaxed),
            trainMSE: loss.isNaN ? nil : loss,
            work: work.load(ordering: .relaxed)
        )
    }
}
