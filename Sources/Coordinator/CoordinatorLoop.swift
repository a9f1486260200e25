import Diagnostics
import Logging
import SweepCore
import Synchronization
import TrainingCore
import ZeroMQ

/// The coordinator's main loop: waits on the ROUTER socket, feeds the scheduler messages and
/// ticks, carries out its directives, and reports progress, until every cell is finished or a
/// stop's grace runs out.
struct CoordinatorLoop {
    let engine: CoordinatorEngine
    let router: Socket
    let monitor: Monitor
    let writer: StoreWriter
    var intake: MessageIntake
    let started: ContinuousClock.Instant
    let progress: @Sendable (CoordinatorProgress) -> Void
    /// The sweep's cells still loading.
    let feed: SweepFeed
    /// Set when a stop was asked for: dispatching stays off until the loop ends.
    var stopDeadline: ContinuousClock.Instant?
    /// Peers whose handshake is under way, oldest first, to name the one a failure belongs to.
    var handshaking: [String] = []
    /// Users' requeue and cancel requests, read from the database.
    var requests: RequestPoller
    /// The sweep's `refine:` rounds, if it has one.
    var refiner: RefineDriver?
    /// The checkpoints of unfinished cells, beside the database.
    let checkpoints: CheckpointFiles
    /// The cells each worker said at HELLO it is still computing: when they are leased back to it
    /// (adopted), it needs no checkpoint.
    var offered: [[UInt8]: Set<String>] = [:]

    /// Messages read in one turn at most, so that ticks and commits keep their pace under load.
    static let messagesPerTurn = 20_000

    mutating func run(_ scheduler: inout Scheduler) throws -> CoordinatorOutcome {
        let options = engine.options
        // Cells done before this run (counted as their chunks load).
        var alreadyDone = 0
        var lastInsecureWarning = ContinuousClock.now
        let tickEvery = max(Duration.milliseconds(10), options.heartbeat / 4)
        var lastTick = ContinuousClock.now
        var lastProgress = ContinuousClock.now - .seconds(10)
        var firstDispatch: ContinuousClock.Instant?
        var lastCommit: ContinuousClock.Instant?
        while try !finishedAfterRefining(&scheduler) {
            if scheduler.isFinished, writer.storeFailure != nil, engine.stopRequested.load(ordering: .relaxed) { break }
            if engine.stopRequested.load(ordering: .relaxed) && stopDeadline == nil {
                engine.logger.notice("stopping: no more dispatch; committing what arrives for \(options.drainGrace)")
                scheduler.stopDispatching()
                stopDeadline = ContinuousClock.now + options.drainGrace
            }
            if let stopDeadline, ContinuousClock.now >= stopDeadline || (scheduler.counts[.leased] ?? 0) == 0 { break }
            // While the sweep loads, the loaded chunks are taken every few milliseconds.
            let loading = scheduler.loading
            // While a transaction is being written, every millisecond, to acknowledge it soon.
            let wait =
                writer.isWriting ? 1 : loading ? min(5, Int(tickEvery.milliseconds)) : Int(tickEvery.milliseconds)
            _ = try Poller.readable([router, monitor.pollable], timeoutMilliseconds: wait)
            watchHandshakes()
            var directives: [Scheduler.Directive] = []
            if loading {
                let before = scheduler.counts[.done] ?? 0
                directives += try feed.step(&scheduler, logger: engine.logger, now: .now)
                alreadyDone += (scheduler.counts[.done] ?? 0) - before
            }
            var received = 0
            while received < Self.messagesPerTurn, let message = try router.receive(dontWait: true) {
                received += 1
                let now = ContinuousClock.now
                if let event = intake.decode(message, now: now) {
                    if case .message(let identity, .hello(let hello)) = event, !checkpoints.isEmpty {
                        offered[identity] = Set(hello.resumable)
                    }
                    directives += scheduler.on(event, now: now)
                }
            }
            let now = ContinuousClock.now
            if !loading { directives += requests.poll(&scheduler, now: now) }
            if now - lastTick >= tickEvery {
                directives += scheduler.on(.tick, now: now)
                lastTick = now
            }
            if case .plaintext(true) = options.security, !Endpoint.isLocal(options.bind),
                now - lastInsecureWarning >= .seconds(3600)
            {
                engine.logger.warning("INSECURE: still serving plain TCP on \(options.bind)")
                lastInsecureWarning = now
            }
            if firstDispatch == nil && directives.contains(where: \.isShard) { firstDispatch = .now }
            let committedBefore = scheduler.counts[.done] ?? 0
            // Also retries writes the store refused earlier (at most once a second).
            execute(directives, &scheduler)
            if (scheduler.counts[.done] ?? 0) > committedBefore { lastCommit = .now }
            if now - lastProgress >= .milliseconds(500) || scheduler.isFinished {
                lastProgress = now
                var report = CoordinatorProgress(
                    total: scheduler.cellCount,
                    done: scheduler.counts[.done] ?? 0,
                    failed: scheduler.counts[.failed] ?? 0,
                    leased: scheduler.counts[.leased] ?? 0,
                    workers: scheduler.workersAlive,
                    committedThisRun: (scheduler.counts[.done] ?? 0) - alreadyDone,
                    elapsed: (now - started).seconds
                )
                report.remainingCost = scheduler.remainingCost
                report.costDoneThisRun = scheduler.costDoneThisRun
                report.waiting = scheduler.waitingCount
                progress(report)
                engine.publish(report, scheduler: scheduler, malformed: intake.complaints.count, now: now)
            }
        }
        // What was collected or is being written reaches the disk, and is acknowledged, first.
        while writer.hasPendingWrites && writer.storeFailure == nil {
            writer.waitForWrite()
            execute([], &scheduler)
        }
        // The workers still registered are no longer served: the store says when they were last seen.
        writer.recordWorkers(scheduler.workerRecords(alive: false))
        let outcome = CoordinatorOutcome(
            total: scheduler.cellCount,
            done: scheduler.counts[.done] ?? 0,
            failed: scheduler.counts[.failed] ?? 0,
            interrupted: !scheduler.isFinished,
            latencyMilliseconds: scheduler.latencyMilliseconds,
            seconds: (ContinuousClock.now - started).seconds,
            dispatchSeconds: firstDispatch.flatMap { first in lastCommit.map { ($0 - first).seconds } } ?? 0,
            firstDispatchSeconds: firstDispatch.map { ($0 - started).seconds } ?? 0
        )
        engine.logger.info(
            "sweep \(outcome.interrupted ? "stopped" : "finished")",
            metadata: [
                "done": "\(outcome.done)", "failed": "\(outcome.failed)", "total": "\(outcome.total)",
                "malformed_messages_dropped": "\(intake.complaints.count)",
            ]
        )
        return outcome
    }

    /// Handshakes that fail before ZAP (plain text to a CURVE port, a wrong server key) are only
    /// visible as monitor events: every refusal is logged with its peer.
    mutating func watchHandshakes() {
        while let event = monitor.next() {
            switch event {
            case .accepted(let peer): handshaking.append(peer)
            case .handshakeSucceeded: if !handshaking.isEmpty { handshaking.removeFirst() }
            case .handshakeFailed(let reason):
                let peer = handshaking.isEmpty ? "unknown peer" : handshaking.removeFirst()
                engine.logRefusal(peer: peer, reason: reason)
            case .disconnected: break
            }
            if handshaking.count > 1000 { handshaking.removeFirst(handshaking.count - 1000) }
        }
    }

    /// Carries out directives: sends decided before a commit (shards, heartbeats, welcomes) go at
    /// once; state and results are committed in one transaction, and only then are they
    /// acknowledged. When the store cannot write, nothing is acknowledged and dispatching pauses
    /// until it can (retried every second).
    /// Whether the sweep is over: every cell finished and written, and no refine round adds
    /// cells (a round that does puts them in the scheduler and the loop goes on).
    mutating func finishedAfterRefining(_ scheduler: inout Scheduler) throws -> Bool {
        guard scheduler.isFinished && !writer.hasPendingWrites else { return false }
        guard let refiner, stopDeadline == nil, !engine.stopRequested.load(ordering: .relaxed),
            writer.storeFailure == nil
        else { return true }
        var seeds = try refiner.nextRound()
        guard !seeds.isEmpty else { return true }
        try CoordinatorEngine.addRequirements(to: &seeds, resources: scheduler.configuration.limits)
        scheduler.add(seeds)
        execute(scheduler.dispatchNow(now: .now), &scheduler)
        return false
    }

    mutating func execute(_ directives: [Scheduler.Directive], _ scheduler: inout Scheduler) {
        var sends: [([UInt8], Message)] = []
        for directive in directives {
            switch directive {
            case .send(let to, let message): sends.append((to, message))
            case .commit(let commit): writer.pendingCommits.append(commit)
            case .persist(let update):
                writer.pendingUpdates.append(update)
                // An attempt that ended leaves no half-received checkpoint open.
                if update.state != .leased && !checkpoints.isEmpty { checkpoints.discard(update.key) }
            case .recordWorker(let record): writer.pendingWorkers.append(record)
            case .log(let level, let text): engine.log(level, text)
            case .storeCheckpoint(let chunk): store(chunk)
            }
        }
        send(sends)
        switch writer.flush() {
        case .nothing:
            break
        case .paused:
            scheduler.stopDispatching()
        case .written(let commits, let resumed):
            if resumed && stopDeadline == nil { scheduler.resumeDispatching() }
            if !checkpoints.isEmpty {
                for commit in commits where checkpoints.holds(commit.key) { checkpoints.delete(commit.key) }
            }
            if !commits.isEmpty { execute(scheduler.on(.committed(commits), now: .now), &scheduler) }
        }
    }

    /// Keeps a chunk of a cell's checkpoint; a failure (a full disk) is logged, and the cell
    /// keeps its previous checkpoint.
    func store(_ chunk: Message.CheckpointChunk) {
        do {
            if let step = try checkpoints.add(chunk) {
                engine.logger.info(
                    "stored a checkpoint",
                    metadata: ["key": "\(chunk.key.prefix(12))", "step": "\(step)", "bytes": "\(chunk.total)"]
                )
            }
        } catch {
            engine.logger.error("\(error)")
        }
    }

    /// Sends a shard to `identity`; its cells with a stored checkpoint say how large it is, and
    /// RESUME messages bring each after it, a chunk at a time (one checkpoint is read at once).
    /// A cell the worker offered at HELLO (it is computing it) gets none.
    mutating func send(shard lease: UInt64, _ cells: [Message.Assignment], to identity: [UInt8]) {
        let adopted = offered.removeValue(forKey: identity) ?? []
        var cells = cells
        var resuming: [(index: Int, step: UInt64, bytes: [UInt8])] = []
        if !checkpoints.stored.isEmpty {
            for index in cells.indices where checkpoints.stored[cells[index].key] != nil {
                let key = cells[index].key
                guard !adopted.contains(key) else { continue }
                guard let (step, bytes) = checkpoints.read(key) else {
                    engine.logger.warning("cannot read the checkpoint of cell \(key.prefix(12)); it starts from step 0")
                    continue
                }
                cells[index].checkpointBytes = UInt64(bytes.count)
                resuming.append((index, step, bytes))
            }
        }
        send(.shard(lease: lease, cells: cells), to: identity)
        for (index, step, bytes) in resuming {
            let cell = cells[index]
            for chunk in Message.CheckpointChunk.split(
                bytes,
                key: cell.key,
                lease: lease,
                attempt: cell.attempt,
                step: step
            ) {
                send(.resume(chunk), to: identity)
            }
        }
    }

    func send(_ message: Message, to identity: [UInt8]) {
        do {
            if try !router.send([identity] + message.encode(), dontWait: true) {
                engine.logger.debug(
                    "peer gone or busy; message dropped",
                    metadata: ["peer": "\(hex(identity))", "message": "\(message.name)"]
                )
            }
        } catch {
            engine.logger.warning("send failed", metadata: ["peer": "\(hex(identity))", "error": "\(error)"])
        }
    }

    mutating func send(_ sends: [([UInt8], Message)]) {
        for (identity, message) in sends {
            if case .shard(let lease, let cells) = message {
                send(shard: lease, cells, to: identity)
            } else {
                send(message, to: identity)
            }
        }
    }
}

extension Scheduler.Directive {
    var isShard: Bool {
        if case .send(_, .shard) = self { return true }
        return false
    }
}

/// The first bytes of a ROUTER identity in hex, for logs.
func hex(_ bytes: [UInt8]) -> String {
    bytes.prefix(16).map { String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16) }
        .joined()
}
