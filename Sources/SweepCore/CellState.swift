/// Where a cell is in its life: the scheduler's view of it, and what the store's `cells.state`
/// column holds (as the raw value). `cancelled`: a user took it out (`isosweep cancel`); it is
/// skipped, counts as finished, and can be requeued.
public enum CellState: String, Codable, Sendable, CaseIterable {
    case queued, leased, done, failed, cancelled
}
