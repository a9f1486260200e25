public import SweepCore
import TrainingCore

/// A cell handed to a slot.
public struct Job: Sendable, Equatable {
    /// The coordinator session that leased it (WELCOME's session).
    public var session: UInt64
    public var lease: UInt64
    public var key: String
    public var attempt: UInt16
    /// The cell's work as JSON.
    public var work: [UInt8]
    /// What the cell may use.
    public var limits: ResourceLimits
    /// The checkpoint the cell resumes from (empty: it starts from step 0), and its step.
    public var checkpoint: [UInt8] = []
    public var resumeStep: UInt64?

    public init(
        session: UInt64,
        lease: UInt64,
        key: String,
        attempt: UInt16,
        work: [UInt8],
        limits: ResourceLimits = ResourceLimits()
    ) {
        self.session = session
        self.lease = lease
        self.key = key
        self.attempt = attempt
        self.work = work
        self.limits = limits
    }
}

/// A job a slot finished, and how it ended.
public struct Outcome: Sendable, Equatable {
    /// How a job ended: what RESULT or FAILED carries to the coordinator.
    public enum Ending: Sendable, Equatable {
        /// The cell's result, as JSON.
        case result([UInt8])
        /// Why it failed.
        case failure(String)
    }

    /// The job, under the lease it was last bound to.
    public var job: Job
    /// How it ended.
    public var ending: Ending

    public init(job: Job, ending: Ending) {
        self.job = job
        self.ending = ending
    }

    /// Whether it gave a result.
    public var succeeded: Bool {
        if case .result = ending { return true }
        return false
    }
}

/// Why a worker stopped.
public enum WorkerExit: Sendable, Equatable {
    /// Asked to stop (SIGTERM/SIGINT).
    case stopped
    /// The coordinator refused it for good (e.g. another protocol version).
    case refused(String)
}

/// The worker's side of the protocol as a pure state machine (zguide's Paranoid Pirate with
/// credit-based flow): events in, directives out, no sockets, threads or clocks of its own.
///
/// Its rules: register with HELLO (offering cells still held here and results not yet
/// acknowledged) and say HELLO again after a non-fatal REFUSE; grant credit for free slots plus
/// prefetch, never more; hand every received cell to the slots at once (they take them in order,
/// so a slot never waits for this loop); send each result under the latest lease of its cell and
/// keep it until it is acknowledged; heartbeat when silent; treat a silent coordinator as gone
/// and reconnect with exponential back-off; take back the cells no slot has started when a
/// session ends or a stop begins (their leases end); on stop, let started cells finish within
/// the grace period, then say BYE. `WorkerEngine` is its shell.
public struct WorkerCore: Sendable {
    /// Identity, capacity and timing.
    public struct Configuration: Sendable {
        public var workerID: String
        public var build: String
        public var host: String
        /// Cells run at once.
        public var slots: Int
        /// Extra cells held so that a slot never waits a round trip.
        public var prefetch: Int
        /// Heartbeat interval and missed heartbeats until the coordinator's WELCOME says otherwise.
        public var heartbeat: Duration
        public var liveness: Int
        /// The first wait between connection attempts; it doubles up to `maximumBackoff`.
        public var initialBackoff: Duration = .milliseconds(250)
        public var maximumBackoff: Duration
        /// On stop, how long running cells may take before they are handed back.
        public var grace: Duration
        /// Most unacknowledged results kept.
        public var maximumOffers = 10_000
        /// Cores and bytes of memory its cells may use together (advertised in HELLO).
        public var cores = 1
        public var memoryBytes: UInt64 = .max
        /// The OpenBLAS kernels its cells run (advertised in HELLO).
        public var blasCore = "unknown"

        public init(
            workerID: String,
            build: String,
            host: String,
            slots: Int,
            prefetch: Int,
            heartbeat: Duration,
            liveness: Int,
            maximumBackoff: Duration,
            grace: Duration
        ) {
            self.workerID = workerID
            self.build = build
            self.host = host
            self.slots = slots
            self.prefetch = prefetch
            self.heartbeat = heartbeat
            self.liveness = liveness
            self.maximumBackoff = maximumBackoff
            self.grace = grace
        }

        /// Cells held at once: running and queued for a slot.
        public var capacity: Int { slots + prefetch }
    }

    /// What happened.
    public enum Event: Sendable {
        /// Time passed.
        case tick
        /// A decoded message from the coordinator.
        case received(Message)
        /// A message from the coordinator that did not decode.
        case malformed(String)
        /// Slots finished these jobs.
        case finished([Outcome])
        /// The handshake with the coordinator failed (CURVE: a key it does not allow).
        case handshakeFailed(String)
        /// SIGTERM or SIGINT.
        case stop
        /// Jobs taken back from the slots' queue before any slot started them (after `.recall`).
        case unstarted([Job])
        /// A running cell's runner saved a checkpoint at `step`.
        case checkpointed(key: String, step: UInt64, bytes: [UInt8])
    }

    /// What the shell must do.
    public enum Directive: Sendable, Equatable {
        /// Close any connection and open a new one to the coordinator.
        case connect
        case send(Message)
        /// Queue this job for the slots (they take them in order).
        case run(Job)
        /// Take back the queued jobs no slot has started, and report them as `.unstarted`.
        case recall
        /// Send PROGRESS with the latest report of each running cell (it counts as a heartbeat).
        case sendProgress
        case log(LogLevel, String)
        /// Stop the loop: running cells abandon their work, slots are joined.
        case exit(WorkerExit)
    }

    /// Where the worker stands with the coordinator.
    public enum Connection: Sendable, Equatable {
        case connecting
        case registered(session: UInt64)
    }

    public let configuration: Configuration
    public private(set) var connection = Connection.connecting
    var heartbeat: Duration
    var liveness: Int
    var backoff: Duration
    var nextHello: ContinuousClock.Instant
    var lastHeard: ContinuousClock.Instant
    var lastSent: ContinuousClock.Instant
    var lastProgress: ContinuousClock.Instant
    /// Jobs handed to the slots and not finished, by cell key, each with the lease its result
    /// goes out under (rebound when the coordinator leases a running cell back after a restart).
    var jobs: [String: Job] = [:]
    /// Leased cells whose checkpoint is still arriving (RESUME), by key, with the bytes so far:
    /// each is held (in `jobs`) but runs only once its checkpoint is whole.
    var arriving: [String: (expected: UInt64, bytes: [UInt8], last: ContinuousClock.Instant)] = [:]
    /// How long a cell waits for the next chunk of its checkpoint before it runs from step 0
    /// (a chunk the coordinator could not send is never sent again).
    public static let resumePatience: Duration = .seconds(60)
    /// Credit granted in this session and not yet used by a shard.
    public private(set) var outstandingCredit = 0
    /// Results not yet acknowledged: offered at HELLO, resent under a new lease if adopted.
    public private(set) var offers: [String: Outcome] = [:]
    var stopDeadline: ContinuousClock.Instant?
    var lastHandshakeComplaint: ContinuousClock.Instant?
    /// Set once `.exit` was directed: nothing happens after it.
    public private(set) var exited = false

    /// A worker that will say HELLO at its first tick.
    public init(configuration: Configuration, now: ContinuousClock.Instant) {
        self.configuration = configuration
        heartbeat = configuration.heartbeat
        liveness = configuration.liveness
        backoff = configuration.initialBackoff
        nextHello = now
        lastHeard = now
        lastSent = now
        lastProgress = now
    }

    /// Jobs held: running, or queued for a slot.
    public var inFlight: Int { jobs.count }

    /// Keys of the jobs held.
    public var held: Set<String> { Set(jobs.keys) }

    /// Applies an event at time `now` and returns what the shell must do.
    public mutating func on(_ event: Event, now: ContinuousClock.Instant) -> [Directive] {
        guard !exited else { return [] }
        var out: [Directive] = []
        switch event {
        case .tick:
            timers(now: now, &out)
        case .received(let message):
            receive(message, now: now, &out)
        case .malformed(let reason):
            out.append(.log(.warning, "dropped a malformed message from the coordinator: \(reason)"))
        case .finished(let outcomes):
            finish(outcomes, now: now, &out)
        case .handshakeFailed(let reason):
            if lastHandshakeComplaint.map({ now - $0 > .seconds(60) }) ?? true {
                lastHandshakeComplaint = now
                out.append(
                    .log(
                        .error,
                        """
                        the coordinator refused the connection (\(reason)): check that this worker's public key is in its \
                        --allow folder and that --server-key is its key
                        """
                    )
                )
            }
        case .stop:
            if stopDeadline == nil {
                dropArriving()
                out.append(.recall)
                stopDeadline = now + configuration.grace
                out.append(
                    .log(
                        .notice,
                        "stopping: \(jobs.count) held cells may finish within \(configuration.grace), then the rest are handed back"
                    )
                )
            }
        case .unstarted(let unstarted):
            // Their leases end with the session or the stop: the coordinator hands them out again
            // (at BYE, or when it notices the session is gone).
            for job in unstarted { jobs.removeValue(forKey: job.key) }
        case .checkpointed(let key, let step, let bytes):
            forward(checkpoint: bytes, of: key, step: step, now: now, &out)
        }
        if let stopDeadline, jobs.isEmpty || now >= stopDeadline {
            if case .registered = connection { send(.bye, now: now, &out) }
            out.append(.log(.info, "worker stopped; \(jobs.count) unfinished cells handed back"))
            out.append(.exit(.stopped))
            exited = true
        }
        return out
    }

    /// HELLO, offering the cells held here (after a recall: the started ones) and the results not
    /// yet acknowledged.
    var hello: Message {
        .hello(
            Message.Hello(
                protocolVersion: Wire.protocolVersion,
                scienceVersion: UInt16(clamping: scienceVersion),
                workerID: configuration.workerID,
                build: configuration.build,
                host: configuration.host,
                slots: UInt16(clamping: configuration.slots),
                cores: UInt16(clamping: max(1, configuration.cores)),
                memoryBytes: max(Wire.minimumWorkerMemory, configuration.memoryBytes),
                blasCore: configuration.blasCore,
                resumable: Array(held.union(offers.keys).sorted().prefix(Wire.maximumShardCells))
            )
        )
    }

    private mutating func receive(_ message: Message, now: ContinuousClock.Instant, _ out: inout [Directive]) {
        if message.isFromWorker {
            // Not a coordinator: most likely this very socket. When the coordinator's port is in
            // the ephemeral range and nothing listens there (it is restarting), Linux can connect
            // a TCP socket to itself, and the worker then hears its own messages; counting them as
            // the coordinator's kept such a worker "connected" to itself for minutes. A new
            // socket gets a new local port.
            out.append(
                .log(
                    .warning,
                    "received \(message.name), which only workers send: this connection does not lead to a coordinator (a TCP connection to itself?); reconnecting"
                )
            )
            if case .registered = connection {
                reconnect(now: now, &out)
            } else {
                nextHello = now
            }
            return
        }
        lastHeard = now
        switch message {
        case .welcome(let session, let heartbeatMilliseconds, let liveness):
            connection = .registered(session: session)
            heartbeat = .milliseconds(Int64(heartbeatMilliseconds))
            self.liveness = Int(liveness)
            backoff = configuration.initialBackoff
            outstandingCredit = 0
            out.append(.log(.info, "registered with the coordinator (session \(session))"))
            if stopDeadline == nil { grantCredit(now: now, &out) }
        case .shard(let lease, let cells):
            guard case .registered(let session) = connection else { return }
            var added = 0
            for cell in cells {
                let job = Job(
                    session: session,
                    lease: lease,
                    key: cell.key,
                    attempt: cell.attempt,
                    work: cell.work,
                    limits: cell.limits
                )
                if jobs[cell.key] != nil {
                    // Still here: its result goes out under this lease.
                    jobs[cell.key] = job
                } else if var done = offers[cell.key], case .result(let payload) = done.ending {
                    done.job = job
                    offers[cell.key] = done
                    send(.result(lease: lease, key: cell.key, attempt: cell.attempt, payload: payload), now: now, &out)
                } else if stopDeadline == nil {
                    jobs[cell.key] = job
                    if cell.checkpointBytes > 0 {
                        // It runs once its checkpoint has arrived.
                        arriving[cell.key] = (cell.checkpointBytes, [], now)
                    } else {
                        out.append(.run(job))
                    }
                    added += 1
                }
                // Stopping: a new cell is not taken; BYE hands it back with the rest.
            }
            outstandingCredit = max(0, outstandingCredit - added)
        case .resume(let chunk):
            receive(resume: chunk, now: now, &out)
        case .ack(let keys):
            for key in keys { offers.removeValue(forKey: key) }
        case .heartbeat:
            break
        case .refuse(let reason, let fatal):
            if fatal {
                out.append(.log(.error, "the coordinator refused this worker: \(reason)"))
                out.append(.exit(.refused(reason)))
                exited = true
                return
            }
            out.append(.log(.info, "the coordinator asks this worker to register again: \(reason)"))
            reconnect(now: now, &out)
        case .hello, .credit, .result, .failed, .bye, .progress, .checkpoint:
            break  // handled above
        }
    }

    private mutating func finish(_ outcomes: [Outcome], now: ContinuousClock.Instant, _ out: inout [Directive]) {
        for outcome in outcomes { deliver(outcome, now: now, &out) }
        if case .registered = connection, stopDeadline == nil { grantCredit(now: now, &out) }
    }

    /// Sends a finished cell's result (or failure) under its latest lease if that lease belongs
    /// to this session; a result that cannot be sent now is kept to offer at the next HELLO.
    private mutating func deliver(_ finished: Outcome, now: ContinuousClock.Instant, _ out: inout [Directive]) {
        var outcome = finished
        if let binding = jobs.removeValue(forKey: outcome.job.key) { outcome.job = binding }
        let job = outcome.job
        if outcome.succeeded {
            if offers[job.key] == nil, offers.count >= configuration.maximumOffers, let any = offers.keys.first {
                offers.removeValue(forKey: any)
            }
            offers[job.key] = outcome
        }
        guard case .registered(let session) = connection, job.session == session else {
            // A failure is not kept: the coordinator leases the cell again once the lease is gone.
            let kept = outcome.succeeded ? "kept to offer again" : "not reported (its lease ended)"
            out.append(.log(.debug, "cell \(job.key) finished after its session: \(kept)"))
            return
        }
        switch outcome.ending {
        case .result(let payload):
            send(.result(lease: job.lease, key: job.key, attempt: job.attempt, payload: payload), now: now, &out)
        case .failure(let error):
            out.append(.log(.warning, "cell \(job.key) failed: \(error)"))
            send(.failed(lease: job.lease, key: job.key, attempt: job.attempt, error: error), now: now, &out)
        }
    }

    /// Credit for every free place (slots plus prefetch) not already granted.
    private mutating func grantCredit(now: ContinuousClock.Instant, _ out: inout [Directive]) {
        let free = configuration.capacity - jobs.count - outstandingCredit
        guard free > 0 else { return }
        send(.credit(count: UInt32(free)), now: now, &out)
        outstandingCredit += free
    }

    private mutating func timers(now: ContinuousClock.Instant, _ out: inout [Directive]) {
        for (key, entry) in arriving where now - entry.last > Self.resumePatience {
            arriving.removeValue(forKey: key)
            if let job = jobs[key] {
                out.append(.log(.warning, "the checkpoint of cell \(key) stopped arriving; it starts from step 0"))
                out.append(.run(job))
            }
        }
        switch connection {
        case .connecting:
            guard stopDeadline == nil, now >= nextHello else { return }
            out.append(.connect)
            lastHeard = now
            send(hello, now: now, &out)
            out.append(.log(.debug, "said HELLO"))
            nextHello = now + backoff
            backoff = min(backoff * 2, configuration.maximumBackoff)
        case .registered:
            if now - lastHeard > heartbeat * liveness {
                out.append(
                    .log(.warning, "the coordinator is silent for \((now - lastHeard).milliseconds) ms; reconnecting")
                )
                reconnect(now: now, &out)
            } else if !jobs.isEmpty && now - lastProgress >= heartbeat {
                // How far the cells are, once a heartbeat interval while any is held.
                out.append(.sendProgress)
                lastProgress = now
                lastSent = now
            } else if now - lastSent >= heartbeat {
                // A worker's heartbeat is an empty PROGRESS, so that a worker connected to itself
                // cannot take its own heartbeat for the coordinator's.
                send(.progress([]), now: now, &out)
            }
        }
    }

    /// Registers again: the leases of jobs no slot has started end with the session (the
    /// coordinator hands them to others), so they are recalled; started ones are offered at HELLO.
    private mutating func reconnect(now: ContinuousClock.Instant, _ out: inout [Directive]) {
        connection = .connecting
        outstandingCredit = 0
        nextHello = now
        dropArriving()
        out.append(.recall)
    }

    /// Cells whose checkpoint had not arrived are not started: their leases end too.
    private mutating func dropArriving() {
        for key in arriving.keys { jobs.removeValue(forKey: key) }
        arriving.removeAll()
    }

    /// A chunk of a leased cell's checkpoint: the cell runs once it is whole. A chunk out of
    /// order (or of another lease) means a broken transfer: the cell runs from step 0 instead.
    private mutating func receive(
        resume chunk: Message.CheckpointChunk,
        now: ContinuousClock.Instant,
        _ out: inout [Directive]
    ) {
        // Taken out while it grows, so that appending does not copy what has arrived so far.
        guard var job = jobs[chunk.key], var entry = arriving.removeValue(forKey: chunk.key) else { return }
        guard chunk.lease == job.lease, chunk.total == entry.expected, chunk.offset == UInt64(entry.bytes.count) else {
            out.append(
                .log(.warning, "the checkpoint of cell \(chunk.key) arrived out of order; it starts from step 0")
            )
            out.append(.run(job))
            return
        }
        if entry.bytes.isEmpty { entry.bytes.reserveCapacity(Int(entry.expected)) }
        entry.bytes += chunk.bytes
        entry.last = now
        guard UInt64(entry.bytes.count) == entry.expected else {
            arriving[chunk.key] = entry
            return
        }
        job.checkpoint = entry.bytes
        job.resumeStep = chunk.step
        jobs[chunk.key] = job
        out.append(.log(.info, "cell \(chunk.key) resumes from its checkpoint at step \(chunk.step)"))
        out.append(.run(job))
    }

    /// Sends a running cell's checkpoint to the coordinator under the cell's latest lease, in
    /// chunks; dropped when the cell's session is over (the coordinator leases it elsewhere).
    private mutating func forward(
        checkpoint bytes: [UInt8],
        of key: String,
        step: UInt64,
        now: ContinuousClock.Instant,
        _ out: inout [Directive]
    ) {
        guard let job = jobs[key], case .registered(let session) = connection, job.session == session else {
            out.append(.log(.debug, "a checkpoint of cell \(key) came after its lease ended; dropped"))
            return
        }
        for chunk in Message.CheckpointChunk.split(bytes, key: key, lease: job.lease, attempt: job.attempt, step: step)
        {
            send(.checkpoint(chunk), now: now, &out)
        }
    }

    private mutating func send(_ message: Message, now: ContinuousClock.Instant, _ out: inout [Directive]) {
        out.append(.send(message))
        lastSent = now
    }
}
