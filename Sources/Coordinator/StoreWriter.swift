import Diagnostics
import Foundation
import Logging
import SweepCore
import SweepStore
import Synchronization

/// Writes the scheduler's state changes, results and worker records to the store in group
/// commits, on a thread of its own: while one transaction is being written (SQLite, the WAL,
/// fsync), the loop goes on reading messages and collects the next. One transaction is in
/// flight at a time, so they reach the disk in order, and a result is acknowledged only once
/// its transaction is durable. Writes the store cannot take yet (disk full, read-only) are kept
/// and retried at most once a second, and their results are never acknowledged meanwhile.
final class StoreWriter {
    let store: ResultStore
    let logger: Logger
    var pendingCommits: [Scheduler.Commit] = []
    var pendingUpdates: [Scheduler.CellUpdate] = []
    var pendingWorkers: [Scheduler.WorkerRecord] = []
    var storeFailure: (since: ContinuousClock.Instant, lastTry: ContinuousClock.Instant)?

    /// A transaction's contents.
    struct Batch: Sendable {
        var updates: [Scheduler.CellUpdate]
        var commits: [Scheduler.Commit]
        var workers: [Scheduler.WorkerRecord]
    }

    /// The batch handed to the writing thread, and its outcome once written.
    private struct Exchange: Sendable {
        var batch: Batch?
        var outcome: Result<Void, IsosweepError>?
        var stop = false
    }

    /// What the loop and the writing thread share (the thread holds it, not the writer, so that
    /// the writer's end stops the thread). `exchange` changes only with `changed` locked, and
    /// every change is broadcast on it: the thread waits on it for a batch, the loop (in
    /// `waitForWrite`) for an outcome.
    private final class Channel: Sendable {
        let exchange = Mutex(Exchange())
        let changed = NSCondition()

        /// Changes the exchange and wakes whoever waits for it.
        func update(_ change: @Sendable (inout Exchange) -> Void) {
            changed.lock()
            exchange.withLock { change(&$0) }
            changed.broadcast()
            changed.unlock()
        }

        /// Waits until `ready` holds of the exchange and returns what `read` takes from it.
        func wait<T: Sendable>(until ready: (Exchange) -> Bool, then read: @Sendable (Exchange) -> T) -> T {
            changed.lock()
            defer { changed.unlock() }
            while !exchange.withLock({ ready($0) }) { changed.wait() }
            return exchange.withLock { read($0) }
        }
    }

    private let channel = Channel()

    /// The batch being written (owned by the loop; the thread has its copy).
    private var inFlight: Batch?

    init(store: ResultStore, logger: Logger) {
        self.store = store
        self.logger = logger
        // The store is used by this thread and, for reads and the final records, by the loop:
        // GRDB's queue serializes them.
        let thread = Thread { [channel, store] in
            while true {
                // A batch not yet written, or the end (a batch handed over before it is written first).
                let next = channel.wait(
                    until: { ($0.outcome == nil && $0.batch != nil) || $0.stop },
                    then: { $0.outcome == nil ? $0.batch : nil }
                )
                guard let batch = next else { return }
                let outcome: Result<Void, IsosweepError>
                do {
                    try store.apply(updates: batch.updates, commits: batch.commits, workers: batch.workers)
                    outcome = .success(())
                } catch {
                    outcome = .failure((error as? IsosweepError) ?? IsosweepError(.store, "\(error)"))
                }
                channel.update { $0.outcome = outcome }
            }
        }
        thread.name = "isosweep-store"
        thread.start()
    }

    deinit {
        channel.update { $0.stop = true }
    }

    /// What a flush did.
    enum Flush {
        /// Nothing to write, a transaction is still being written, or a retry is not due yet.
        case nothing
        /// The store refused the writes: dispatching must pause.
        case paused
        /// Written; these commits may now be acknowledged. `resumed`: the store had refused
        /// writes before, and dispatching may go on.
        case written([Scheduler.Commit], resumed: Bool)
    }

    /// Something is waiting to be written or being written.
    var hasPendingWrites: Bool {
        inFlight != nil || !pendingCommits.isEmpty || !pendingUpdates.isEmpty || !pendingWorkers.isEmpty
    }

    /// A transaction is being written (the loop polls briefly to acknowledge it soon).
    var isWriting: Bool { inFlight != nil }

    /// Collects the outcome of the transaction in flight, if it is written, and hands what is
    /// pending to the writing thread as the next one.
    func flush() -> Flush {
        var result = Flush.nothing
        if let batch = inFlight {
            guard let outcome = channel.exchange.withLock({ $0.outcome }) else { return .nothing }
            channel.update {
                $0.batch = nil
                $0.outcome = nil
            }
            inFlight = nil
            let now = ContinuousClock.now
            switch outcome {
            case .success:
                let resumed = storeFailure != nil
                if let failure = storeFailure {
                    logger.notice(
                        "the database takes writes again: dispatching resumed",
                        metadata: ["paused_ms": "\((now - failure.since).milliseconds)"]
                    )
                    storeFailure = nil
                }
                result = .written(batch.commits, resumed: resumed)
            case .failure(let error):
                // Kept, ahead of what came since, for the next try.
                pendingUpdates = batch.updates + pendingUpdates
                pendingCommits = batch.commits + pendingCommits
                pendingWorkers = batch.workers + pendingWorkers
                if storeFailure == nil {
                    logger.error(
                        "cannot write the database: dispatching paused, results are not acknowledged; retrying every second",
                        metadata: ["error": "\(error.description)"]
                    )
                    storeFailure = (now, now)
                    result = .paused
                } else {
                    storeFailure?.lastTry = now
                }
                return result
            }
        }
        guard !pendingCommits.isEmpty || !pendingUpdates.isEmpty || !pendingWorkers.isEmpty else { return result }
        let now = ContinuousClock.now
        if let failure = storeFailure {
            guard now - failure.lastTry >= .seconds(1) else { return result }
            storeFailure?.lastTry = now
        }
        let batch = Batch(updates: pendingUpdates, commits: pendingCommits, workers: pendingWorkers)
        pendingUpdates = []
        pendingCommits = []
        pendingWorkers = []
        inFlight = batch
        channel.update { $0.batch = batch }
        return result
    }

    /// Waits until the transaction in flight, if any, is written (its outcome is then collected
    /// by `flush`).
    func waitForWrite() {
        guard inFlight != nil else { return }
        channel.wait(until: { $0.outcome != nil }, then: { _ in })
    }

    /// Records workers at once (e.g. as gone when the coordinator stops); a failure is logged.
    func recordWorkers(_ records: [Scheduler.WorkerRecord]) {
        guard !records.isEmpty else { return }
        do {
            try store.apply(updates: [], commits: [], workers: records)
        } catch {
            logger.warning("cannot record the workers as gone", metadata: ["error": "\(error.description)"])
        }
    }
}
