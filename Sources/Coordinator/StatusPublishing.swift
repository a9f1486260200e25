import Foundation
import Logging
import SweepCore
import Synchronization
import TrainingCore

extension CoordinatorEngine {
    /// Refreshes the status snapshot and the Prometheus metrics.
    func publish(_ p: CoordinatorProgress, scheduler: Scheduler, malformed: Int, now: ContinuousClock.Instant) {
        var counts: [String: Int] = [:]
        for state in Scheduler.CellState.allCases { counts[state.rawValue] = scheduler.counts[state] ?? 0 }
        var snapshot = StatusSnapshot(
            sweep: sweepName,
            database: options.database,
            total: p.total,
            counts: counts,
            cellsPerSecond: p.rate,
            etaSeconds: p.eta,
            elapsedSeconds: p.elapsed,
            workers: [],
            failures: scheduler.failures(limit: 100).map {
                StatusSnapshot.Failure(key: $0.key, attempts: $0.attempts, error: $0.error)
            },
            finished: scheduler.isFinished,
            running: Self.running(scheduler.runningCells(now: now, limit: 100)),
            waiting: scheduler.waitingCells(),
            waitingCount: scheduler.waitingCount
        )
        snapshot.setWorkers(
            scheduler.workerSummaries(now: now),
            silentAfterMilliseconds: 2 * options.heartbeat.milliseconds
        )
        // Encoded once here, not per request: /status is polled while a thousand workers report.
        let json = Self.encode(snapshot)
        latestStatus.withLock { $0 = (snapshot, json) }
        metrics.update(
            counts: counts,
            workers: p.workers,
            rate: p.rate,
            malformed: malformed,
            refusals: refusals.withLock { $0.count }
        )
    }

    /// A snapshot as `/status` sends it.
    static func encode(_ snapshot: StatusSnapshot) -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return (try? encoder.encode(snapshot)).map(Array.init) ?? []
    }

    /// Running cells as `/status` shows them (their parameters decoded from the work JSON).
    static func running(_ cells: [Scheduler.RunningCell]) -> [StatusSnapshot.Running] {
        let decoder = JSONDecoder()
        return cells.map { cell in
            let parameters = CellWork(json: cell.work, decoder: decoder)?.parameters
            let progress = cell.progress
            return StatusSnapshot.Running(
                key: cell.key,
                worker: cell.worker,
                n: parameters?.n,
                d: parameters?.d,
                width: parameters?.width,
                seed: parameters?.seed,
                threads: Int(cell.threads),
                memoryBytes: cell.memoryBytes,
                phase: progress?.phase.name ?? "queued",
                step: progress.map { Int($0.step) },
                maxSteps: progress.map { Int($0.maxSteps) },
                trainMSE: progress?.trainMSE,
                seconds: progress.map { Double($0.milliseconds) / 1000 } ?? Double(cell.milliseconds) / 1000,
                resumedFromStep: progress?.resumedFromStep.map { Int($0) }
            )
        }
    }

    /// Writes a log line a pure core asked for.
    func log(_ level: LogLevel, _ text: String) {
        // LogLevel's raw values are swift-log's level names.
        logger.log(level: Logger.Level(rawValue: level.rawValue) ?? .info, "\(text)")
    }
}
