public import SweepCore

/// What the status endpoint reports, refreshed by the coordinator twice a second.
public struct StatusSnapshot: Sendable, Codable {
    public var sweep: String
    public var database: String
    public var total: Int
    public var counts: [String: Int]
    public var cellsPerSecond: Double
    public var etaSeconds: Double?
    public var elapsedSeconds: Double
    public var workers: [Scheduler.WorkerSummary]
    public var failures: [Failure]
    public var finished: Bool
    /// Leased cells (those whose runner reported first), with how far each is.
    public var running: [Running] = []
    /// Cells no registered worker can hold, and why; `waitingCount` counts them all.
    public var waiting: [Scheduler.WaitingCell] = []
    public var waitingCount = 0

    /// A running cell: where, with what, how far.
    public struct Running: Sendable, Codable, Equatable {
        public var key: String
        public var worker: String
        public var n: Int?
        public var d: Int?
        public var width: Int?
        public var seed: Int?
        public var threads: Int
        public var memoryBytes: UInt64
        /// setup, train or lipschitz; "queued" while it waits in its worker's queue.
        public var phase: String
        public var step: Int?
        public var maxSteps: Int?
        public var trainMSE: Double?
        /// Since its runner started it (since its lease while queued at its worker).
        public var seconds: Double

        enum CodingKeys: String, CodingKey {
            case key, worker, n, d, width, seed, threads, phase, step, seconds
            case memoryBytes = "memory_bytes"
            case maxSteps = "max_steps"
            case trainMSE = "train_mse"
        }
    }

    public struct Failure: Sendable, Codable {
        public var key: String
        public var attempts: Int
        public var error: String
    }

    public init(
        sweep: String,
        database: String,
        total: Int,
        counts: [String: Int],
        cellsPerSecond: Double,
        etaSeconds: Double?,
        elapsedSeconds: Double,
        workers: [Scheduler.WorkerSummary],
        failures: [Failure],
        finished: Bool,
        running: [Running] = [],
        waiting: [Scheduler.WaitingCell] = [],
        waitingCount: Int = 0
    ) {
        self.sweep = sweep
        self.database = database
        self.total = total
        self.counts = counts
        self.cellsPerSecond = cellsPerSecond
        self.etaSeconds = etaSeconds
        self.elapsedSeconds = elapsedSeconds
        self.workers = workers
        self.failures = failures
        self.finished = finished
        self.running = running
        self.waiting = waiting
        self.waitingCount = waitingCount
    }

    /// Reads a status; `running` and `waiting` may be absent (a coordinator before they existed).
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            sweep: try container.decode(String.self, forKey: .sweep),
            database: try container.decode(String.self, forKey: .database),
            total: try container.decode(Int.self, forKey: .total),
            counts: try container.decode([String: Int].self, forKey: .counts),
            cellsPerSecond: try container.decode(Double.self, forKey: .cellsPerSecond),
            etaSeconds: try container.decodeIfPresent(Double.self, forKey: .etaSeconds),
            elapsedSeconds: try container.decode(Double.self, forKey: .elapsedSeconds),
            workers: try container.decode([Scheduler.WorkerSummary].self, forKey: .workers),
            failures: try container.decode([Failure].self, forKey: .failures),
            finished: try container.decode(Bool.self, forKey: .finished),
            running: try container.decodeIfPresent([Running].self, forKey: .running) ?? [],
            waiting: try container.decodeIfPresent([Scheduler.WaitingCell].self, forKey: .waiting) ?? [],
            waitingCount: try container.decodeIfPresent(Int.self, forKey: .waitingCount) ?? 0
        )
    }

    enum CodingKeys: String, CodingKey {
        case sweep, database, total, counts, workers, failures, finished, running, waiting
        case waitingCount = "waiting_count"
        case cellsPerSecond = "cells_per_second"
        case etaSeconds = "eta_seconds"
        case elapsedSeconds = "elapsed_seconds"
    }
}
