import Logging
import SweepCore
import Synchronization

extension CoordinatorEngine {
    /// Refreshes the status snapshot and the Prometheus metrics.
    func publish(_ p: CoordinatorProgress, scheduler: Scheduler, malformed: Int, now: ContinuousClock.Instant) {
        var counts: [String: Int] = [:]
        for state in Scheduler.CellState.allCases { counts[state.rawValue] = scheduler.counts[state] ?? 0 }
        let snapshot = StatusSnapshot(
            sweep: sweepName,
            database: options.database,
            total: p.total,
            counts: counts,
            cellsPerSecond: p.rate,
            etaSeconds: p.eta,
            elapsedSeconds: p.elapsed,
            workers: scheduler.workerSummaries(now: now),
            failures: scheduler.failures.prefix(100).map {
                StatusSnapshot.Failure(key: $0.key, attempts: $0.attempts, error: $0.error)
            },
            finished: scheduler.isFinished
        )
        latestStatus.withLock { $0 = snapshot }
        metrics.update(
            counts: counts,
            workers: p.workers,
            rate: p.rate,
            malformed: malformed,
            refusals: refusals.withLock { $0.count }
        )
    }

    /// Writes a log line a pure core asked for.
    func log(_ level: LogLevel, _ text: String) {
        // LogLevel's raw values are swift-log's level names.
        logger.log(level: Logger.Level(rawValue: level.rawValue) ?? .info, "\(text)")
    }
}
