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
    /// One page of the registered workers, in the order they joined (`workersPage`, from 0,
    /// of `workersPageSize`); `workersTotal` counts them all.
    public var workers: [Scheduler.WorkerSummary]
    public var workersTotal = 0
    public var workersPage = 0
    /// Workers by condition: busy (holding cells), idle, silent (no word for two heartbeats).
    public var workerStates: [String: Int] = [:]
    /// The workers that committed the most cells.
    public var topWorkers: [Scheduler.WorkerSummary] = []
    /// Every registered worker, for paging (not encoded: a page is).
    public var allWorkers: [Scheduler.WorkerSummary] = []
    public var failures: [Failure]
    public var finished: Bool
    /// Leased cells (those whose runner reported first), with how far each is.
    public var running: [Running] = []
    /// Cells no registered worker can hold, and why; `waitingCount` counts them all.
    public var waiting: [Scheduler.WaitingCell] = []
    public var waitingCount = 0

    /// Workers per page of `/status?workers_page=N`.
    public static let workersPageSize = 50

    /// A snapshot of every worker, aggregated: counts by condition, the top ten by cells done,
    /// and page 0 of the list (a page is what `/status` encodes; a thousand rows are not).
    public mutating func setWorkers(_ all: [Scheduler.WorkerSummary], silentAfterMilliseconds: Int64) {
        allWorkers = all
        workersTotal = all.count
        var states = ["busy": 0, "idle": 0, "silent": 0]
        for worker in all {
            let state =
                worker.silentMilliseconds > silentAfterMilliseconds ? "silent" : worker.leased > 0 ? "busy" : "idle"
            states[state, default: 0] += 1
        }
        workerStates = states
        topWorkers = Array(all.sorted { ($0.done, $1.id) > ($1.done, $0.id) }.prefix(10))
        self = page(0)
    }

    /// This snapshot with page `number` of the workers (clamped to the last page).
    public func page(_ number: Int) -> StatusSnapshot {
        var copy = self
        let pages = max(1, (allWorkers.count + Self.workersPageSize - 1) / Self.workersPageSize)
        copy.workersPage = min(max(0, number), pages - 1)
        let start = copy.workersPage * Self.workersPageSize
        copy.workers = Array(
            allWorkers[min(start, allWorkers.count)..<min(start + Self.workersPageSize, allWorkers.count)]
        )
        return copy
    }

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
        /// The checkpoint step this attempt resumed from, if it resumed from one.
        public var resumedFromStep: Int? = nil

        enum CodingKeys: String, CodingKey {
            case key, worker, n, d, width, seed, threads, phase, step, seconds
            case memoryBytes = "memory_bytes"
            case maxSteps = "max_steps"
            case trainMSE = "train_mse"
            case resumedFromStep = "resumed_from_step"
        }
    }

    /// A failed cell: its key, how many attempts it had and its last error.
    public struct Failure: Sendable, Codable {
        /// The cell's key.
        public var key: String
        /// Its attempts.
        public var attempts: Int
        /// Its last error.
        public var error: String

        /// A failure as given.
        public init(key: String, attempts: Int, error: String) {
            self.key = key
            self.attempts = attempts
            self.error = error
        }
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
        workersTotal = try container.decodeIfPresent(Int.self, forKey: .workersTotal) ?? workers.count
        workersPage = try container.decodeIfPresent(Int.self, forKey: .workersPage) ?? 0
        workerStates = try container.decodeIfPresent([String: Int].self, forKey: .workerStates) ?? [:]
        topWorkers = try container.decodeIfPresent([Scheduler.WorkerSummary].self, forKey: .topWorkers) ?? []
    }

    enum CodingKeys: String, CodingKey {
        case sweep, database, total, counts, workers, failures, finished, running, waiting
        case waitingCount = "waiting_count"
        case workersTotal = "workers_total"
        case workersPage = "workers_page"
        case workerStates = "worker_states"
        case topWorkers = "top_workers"
        case cellsPerSecond = "cells_per_second"
        case etaSeconds = "eta_seconds"
        case elapsedSeconds = "elapsed_seconds"
    }
}
