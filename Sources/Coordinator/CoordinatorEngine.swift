import CZeroMQ
import Foundation
public import Logging
public import SweepKit
import Synchronization
import TrainingCore
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

    /// Committed cells per second in this run.
    public var rate: Double { elapsed > 0 ? Double(committedThisRun) / elapsed : 0 }
    /// Seconds to finish at the current rate.
    public var eta: Double? {
        let left = total - done - failed
        return rate > 0 ? Double(left) / rate : nil
    }
}

/// How a coordinator run ended.
public struct CoordinatorOutcome: Sendable {
    public var total: Int
    public var done: Int
    public var failed: Int
    /// Stopped by a signal before every cell finished.
    public var interrupted: Bool
    /// Dispatch-to-commit latency of every cell committed in this run.
    public var latencies: [Duration]
    /// Wall-clock seconds of the run.
    public var seconds: Double
    /// Seconds from the first cell dispatched to the last result committed in this run: the
    /// steady-state span, without loading the sweep or waiting for the first worker.
    public var dispatchSeconds: Double
}

/// What the coordinator runs: the cells of a sweep file, or benchmark cells.
public enum CoordinatorWork: Sendable {
    case sweep(SweepSpec)
    case cells(name: String, [CellWork])
}

/// The I/O shell around the scheduler: the ROUTER socket, the store and the clock, on one
/// dedicated thread (a ZeroMQ socket lives on one thread; nothing blocks the async pool).
public final class CoordinatorEngine: Sendable {
    let options: CoordinatorOptions
    let work: CoordinatorWork
    let logger: Logger
    let stopRequested = Atomic<Bool>(false)
    let boundEndpoint = Mutex<String?>(nil)
    /// Allowed worker public keys (Z85) and the file each came from.
    let allowList = Mutex<[String: String]>([:])
    /// Refused connections, logged once per peer host per minute.
    let refusals = Mutex(ComplaintLimiter())
    /// The latest status, for the HTTP endpoint.
    let latestStatus = Mutex<StatusSnapshot?>(nil)
    let metrics = CoordinatorMetrics()

    /// The latest status snapshot (nil before the sweep is loaded).
    public var status: StatusSnapshot? { latestStatus.withLock { $0 } }

    /// The database this engine writes.
    public var databasePath: String { options.database }

    public init(options: CoordinatorOptions, work: CoordinatorWork, logger: Logger) {
        self.options = options
        self.work = work
        self.logger = logger
    }

    /// Asks the run to stop dispatching, commit what arrives for a short grace, and return.
    public func requestStop() {
        stopRequested.store(true, ordering: .sequentiallyConsistent)
    }

    /// Re-reads the allow-list folder (on SIGHUP): new connections are judged by the new list.
    /// A folder that cannot be read leaves the old list in force.
    public func reloadAllowList() {
        guard case .curve(_, let directory) = options.security else { return }
        do {
            let keys = try KeyFiles.readAllowList(directory)
            let (added, removed) = allowList.withLock { current -> (Int, Int) in
                let added = keys.keys.filter { current[$0] == nil }.count
                let removed = current.keys.filter { keys[$0] == nil }.count
                current = keys
                return (added, removed)
            }
            logger.notice("allow list reloaded", metadata: ["keys": "\(keys.count)", "added": "\(added)", "removed": "\(removed)", "folder": "\(directory)"])
        } catch {
            logger.error("allow list not reloaded; the old one stays in force", metadata: ["error": "\(error)"])
        }
    }

    /// The endpoint actually bound (with the real port), once bound.
    public var endpoint: String? { boundEndpoint.withLock { $0 } }

    /// Runs the sweep to its end on the calling thread (use `run()` from async code).
    public func runBlocking(progress: @Sendable (CoordinatorProgress) -> Void) throws -> CoordinatorOutcome {
        let started = ContinuousClock.now
        let store = try ResultStore(path: options.database)
        let seeds: [Scheduler.CellSeed]
        var maxAttempts = options.maxAttempts
        if case .plaintext(let insecure) = options.security, !Endpoint.isLocal(options.bind), !insecure {
            throw SecurityError(message: Self.plaintextRefusal(options.bind))
        }
        switch work {
        case .sweep(let spec):
            seeds = try store.prepare(spec: spec, cells: try spec.cells(), retryFailed: options.retryFailed, force: options.force)
            if let fromFile = spec.maxAttempts { maxAttempts = fromFile }
        case .cells(let name, let cells):
            seeds = try store.prepare(name: name, cells: cells)
        }
        var scheduler = Scheduler(
            configuration: Scheduler.Configuration(
                heartbeatInterval: options.heartbeat, liveness: options.liveness, maxAttempts: maxAttempts,
                session: UInt32.random(in: 1...UInt32.max)
            ),
            cells: seeds
        )
        let alreadyDone = scheduler.counts[.done] ?? 0
        logger.info("sweep loaded", metadata: [
            "cells": "\(scheduler.cellCount)", "done": "\(alreadyDone)", "failed": "\(scheduler.counts[.failed] ?? 0)", "db": "\(options.database)",
        ])

        let context = try Context()
        var zap: ZAPHandler?
        defer { zap?.stop() }
        let router = try Socket(context, .router)
        switch options.security {
        case .curve(let keys, let directory):
            allowList.withLock { $0 = [:] }
            let loaded = try KeyFiles.readAllowList(directory)
            allowList.withLock { $0 = loaded }
            // The handler is bound before the socket listens, so no handshake escapes it.
            zap = try ZAPHandler(context: context) { [self] request in authorize(request) }
            try router.makeCurveServer(secretKey: keys.secretKey, zapDomain: "isosweep")
            logger.info("CURVE on", metadata: ["server_key": "\(keys.publicKey)", "allowed_workers": "\(loaded.count)", "allow": "\(directory)"])
        case .plaintext(let insecure):
            if insecure && !Endpoint.isLocal(options.bind) {
                logger.warning("INSECURE: plain TCP on \(options.bind): anyone who reaches this port can take cells and send results. Use CURVE (isosweep keygen).")
            }
        }
        // Handshakes that fail before ZAP (plain text to a CURVE port, wrong server key) are only
        // visible as monitor events: watch them so that every refusal is logged with its peer.
        let monitor = try Monitor(context, watching: router)
        var handshaking: [String] = []
        try router.setOption(ZMQ_ROUTER_MANDATORY, Int32(1))
        try router.setOption(ZMQ_SNDHWM, Int32(100_000))
        try router.setOption(ZMQ_RCVHWM, Int32(100_000))
        try router.bind(options.bind)
        let endpoint = router.lastEndpoint
        boundEndpoint.withLock { $0 = endpoint }
        logger.info("listening", metadata: ["endpoint": "\(endpoint)"])
        defer { router.close() }

        var shell = Shell(router: router, store: store, logger: logger, allowEmptyResults: { if case .cells = work { true } else { false } }())
        var lastInsecureWarning = ContinuousClock.now
        let tickEvery = max(Duration.milliseconds(10), options.heartbeat / 4)
        var lastTick = ContinuousClock.now
        var lastProgress = ContinuousClock.now - .seconds(10)
        var stopDeadline: ContinuousClock.Instant?
        var firstDispatch: ContinuousClock.Instant?
        var lastCommit: ContinuousClock.Instant?
        while !scheduler.isFinished || shell.hasPendingWrites {
            if scheduler.isFinished, shell.storeFailure != nil, stopRequested.load(ordering: .relaxed) { break }
            if stopRequested.load(ordering: .relaxed) && stopDeadline == nil {
                logger.notice("stopping: no more dispatch; committing what arrives for \(options.drainGrace)")
                scheduler.stopDispatching()
                stopDeadline = ContinuousClock.now + options.drainGrace
            }
            if let stopDeadline, ContinuousClock.now >= stopDeadline || (scheduler.counts[.leased] ?? 0) == 0 { break }
            _ = try Poller.readable([router, monitor.pollable], timeoutMilliseconds: Int(tickEvery.milliseconds))
            while let event = monitor.next() {
                switch event {
                case .accepted(let peer): handshaking.append(peer)
                case .handshakeSucceeded: if !handshaking.isEmpty { handshaking.removeFirst() }
                case .handshakeFailed(let reason):
                    let peer = handshaking.isEmpty ? "unknown peer" : handshaking.removeFirst()
                    logRefusal(peer: peer, reason: reason)
                case .disconnected: break
                }
                if handshaking.count > 1000 { handshaking.removeFirst(handshaking.count - 1000) }
            }
            var directives: [Scheduler.Directive] = []
            var received = 0
            while received < 20_000, let message = try router.receive(dontWait: true) {
                received += 1
                let now = ContinuousClock.now
                if let event = shell.decode(message, now: now) {
                    directives += scheduler.on(event, now: now)
                }
            }
            let now = ContinuousClock.now
            if now - lastTick >= tickEvery {
                directives += scheduler.on(.tick, now: now)
                lastTick = now
            }
            if case .plaintext(true) = options.security, !Endpoint.isLocal(options.bind), now - lastInsecureWarning >= .seconds(3600) {
                logger.warning("INSECURE: still serving plain TCP on \(options.bind)")
                lastInsecureWarning = now
            }
            if firstDispatch == nil && directives.contains(where: \.isShard) { firstDispatch = .now }
            let committedBefore = scheduler.counts[.done] ?? 0
            // Also retries writes the store refused earlier (at most once a second).
            shell.execute(directives, scheduler: &scheduler)
            if (scheduler.counts[.done] ?? 0) > committedBefore { lastCommit = .now }
            if now - lastProgress >= .milliseconds(500) || scheduler.isFinished {
                lastProgress = now
                let report = CoordinatorProgress(
                    total: scheduler.cellCount, done: scheduler.counts[.done] ?? 0, failed: scheduler.counts[.failed] ?? 0,
                    leased: scheduler.counts[.leased] ?? 0, workers: scheduler.workersAlive,
                    committedThisRun: (scheduler.counts[.done] ?? 0) - alreadyDone, elapsed: (now - started).seconds
                )
                progress(report)
                publish(report, scheduler: scheduler, malformed: shell.complaints.count, now: now)
            }
        }
        // Let the last acknowledgements leave before the socket closes (linger is bounded).
        let outcome = CoordinatorOutcome(
            total: scheduler.cellCount, done: scheduler.counts[.done] ?? 0, failed: scheduler.counts[.failed] ?? 0,
            interrupted: !scheduler.isFinished, latencies: scheduler.latencies, seconds: (ContinuousClock.now - started).seconds,
            dispatchSeconds: firstDispatch.flatMap { first in lastCommit.map { ($0 - first).seconds } } ?? 0
        )
        logger.info("sweep \(outcome.interrupted ? "stopped" : "finished")", metadata: [
            "done": "\(outcome.done)", "failed": "\(outcome.failed)", "total": "\(outcome.total)",
            "malformed_messages_dropped": "\(shell.complaints.count)",
        ])
        return outcome
    }

    /// Runs the sweep on a dedicated thread; a graceful shutdown of the task stops it cleanly.
    public func run(progress: @escaping @Sendable (CoordinatorProgress) -> Void) async throws -> CoordinatorOutcome {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<CoordinatorOutcome, any Error>) in
            let thread = Thread { [self] in
                do {
                    continuation.resume(returning: try runBlocking(progress: progress))
                } catch {
                    continuation.resume(throwing: error)
                }
            }
            thread.name = "isosweep-coordinator"
            thread.start()
        }
    }
}

extension CoordinatorEngine {
    /// Refreshes the status snapshot and the Prometheus metrics.
    func publish(_ p: CoordinatorProgress, scheduler: Scheduler, malformed: Int, now: ContinuousClock.Instant) {
        var counts: [String: Int] = [:]
        for state in Scheduler.CellState.allCases { counts[state.rawValue] = scheduler.counts[state] ?? 0 }
        let name: String
        switch work {
        case .sweep(let spec): name = spec.name
        case .cells(let n, _): name = n
        }
        let snapshot = StatusSnapshot(
            sweep: name, database: options.database, total: p.total, counts: counts, cellsPerSecond: p.rate, etaSeconds: p.eta,
            elapsedSeconds: p.elapsed, workers: scheduler.workerSummaries(now: now),
            failures: scheduler.failures.prefix(100).map { StatusSnapshot.Failure(key: $0.key, attempts: $0.attempts, error: $0.error) },
            finished: scheduler.isFinished
        )
        latestStatus.withLock { $0 = snapshot }
        metrics.update(counts: counts, workers: p.workers, rate: p.rate, malformed: malformed, refusals: refusals.withLock { $0.count })
    }

    /// The ZAP decision: CURVE clients whose key is on the allow list.
    func authorize(_ request: ZAPHandler.Request) -> ZAPHandler.Decision {
        guard request.mechanism == "CURVE", let key = request.clientKey else {
            logRefusal(peer: request.address, reason: "mechanism \(request.mechanism) is not CURVE")
            return .refuse(reason: "CURVE required")
        }
        if let file = allowList.withLock({ $0[key] }) {
            logger.debug("admitted a worker key", metadata: ["peer": "\(request.address)", "key_file": "\(file)"])
            return .allow(userID: file)
        }
        logRefusal(peer: request.address, reason: "key \(key) is not in the allow list")
        return .refuse(reason: "key not allowed")
    }

    /// Logs a refused connection, at most once per peer host (and reason) per minute.
    func logRefusal(peer: String, reason: String) {
        let host = peer.split(separator: ":").first.map(String.init) ?? peer
        let due = refusals.withLock { $0.shouldLog(Array((host + reason.prefix(24)).utf8), now: .now) }
        if due {
            logger.warning("refused a connection", metadata: ["peer": "\(peer)", "reason": "\(reason)"])
        }
    }

    /// Why plain TCP off loopback is refused, and what to do instead.
    public static func plaintextRefusal(_ bind: String) -> String {
        """
        refusing to listen on \(bind) without encryption: plain TCP is allowed only on loopback. \
        Make keys with `isosweep keygen --out keys --name coordinator` (and one per worker), put the workers' \
        .pub files in a folder, and pass --curve-secret keys/coordinator.secret --allow FOLDER; \
        or pass --insecure if this network is truly private
        """
    }
}

/// Turns frames into events and directives into socket sends and store writes.
struct Shell {
    let router: Socket
    let store: ResultStore
    let logger: Logger
    /// No-op benchmark cells carry no metrics; study cells must.
    let allowEmptyResults: Bool
    var complaints = ComplaintLimiter()
    let decoder = JSONDecoder()
    /// Writes the store could not take yet (disk full, read-only): kept, retried, never acknowledged.
    var pendingCommits: [Scheduler.Commit] = []
    var pendingUpdates: [Scheduler.CellUpdate] = []
    var pendingWorkers: [Scheduler.WorkerRecord] = []
    var storeFailure: (since: ContinuousClock.Instant, lastTry: ContinuousClock.Instant)?

    /// A received ROUTER message as a scheduler event, or nil (logged) when it is malformed.
    mutating func decode(_ received: (frames: [[UInt8]], truncated: Bool), now: ContinuousClock.Instant) -> Scheduler.Event? {
        let frames = received.frames
        guard let identity = frames.first, !identity.isEmpty else { return nil }
        guard !received.truncated else {
            complain(identity, "a message of more than \(Socket.maximumFrames) frames", now: now)
            return nil
        }
        let message: Message
        do {
            message = try Message.decode(Array(frames.dropFirst()))
        } catch {
            complain(identity, error.reason, now: now)
            if error.versionMismatch {
                _ = try? router.send([identity] + Message.refuse(reason: "\(error.reason): run the same isosweep build everywhere", fatal: true).encode(), dontWait: true)
            }
            return nil
        }
        if case .result(_, let key, _, let payload) = message, let problem = validate(payload, key: key) {
            complain(identity, "RESULT for \(key.prefix(12)): \(problem)", now: now)
            return nil
        }
        return .message(from: identity, message)
    }

    /// A result must be the metrics of exactly the cell it claims to be (or empty for a no-op cell).
    func validate(_ payload: [UInt8], key: String) -> String? {
        if payload.isEmpty { return allowEmptyResults ? nil : "a study cell's result must carry its metrics" }
        guard let result = try? decoder.decode(CellResult.self, from: Data(payload)) else { return "the metrics are not a cell result" }
        guard CellWork.train(result.parameters).key == key else { return "its parameters do not hash to its key" }
        return nil
    }

    mutating func complain(_ identity: [UInt8], _ what: String, now: ContinuousClock.Instant) {
        if complaints.shouldLog(identity, now: now) {
            logger.warning("dropped a malformed message", metadata: ["peer": "\(hex(identity))", "reason": "\(what)"])
        }
    }

    /// Carries out directives: state and results are committed in one transaction first, then
    /// the acknowledgements that the commit makes safe, then every other send. When the store
    /// cannot write (disk full, read-only), nothing is acknowledged, dispatching pauses, and the
    /// writes are retried every second until they succeed.
    mutating func execute(_ directives: [Scheduler.Directive], scheduler: inout Scheduler) {
        var sends: [([UInt8], Message)] = []
        for directive in directives {
            switch directive {
            case .send(let to, let message): sends.append((to, message))
            case .commit(let commit): pendingCommits.append(commit)
            case .persist(let update): pendingUpdates.append(update)
            case .recordWorker(let record): pendingWorkers.append(record)
            case .log(let level, let text): log(level, text)
            }
        }
        // Sends decided before the commit (shards, heartbeats, welcomes) need not wait for it.
        send(sends)
        flush(scheduler: &scheduler)
    }

    var hasPendingWrites: Bool { !pendingCommits.isEmpty || !pendingUpdates.isEmpty || !pendingWorkers.isEmpty }

    /// Writes what is pending; on success acknowledges the commits.
    mutating func flush(scheduler: inout Scheduler) {
        if pendingCommits.isEmpty && pendingUpdates.isEmpty && pendingWorkers.isEmpty { return }
        let now = ContinuousClock.now
        if let failure = storeFailure, now - failure.lastTry < .seconds(1) { return }
        do {
            try store.apply(updates: pendingUpdates, commits: pendingCommits, workers: pendingWorkers)
        } catch {
            if storeFailure == nil {
                logger.error("cannot write the database: dispatching paused, results are not acknowledged; retrying every second", metadata: ["error": "\(error.message)"])
                scheduler.stopDispatching()
                storeFailure = (now, now)
            } else {
                storeFailure!.lastTry = now
            }
            return
        }
        if let failure = storeFailure {
            logger.notice("the database takes writes again: dispatching resumed", metadata: ["paused_ms": "\((now - failure.since).milliseconds)"])
            storeFailure = nil
            scheduler.resumeDispatching()
        }
        let commits = pendingCommits
        pendingCommits = []
        pendingUpdates = []
        pendingWorkers = []
        if !commits.isEmpty {
            execute(scheduler.on(.committed(commits), now: .now), scheduler: &scheduler)
        }
    }

    func send(_ sends: [([UInt8], Message)]) {
        for (identity, message) in sends {
            do {
                if try !router.send([identity] + message.encode(), dontWait: true) {
                    logger.debug("peer gone or busy; message dropped", metadata: ["peer": "\(hex(identity))", "message": "\(message.name)"])
                }
            } catch {
                logger.warning("send failed", metadata: ["peer": "\(hex(identity))", "error": "\(error)"])
            }
        }
    }

    func log(_ level: Scheduler.LogLevel, _ text: String) {
        switch level {
        case .debug: logger.debug("\(text)")
        case .info: logger.info("\(text)")
        case .warning: logger.warning("\(text)")
        case .error: logger.error("\(text)")
        }
    }
}

/// Logs at most one complaint per sender per minute, so a hostile peer cannot flood the log.
struct ComplaintLimiter {
    var last: [[UInt8]: ContinuousClock.Instant] = [:]
    /// Complaints seen in total (logged or not).
    var count = 0

    mutating func shouldLog(_ peer: [UInt8], now: ContinuousClock.Instant) -> Bool {
        count += 1
        if let previous = last[peer], now - previous < .seconds(60) { return false }
        if last.count > 10_000 { last.removeAll() }
        last[peer] = now
        return true
    }
}

extension Scheduler.Directive {
    var isShard: Bool {
        if case .send(_, .shard) = self { return true }
        return false
    }
}

func hex(_ bytes: [UInt8]) -> String {
    bytes.prefix(16).map { String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined()
}
