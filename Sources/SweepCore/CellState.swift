/// Where a cell is in its life: the scheduler's view of it, and what the store's `cells.state`
/// column holds (as the raw value). `cancelled`: a user took it out (`isosweep cancel`); it is
/// skipped, counts as finished, and can be requeued.
public enum CellState: String, Codable, Sendable, CaseIterable {
    /// Waiting for a worker.
    case queued
    /// Leased to a worker, running.
    case leased
    /// Its result is committed.
    case done
    /// It failed `max_attempts` times.
    case failed
    /// Taken out by a user.
    case cancelled
}
