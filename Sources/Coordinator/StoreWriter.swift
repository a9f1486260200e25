import Diagnostics
import Logging
import SweepCore
import SweepStore

/// Writes the scheduler's state changes, results and worker records to the store in group
/// commits. Writes the store cannot take yet (disk full, read-only) are kept and retried at most
/// once a second, and their results are never acknowledged meanwhile.
struct StoreWriter {
    let store: ResultStore
    let logger: Logger
    var pendingCommits: [Scheduler.Commit] = []
    var pendingUpdates: [Scheduler.CellUpdate] = []
    var pendingWorkers: [Scheduler.WorkerRecord] = []
    var storeFailure: (since: ContinuousClock.Instant, lastTry: ContinuousClock.Instant)?

    /// What a flush did.
    enum Flush {
        /// Nothing to write, or a retry is not due yet.
        case nothing
        /// The store refused the writes: dispatching must pause.
        case paused
        /// Written; these commits may now be acknowledged. `resumed`: the store had refused
        /// writes before, and dispatching may go on.
        case written([Scheduler.Commit], resumed: Bool)
    }

    var hasPendingWrites: Bool { !pendingCommits.isEmpty || !pendingUpdates.isEmpty || !pendingWorkers.isEmpty }

    /// Writes what is pending in one transaction.
    mutating func flush() -> Flush {
        guard hasPendingWrites else { return .nothing }
        let now = ContinuousClock.now
        if let failure = storeFailure, now - failure.lastTry < .seconds(1) { return .nothing }
        do {
            try store.apply(updates: pendingUpdates, commits: pendingCommits, workers: pendingWorkers)
        } catch {
            guard storeFailure == nil else {
                storeFailure?.lastTry = now
                return .nothing
            }
            logger.error(
                "cannot write the database: dispatching paused, results are not acknowledged; retrying every second",
                metadata: ["error": "\(error.description)"]
            )
            storeFailure = (now, now)
            return .paused
        }
        let resumed = storeFailure != nil
        if let failure = storeFailure {
            logger.notice(
                "the database takes writes again: dispatching resumed",
                metadata: ["paused_ms": "\((now - failure.since).milliseconds)"]
            )
            storeFailure = nil
        }
        let commits = pendingCommits
        pendingCommits = []
        pendingUpdates = []
        pendingWorkers = []
        return .written(commits, resumed: resumed)
    }

    /// Records workers at once (e.g. as gone when the coordinator stops); a failure is logged.
    mutating func recordWorkers(_ records: [Scheduler.WorkerRecord]) {
        guard !records.isEmpty else { return }
        do {
            try store.apply(updates: [], commits: [], workers: records)
        } catch {
            logger.warning("cannot record the workers as gone", metadata: ["error": "\(error.description)"])
        }
    }
}
