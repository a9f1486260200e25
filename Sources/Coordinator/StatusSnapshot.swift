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

    public struct Failure: Sendable, Codable {
        public var key: String
        public var attempts: Int
        public var error: String
    }

    enum CodingKeys: String, CodingKey {
        case sweep, database, total, counts, workers, failures, finished
        case cellsPerSecond = "cells_per_second"
        case etaSeconds = "eta_seconds"
        case elapsedSeconds = "elapsed_seconds"
    }
}
