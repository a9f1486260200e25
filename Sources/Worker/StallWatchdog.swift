/// Tells a slow cell from a stuck one: its runner reports a work count about once a second
/// (`CellProgress.Snapshot.work`, which grows with every step and search poll), and a cell whose
/// count has not grown for its stall limit (or whose runner stopped reporting at all: stopped
/// with SIGSTOP, stuck in the kernel) is stuck. Liveness alone would not do: the runner's
/// reporting thread runs on while its computing threads are deadlocked.
struct StallWatchdog {
    /// nil: never stalled (`stall_limit: off`).
    let limit: Duration?
    private var lastWork: UInt64?
    private var lastAdvance: ContinuousClock.Instant

    /// A watchdog for a cell started at `now`, with a limit in milliseconds (0: none).
    init(limitMilliseconds: UInt64, now: ContinuousClock.Instant) {
        limit = limitMilliseconds > 0 ? .milliseconds(Int64(clamping: limitMilliseconds)) : nil
        lastAdvance = now
    }

    /// A report: the cell's work count, or nil for an event that is progress in itself (a
    /// checkpoint arrived).
    mutating func observe(_ work: UInt64?, now: ContinuousClock.Instant) {
        guard let work else {
            lastAdvance = now
            return
        }
        if work != lastWork {
            lastWork = work
            lastAdvance = now
        }
    }

    /// How long the cell has gone without progress, when that is longer than its limit.
    func stalled(now: ContinuousClock.Instant) -> Duration? {
        guard let limit, now - lastAdvance > limit else { return nil }
        return now - lastAdvance
    }
}
