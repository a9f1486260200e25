public import SweepCore
public import ZeroMQ

/// Settings of a coordinator run.
public struct CoordinatorOptions: Sendable {
    /// Where the ROUTER socket listens, e.g. tcp://127.0.0.1:5555 (port 0: any free port).
    public var bind: String
    /// The SQLite database of the sweep.
    public var database: String
    /// Heartbeat interval (default 1 s).
    public var heartbeat: Duration = .seconds(1)
    /// Missed heartbeats before a worker is dead (default 3).
    public var liveness: Int = 3
    /// Tries per cell before FAILED (default 3, or the sweep file's max_attempts).
    public var maxAttempts: Int = SweepSpec.defaultMaxAttempts
    /// Retry cells that FAILED in an earlier run on the same database.
    public var retryFailed = false
    /// After SIGTERM, how long to keep committing results that arrive.
    public var drainGrace: Duration = .seconds(2)
    /// How workers are authenticated.
    public var security = Security.plaintext(insecure: false)
    /// Open a database made for another spec anyway (the change is recorded).
    public var force = false
    /// What each cell may use, for work without a sweep file (a sweep file's `resources:` wins).
    public var limits = ResourceLimits()

    /// Transport security.
    public enum Security: Sendable {
        /// No encryption; allowed only on loopback unless `insecure` says the user accepts it.
        case plaintext(insecure: Bool)
        /// CURVE with this key pair, admitting only the worker keys in `allowDirectory` (*.pub).
        case curve(KeyFiles.KeyPair, allowDirectory: String)
    }

    public init(bind: String, database: String) {
        self.bind = bind
        self.database = database
    }
}

/// Progress of a sweep, for the command line to show.
public struct CoordinatorProgress: Sendable {
    public var total: Int
    public var done: Int
    public var failed: Int
    public var leased: Int
    public var workers: Int
    /// Cells committed in this run, and the seconds since it started.
    public var committedThisRun: Int
    public var elapsed: Double
    /// Estimated cost (flops) of the cells not yet done or failed, and of those committed in
    /// this run.
    public var remainingCost = 0.0
    public var costDoneThisRun = 0.0
    /// Cells no registered worker can hold.
    public var waiting = 0

    public init(
        total: Int,
        done: Int,
        failed: Int,
        leased: Int,
        workers: Int,
        committedThisRun: Int,
        elapsed: Double
    ) {
        self.total = total
        self.done = done
        self.failed = failed
        self.leased = leased
        self.workers = workers
        self.committedThisRun = committedThisRun
        self.elapsed = elapsed
    }

    /// Committed cells per second in this run.
    public var rate: Double { elapsed > 0 ? Double(committedThisRun) / elapsed : 0 }
    /// Seconds to finish at the current pace: the remaining cells weighed by their estimated
    /// cost against the cost done so far in this run (one big cell left is not "one cell" of
    /// many small ones); by their count where cells have no cost (benchmark cells).
    public var eta: Double? {
        if costDoneThisRun > 0 && elapsed > 0 {
            return max(0, remainingCost) * elapsed / costDoneThisRun
        }
        let left = total - done - failed
        return rate > 0 && remainingCost <= 0 ? Double(left) / rate : nil
    }
}

/// How a coordinator run ended.
public struct CoordinatorOutcome: Sendable {
    public var total: Int
    public var done: Int
    public var failed: Int
    /// Stopped by a signal before every cell finished.
    public var interrupted: Bool
    /// Dispatch-to-commit latency, in milliseconds, of every cell committed in this run.
    public var latencyMilliseconds: [Float]
    /// Wall-clock seconds of the run.
    public var seconds: Double
    /// Seconds from the first cell dispatched to the last result committed in this run: the
    /// steady-state span, without loading the sweep or waiting for the first worker.
    public var dispatchSeconds: Double
    /// Seconds from the start of the run (before loading the sweep) to its first dispatch.
    public var firstDispatchSeconds: Double = 0
}

/// What the coordinator runs: the cells of a sweep file, given cells, or diagnostic cells.
public enum CoordinatorWork: Sendable {
    /// The cells of a sweep file.
    case sweep(SweepSpec)
    /// These cells, as a sweep of this name.
    case cells(name: String, [CellWork])
    /// Diagnostic cells 0..<count that succeed at once (`DiagnosticCell`), made as they load: a
    /// million cost no list (`bench swarm`).
    case diagnostic(name: String, count: Int)
}
