import TrainingCore

/// The coordinator's decisions as a pure state machine: events in, directives out, no I/O.
///
/// It holds the queue (largest estimated cost first), leases, attempts and worker liveness. The
/// shell around it (sockets, the store, the clock) feeds it events and carries out its directives;
/// every rule is therefore testable without a network (swift-cluster-membership's SWIM pattern).
public struct Scheduler: Sendable {
    /// Timing and retry rules.
    public struct Configuration: Sendable {
        /// How often each side sends a heartbeat when it has nothing else to say.
        public var heartbeatInterval: Duration
        /// Missed heartbeats after which a worker is dead.
        public var liveness: Int
        /// Tries per cell before it is FAILED.
        public var maxAttempts: Int
        /// Distinguishes this coordinator run: the high 32 bits of its lease ids.
        public var session: UInt32
        /// Most cells in one SHARD.
        public var maximumShard: Int
        /// After a restart, how long cells that were leased when the previous run stopped are kept
        /// for their workers to reclaim (they offer them at HELLO) before anyone else gets them.
        public var reclaimWindow: Duration
        /// How often a cell may be lost with workers that never delivered anything before it is
        /// FAILED. Such losses do not use up attempts: a peer that registers, takes cells and
        /// vanishes proves nothing about the cells (and must not be able to fail them), while a
        /// cell that really kills every worker it meets still ends.
        public var maxLosses: Int
        /// What every cell may use (the sweep file's `resources:`), sent with each cell.
        public var limits = Message.Limits()

        public init(
            heartbeatInterval: Duration = .seconds(1),
            liveness: Int = 3,
            maxAttempts: Int = 3,
            session: UInt32,
            maximumShard: Int = 512
        ) {
            self.heartbeatInterval = heartbeatInterval
            self.liveness = liveness
            self.maxAttempts = maxAttempts
            self.session = session
            self.maximumShard = min(maximumShard, Wire.maximumShardCells)
            self.maxLosses = 10 * maxAttempts
            self.reclaimWindow = heartbeatInterval * liveness * 2 + .seconds(8)
        }

        /// How long a worker may stay silent.
        public var deadline: Duration { heartbeatInterval * liveness }
    }

    /// Where a cell is in its life.
    public enum CellState: String, Codable, Sendable, CaseIterable {
        case queued, leased, done, failed
    }

    /// A cell as the scheduler starts with it (from the store).
    public struct CellSeed: Sendable {
        public var key: String
        public var work: [UInt8]
        public var cost: Double
        public var state: CellState
        public var attempts: Int
        public var lastError: String?
        /// The worker that held the cell when an earlier run stopped (state leased).
        public var leasedTo: String?
        /// The cores and memory it needs (`CellWork.requirements(resources:)`).
        public var requirements: CellRequirements

        public init(
            key: String,
            work: [UInt8],
            cost: Double,
            state: CellState,
            attempts: Int,
            lastError: String?,
            leasedTo: String? = nil,
            requirements: CellRequirements = .none
        ) {
            self.key = key
            self.work = work
            self.cost = cost
            self.state = state
            self.attempts = attempts
            self.lastError = lastError
            self.leasedTo = leasedTo
            self.requirements = requirements
        }
    }

    /// A change of a cell's durable state, for the store.
    public struct CellUpdate: Sendable, Equatable {
        public var key: String
        public var state: CellState
        public var attempts: Int
        public var lease: UInt64?
        public var worker: String?
        public var lastError: String?

        public init(key: String, state: CellState, attempts: Int, lease: UInt64?, worker: String?, lastError: String?) {
            self.key = key
            self.state = state
            self.attempts = attempts
            self.lease = lease
            self.worker = worker
            self.lastError = lastError
        }
    }

    /// A result to commit before it is acknowledged.
    public struct Commit: Sendable, Equatable {
        public var key: String
        public var payload: [UInt8]
        public var worker: String
        public var attempt: Int
        /// ROUTER identity to acknowledge.
        public var identity: [UInt8]

        public init(key: String, payload: [UInt8], worker: String, attempt: Int, identity: [UInt8]) {
            self.key = key
            self.payload = payload
            self.worker = worker
            self.attempt = attempt
            self.identity = identity
        }
    }

    /// A worker as the store records it (the store counts its committed results itself).
    public struct WorkerRecord: Sendable, Equatable {
        public var id: String
        public var host: String
        public var build: String
        public var slots: Int
        /// Registered (false once it left, died, or the coordinator stopped).
        public var alive: Bool

        public init(id: String, host: String, build: String, slots: Int, alive: Bool) {
            self.id = id
            self.host = host
            self.build = build
            self.slots = slots
            self.alive = alive
        }
    }

    /// What happened.
    public enum Event: Sendable {
        /// A decoded message from the peer with this ROUTER identity.
        case message(from: [UInt8], Message)
        /// Time passed (heartbeats, liveness).
        case tick
        /// These commits are durable.
        case committed([Commit])
    }

    /// What the shell must do.
    public enum Directive: Sendable, Equatable {
        case send(to: [UInt8], Message)
        case commit(Commit)
        case persist(CellUpdate)
        case recordWorker(WorkerRecord)
        case log(LogLevel, String)
    }

    struct Cell {
        var key: String
        var work: [UInt8]
        var cost: Double
        var state: CellState
        var attempts: Int
        var lastError: String?
        var lease: UInt64?
        var worker: [UInt8]?
        var committing = false
        var losses = 0
        var dispatchedAt: ContinuousClock.Instant?
        var requirements: CellRequirements
        /// BLAS threads given with the current lease (the request capped at the worker's cores).
        var threads: UInt16 = 0
        /// Its lease holds cores and memory of its worker (until its outcome arrives).
        var holding = false
        /// The latest report of its runner in the current lease.
        var progress: Message.CellProgress?
    }

    struct Worker {
        var identity: [UInt8]
        var id: String
        var host: String
        var build: String
        var slots: Int
        var cores: Int
        var memory: UInt64
        /// Threads and memory of the cells it holds.
        var threadsInUse = 0
        var memoryInUse: UInt64 = 0
        var credit = 0
        /// Listed in `hungry`.
        var hungry = false
        var lastHeard: ContinuousClock.Instant
        var lastSent: ContinuousClock.Instant
        var leased: Set<Int> = []
        var cellsDone = 0
        /// Valid results and failure reports received: a worker that delivered something is real.
        var delivered = 0
        var joined: Int

        /// Memory not held by its cells (cells it resumed after a restart may hold more than it has).
        var memoryFree: UInt64 { memory > memoryInUse ? memory - memoryInUse : 0 }
    }

    public let configuration: Configuration
    var cells: [Cell] = []
    var index: [String: Int] = [:]
    /// Queued cell indices, cheapest first, so the most expensive is popped from the end.
    var queue: [Int] = []
    /// Queued cells that need more memory than any registered worker has: not leased until a
    /// worker that can hold them registers.
    var waiting: [Int] = []
    /// Estimated cost of the cells not done or failed, and of those committed in this run (for
    /// an ETA that weighs cells by cost).
    public private(set) var remainingCost = 0.0
    public private(set) var costDoneThisRun = 0.0
    var workers: [[UInt8]: Worker] = [:]
    /// Registered workers by worker id (a worker's id is stable across its reconnections).
    var identities: [String: [UInt8]] = [:]
    /// Workers with credit, in the order they asked, each once (`Worker.hungry`): dispatching
    /// visits only these, so its cost does not grow with the number of workers.
    var hungry: [[UInt8]] = []
    /// The most memory any registered worker has.
    var largestWorkerMemory: UInt64 = 0
    var nextLease: UInt32 = 0
    var joins = 0
    var dispatching = true
    /// Cells in flight when the previous run stopped, held for their workers until the deadline.
    var reserved: [Int] = []
    var reservationDeadline: ContinuousClock.Instant?
    /// Counts by state, kept up to date.
    public private(set) var counts: [CellState: Int] = [:]
    /// Dispatch-to-commit latency of every cell committed in this run.
    public private(set) var latencies: [Duration] = []

    /// A scheduler over `seeds`; leased cells of an earlier run go back to the queue.
    public init(configuration: Configuration, cells seeds: [CellSeed]) {
        self.configuration = configuration
        cells.reserveCapacity(seeds.count)
        index.reserveCapacity(seeds.count)
        for seed in seeds {
            let state: CellState = seed.state == .leased ? .queued : seed.state
            index[seed.key] = cells.count
            cells.append(
                Cell(
                    key: seed.key,
                    work: seed.work,
                    cost: seed.cost,
                    state: state,
                    attempts: seed.attempts,
                    lastError: seed.lastError,
                    requirements: seed.requirements
                )
            )
            counts[state, default: 0] += 1
            if state != .done && state != .failed { remainingCost += seed.cost }
        }
        reserved = seeds.indices.filter { seeds[$0].state == .leased && seeds[$0].leasedTo != nil }
        let held = Set(reserved)
        // Cheapest first; among equal costs the later seed first, so that the queue hands them
        // out in seed order (the store gives them in key order). Numbers, not keys, are compared:
        // a million cells sort in a fraction of a second.
        queue = cells.indices.filter { cells[$0].state == .queued && !held.contains($0) }
            .sorted { (cells[$0].cost, $1) < (cells[$1].cost, $0) }
    }

    /// Stops handing out cells (graceful shutdown, or a store that cannot write); results still
    /// arrive and commit.
    public mutating func stopDispatching() {
        dispatching = false
    }

    /// Hands out cells again (the store takes writes again).
    public mutating func resumeDispatching() {
        dispatching = true
    }

    // MARK: - Queries

    /// Every cell is done or failed.
    public var isFinished: Bool { (counts[.done] ?? 0) + (counts[.failed] ?? 0) == cells.count }
    /// Number of cells.
    public var cellCount: Int { cells.count }
    /// Registered workers.
    public var workersAlive: Int { workers.count }
    /// The state of a cell.
    public func state(of key: String) -> CellState? { index[key].map { cells[$0].state } }
    /// The lease a cell is held under, if it is leased.
    public func lease(of key: String) -> UInt64? { index[key].flatMap { cells[$0].lease } }
    /// The number of tries a cell has had.
    public func attempts(of key: String) -> Int? { index[key].map { cells[$0].attempts } }
    /// Registered workers, in the order they joined.
    public func workerSummaries(now: ContinuousClock.Instant) -> [WorkerSummary] {
        workers.values.sorted { $0.joined < $1.joined }.map {
            WorkerSummary(
                id: $0.id,
                host: $0.host,
                slots: $0.slots,
                leased: $0.leased.count,
                done: $0.cellsDone,
                silentMilliseconds: (now - $0.lastHeard).milliseconds,
                cores: $0.cores,
                threadsInUse: $0.threadsInUse,
                memoryBytes: $0.memory,
                memoryInUse: $0.memoryInUse
            )
        }
    }

    /// A queued cell no registered worker can hold, and why.
    public struct WaitingCell: Sendable, Codable, Equatable {
        public var key: String
        public var memoryBytes: UInt64
        public var reason: String

        enum CodingKeys: String, CodingKey {
            case key, reason
            case memoryBytes = "memory_bytes"
        }
    }

    /// Cells waiting for a worker that can hold them (at most `limit`), largest first: e.g.
    /// "needs 18 GiB; largest worker has 8 GiB free of 12 GiB".
    public func waitingCells(limit: Int = 100) -> [WaitingCell] {
        let largest = workers.values.max { ($0.memory, $0.id) < ($1.memory, $1.id) }
        let has =
            largest.map {
                "largest worker has \(SweepSpec.formatSize($0.memoryFree)) free of \(SweepSpec.formatSize($0.memory))"
            } ?? "no worker is connected"
        return waiting.filter { cells[$0].state == .queued }
            .sorted {
                (cells[$0].requirements.memoryBytes, cells[$0].key) > (
                    cells[$1].requirements.memoryBytes, cells[$1].key
                )
            }
            .prefix(limit)
            .map {
                let needs = cells[$0].requirements.memoryBytes
                return WaitingCell(
                    key: cells[$0].key,
                    memoryBytes: needs,
                    reason: "needs \(SweepSpec.formatSize(needs)); \(has)"
                )
            }
    }

    /// Number of cells waiting for a worker that can hold them.
    public var waitingCount: Int { waiting.count }

    /// A leased cell as the status endpoint shows it: where it runs and how far it is.
    public struct RunningCell: Sendable, Equatable {
        public var key: String
        public var work: [UInt8]
        public var worker: String
        public var threads: UInt16
        public var memoryBytes: UInt64
        /// Its runner's latest report (nil: none yet, e.g. waiting in the worker's queue).
        public var progress: Message.CellProgress?
        /// Time since it was leased.
        public var milliseconds: Int64
    }

    /// Leased cells whose outcome has not arrived, those with a progress report first (at most
    /// `limit`).
    public func runningCells(now: ContinuousClock.Instant, limit: Int = 200) -> [RunningCell] {
        var result: [RunningCell] = []
        for worker in workers.values.sorted(by: { $0.joined < $1.joined }) {
            for i in worker.leased where cells[i].holding {
                let cell = cells[i]
                result.append(
                    RunningCell(
                        key: cell.key,
                        work: cell.work,
                        worker: worker.id,
                        threads: cell.threads,
                        memoryBytes: cell.requirements.memoryBytes,
                        progress: cell.progress,
                        milliseconds: cell.dispatchedAt.map { (now - $0).milliseconds } ?? 0
                    )
                )
            }
        }
        result.sort { ($0.progress != nil ? 0 : 1, $0.key) < ($1.progress != nil ? 0 : 1, $1.key) }
        return Array(result.prefix(limit))
    }

    /// Every registered worker as the store records it, e.g. `alive: false` when the coordinator stops.
    public func workerRecords(alive: Bool) -> [WorkerRecord] {
        workers.values.sorted { $0.joined < $1.joined }.map { record($0, alive: alive) }
    }

    private func record(_ worker: Worker, alive: Bool) -> WorkerRecord {
        WorkerRecord(id: worker.id, host: worker.host, build: worker.build, slots: worker.slots, alive: alive)
    }

    /// A registered worker as the status endpoint shows it.
    public struct WorkerSummary: Sendable, Codable, Equatable {
        public var id: String
        public var host: String
        public var slots: Int
        public var leased: Int
        public var done: Int
        /// Time since its last message (its last heartbeat at the latest).
        public var silentMilliseconds: Int64
        /// Cores and memory it advertised, and what its leased cells hold of them.
        public var cores: Int
        public var threadsInUse: Int
        public var memoryBytes: UInt64
        public var memoryInUse: UInt64

        enum CodingKeys: String, CodingKey {
            case id, host, slots, leased, done, cores
            case silentMilliseconds = "last_heartbeat_ms_ago"
            case threadsInUse = "threads_in_use"
            case memoryBytes = "memory_bytes"
            case memoryInUse = "memory_in_use_bytes"
        }
    }

    /// Cells that FAILED, with their attempts and last error.
    public var failures: [(key: String, attempts: Int, error: String)] {
        guard (counts[.failed] ?? 0) > 0 else { return [] }
        return cells.filter { $0.state == .failed }.map { ($0.key, $0.attempts, $0.lastError ?? "") }
    }

    // MARK: - Events

    /// Applies an event at time `now` and returns what the shell must do.
    public mutating func on(_ event: Event, now: ContinuousClock.Instant) -> [Directive] {
        var out: [Directive] = []
        if !reserved.isEmpty {
            let deadline = reservationDeadline ?? now + configuration.reclaimWindow
            reservationDeadline = deadline
            if now >= deadline {
                let unclaimed = reserved.filter { cells[$0].state == .queued }
                reserved = []
                for i in unclaimed { enqueue(i) }
                if !unclaimed.isEmpty {
                    out.append(
                        .log(
                            .info,
                            "\(unclaimed.count) cells in flight before the restart were not reclaimed: back in the queue"
                        )
                    )
                }
                dispatch(now: now, &out)
            }
        }
        switch event {
        case .message(let identity, let message):
            receive(message, from: identity, now: now, &out)
        case .tick:
            tick(now: now, &out)
        case .committed(let commits):
            committed(commits, now: now, &out)
        }
        return out
    }

    private mutating func receive(
        _ message: Message,
        from identity: [UInt8],
        now: ContinuousClock.Instant,
        _ out: inout [Directive]
    ) {
        if case .hello(let hello) = message {
            register(hello, identity: identity, now: now, &out)
            return
        }
        guard workers[identity] != nil else {
            // A worker we do not know (e.g. we restarted): ask it to register again.
            if message != .bye {
                out.append(
                    .send(
                        to: identity,
                        .refuse(reason: "not registered with this coordinator: say HELLO", fatal: false)
                    )
                )
            }
            return
        }
        workers[identity]!.lastHeard = now
        switch message {
        case .credit(let count):
            workers[identity]!.credit += Int(count)
            if !workers[identity]!.hungry {
                workers[identity]!.hungry = true
                hungry.append(identity)
            }
            dispatch(now: now, &out)
        case .result(let lease, let key, let attempt, let payload):
            accept(result: payload, lease: lease, key: key, attempt: attempt, from: identity, &out)
            // Its cores and memory are free: a cell that did not fit may now.
            dispatch(now: now, &out)
        case .failed(let lease, let key, let attempt, let error):
            fail(lease: lease, key: key, attempt: attempt, error: error, from: identity, now: now, &out)
        case .heartbeat:
            break
        case .progress(let reports):
            for report in reports {
                guard let i = index[report.key], cells[i].worker == identity, cells[i].holding else { continue }
                cells[i].progress = report
            }
        case .bye:
            let worker = workers[identity]!
            out.append(
                .log(
                    .info,
                    "worker \(worker.id) on \(worker.host) left (BYE); \(worker.leased.count) unfinished cells go back to the queue"
                )
            )
            remove(identity, handedBack: true, reason: "handed back by \(worker.id)", now: now, &out)
            dispatch(now: now, &out)
        case .hello, .welcome, .refuse, .shard, .ack:
            out.append(
                .log(
                    .warning,
                    "worker \(workers[identity]!.id) sent \(message.name), which only the coordinator sends; dropped"
                )
            )
        }
    }

    private mutating func register(
        _ hello: Message.Hello,
        identity: [UInt8],
        now: ContinuousClock.Instant,
        _ out: inout [Directive]
    ) {
        guard hello.protocolVersion == Wire.protocolVersion else {
            out.append(
                .log(
                    .warning,
                    "refused worker \(hello.workerID) on \(hello.host): protocol version \(hello.protocolVersion), coordinator speaks \(Wire.protocolVersion)"
                )
            )
            out.append(
                .send(
                    to: identity,
                    .refuse(
                        reason:
                            "protocol version \(hello.protocolVersion) is not \(Wire.protocolVersion): run the same isosweep build on workers and coordinator",
                        fatal: true
                    )
                )
            )
            return
        }
        guard hello.scienceVersion == UInt16(scienceVersion) else {
            out.append(
                .log(
                    .warning,
                    "refused worker \(hello.workerID) on \(hello.host): science version \(hello.scienceVersion), coordinator has \(scienceVersion)"
                )
            )
            out.append(
                .send(
                    to: identity,
                    .refuse(
                        reason:
                            "science version \(hello.scienceVersion) is not \(scienceVersion): results would not be comparable; upgrade the worker",
                        fatal: true
                    )
                )
            )
            return
        }
        // The same worker process reconnecting under a new identity, or saying HELLO again: its
        // cells are handed back (a reconnection says nothing about the cells).
        let previous = Set([identity] + [identities[hello.workerID]].compactMap { $0 })
        for other in previous.sorted(by: { $0.lexicographicallyPrecedes($1) }) {
            guard let worker = workers[other] else { continue }
            out.append(
                .log(
                    .info,
                    "worker \(worker.id) registered again; its \(worker.leased.count) unfinished cells go back to the queue"
                )
            )
            remove(
                other,
                handedBack: true,
                reason: "worker \(worker.id) reconnected before finishing it",
                now: now,
                &out
            )
        }
        joins += 1
        workers[identity] = Worker(
            identity: identity,
            id: hello.workerID,
            host: hello.host,
            build: hello.build,
            slots: Int(hello.slots),
            cores: Int(hello.cores),
            memory: hello.memoryBytes,
            lastHeard: now,
            lastSent: now,
            joined: joins
        )
        identities[hello.workerID] = identity
        largestWorkerMemory = max(largestWorkerMemory, hello.memoryBytes)
        let session = UInt64(configuration.session) << 32 | UInt64(joins)
        out.append(
            .send(
                to: identity,
                .welcome(
                    session: session,
                    heartbeatMilliseconds: UInt32(configuration.heartbeatInterval.milliseconds),
                    liveness: UInt16(configuration.liveness)
                )
            )
        )
        out.append(
            .log(
                .info,
                "worker \(hello.workerID) joined from \(hello.host) with \(hello.slots) slots, \(hello.cores) cores and \(hello.memoryBytes == .max ? "unstated" : SweepSpec.formatSize(hello.memoryBytes)) memory"
            )
        )
        // Cells that waited for a worker this large go back to the queue.
        let fitting = waiting.filter { cells[$0].requirements.memoryBytes <= hello.memoryBytes }
        if !fitting.isEmpty {
            waiting.removeAll { cells[$0].requirements.memoryBytes <= hello.memoryBytes }
            for i in fitting where cells[i].state == .queued { enqueue(i) }
        }
        out.append(
            .recordWorker(
                WorkerRecord(
                    id: hello.workerID,
                    host: hello.host,
                    build: hello.build,
                    slots: Int(hello.slots),
                    alive: true
                )
            )
        )
        adopt(hello.resumable, for: identity, now: now, &out)
    }

    /// Leases back to a (re)registered worker the cells it offers to resume, when they are still
    /// waiting in the queue: work computed across a coordinator restart or a reconnection is not
    /// thrown away. They do not use the worker's credit, since it is already running them.
    private mutating func adopt(
        _ keys: [String],
        for identity: [UInt8],
        now: ContinuousClock.Instant,
        _ out: inout [Directive]
    ) {
        // Results offered for cells already committed (their ACK was lost): acknowledge, so the worker forgets them.
        let committed = keys.filter { index[$0].map { cells[$0].state == .done } ?? false }
        if !committed.isEmpty { out.append(.send(to: identity, .ack(keys: committed))) }
        let adoptable = Set(keys).compactMap { index[$0] }.filter { cells[$0].state == .queued }
        guard dispatching, !adoptable.isEmpty else { return }
        queue.removeAll { adoptable.contains($0) }
        reserved.removeAll { adoptable.contains($0) }
        waiting.removeAll { adoptable.contains($0) }
        nextLease &+= 1
        let lease = UInt64(configuration.session) << 32 | UInt64(nextLease)
        var assignments: [Message.Assignment] = []
        for i in adoptable.sorted() {
            // Already running there: it holds its resources whether or not they fit.
            assignments.append(grant(i, lease: lease, to: identity, now: now, &out))
        }
        out.append(
            .log(.info, "worker \(workers[identity]!.id) resumes \(assignments.count) cells it was already computing")
        )
        out.append(.send(to: identity, .shard(lease: lease, cells: assignments)))
    }

    private mutating func accept(
        result payload: [UInt8],
        lease: UInt64,
        key: String,
        attempt: UInt16,
        from identity: [UInt8],
        _ out: inout [Directive]
    ) {
        // Its id only: a copy of the whole worker would be copied again when its sets change.
        let workerID = workers[identity]!.id
        guard let i = index[key] else {
            out.append(.log(.warning, "worker \(workerID) sent a result for unknown cell \(short(key)); dropped"))
            return
        }
        let cell = cells[i]
        if cell.state == .done {
            // Already committed: acknowledge again so the worker forgets it, and discard.
            out.append(.send(to: identity, .ack(keys: [key])))
            return
        }
        guard cell.state == .leased, cell.lease == lease, cell.worker == identity, Int(attempt) == cell.attempts,
            !cell.committing
        else {
            out.append(
                .log(
                    .warning,
                    "worker \(workerID) sent a result for \(short(key)) under lease \(lease) attempt \(attempt), which it does not hold; dropped"
                )
            )
            return
        }
        cells[i].committing = true
        free(i)
        workers[identity]!.delivered += 1
        out.append(
            .commit(Commit(key: key, payload: payload, worker: workerID, attempt: Int(attempt), identity: identity))
        )
    }

    private mutating func committed(_ commits: [Commit], now: ContinuousClock.Instant, _ out: inout [Directive]) {
        var acks: [[UInt8]: [String]] = [:]
        for commit in commits {
            guard let i = index[commit.key], cells[i].state != .done else { continue }
            let previous = cells[i].state
            if let holder = cells[i].worker { workers[holder]?.leased.remove(i) }
            if let started = cells[i].dispatchedAt { latencies.append(now - started) }
            free(i)
            if previous != .failed { remainingCost -= cells[i].cost }
            costDoneThisRun += cells[i].cost
            move(i, from: previous, to: .done)
            cells[i].committing = false
            cells[i].lease = nil
            cells[i].dispatchedAt = nil
            if workers[commit.identity] != nil { workers[commit.identity]!.cellsDone += 1 }
            acks[commit.identity, default: []].append(commit.key)
        }
        for (identity, keys) in acks {
            var start = 0
            while start < keys.count {
                let end = min(keys.count, start + Wire.maximumAckKeys)
                out.append(.send(to: identity, .ack(keys: Array(keys[start..<end]))))
                start = end
            }
            if workers[identity] != nil { workers[identity]!.lastSent = now }
        }
    }

    private mutating func fail(
        lease: UInt64,
        key: String,
        attempt: UInt16,
        error: String,
        from identity: [UInt8],
        now: ContinuousClock.Instant,
        _ out: inout [Directive]
    ) {
        let workerID = workers[identity]!.id
        guard let i = index[key], cells[i].state == .leased, cells[i].lease == lease, cells[i].worker == identity,
            Int(attempt) == cells[i].attempts, !cells[i].committing
        else {
            out.append(
                .log(
                    .warning,
                    "worker \(workerID) reported a failure of \(short(key)) under a lease it does not hold; dropped"
                )
            )
            return
        }
        workers[identity]!.leased.remove(i)
        workers[identity]!.delivered += 1
        release(i, error: "\(error) (attempt \(attempt) on \(workerID))", countAttempt: true, &out)
        dispatch(now: now, &out)
    }

    private mutating func tick(now: ContinuousClock.Instant, _ out: inout [Directive]) {
        let deadline = configuration.deadline
        for (identity, worker) in workers where now - worker.lastHeard > deadline {
            out.append(
                .log(
                    .warning,
                    "worker \(worker.id) on \(worker.host) silent for \((now - worker.lastHeard).milliseconds) ms: dead; \(worker.leased.count) cells go back to the queue"
                )
            )
            remove(
                identity,
                handedBack: false,
                reason: "worker \(worker.id) on \(worker.host) stopped responding",
                now: now,
                &out
            )
        }
        for (identity, worker) in workers where now - worker.lastSent >= configuration.heartbeatInterval {
            out.append(.send(to: identity, .heartbeat))
            workers[identity]!.lastSent = now
        }
        dispatch(now: now, &out)
    }

    // MARK: - Helpers

    /// Unregisters a worker; its leased cells go back to the queue. A graceful hand-back does not
    /// use up an attempt; losing a worker that had delivered results does (the cell may be what
    /// killed it); losing one that never delivered anything counts as a loss (see `maxLosses`).
    private mutating func remove(
        _ identity: [UInt8],
        handedBack: Bool,
        reason: String,
        now: ContinuousClock.Instant,
        _ out: inout [Directive]
    ) {
        guard let worker = workers.removeValue(forKey: identity) else { return }
        if identities[worker.id] == identity { identities.removeValue(forKey: worker.id) }
        if worker.memory == largestWorkerMemory { largestWorkerMemory = workers.values.map(\.memory).max() ?? 0 }
        for i in worker.leased.sorted() where cells[i].state == .leased && !cells[i].committing {
            if handedBack {
                cells[i].attempts -= 1
                release(i, error: cells[i].lastError, countAttempt: false, &out)
            } else if worker.delivered == 0 {
                cells[i].attempts -= 1
                cells[i].losses += 1
                if cells[i].losses >= configuration.maxLosses {
                    cells[i].lastError =
                        "lost \(cells[i].losses) times with workers that never delivered a result (last: \(reason))"
                    release(i, error: cells[i].lastError, countAttempt: true, forceFail: true, &out)
                } else {
                    release(i, error: reason, countAttempt: false, &out)
                }
            } else {
                release(i, error: reason, countAttempt: true, &out)
            }
        }
        out.append(.recordWorker(record(worker, alive: false)))
    }

    /// Ends a lease: back to the queue, or FAILED when attempts are used up.
    private mutating func release(
        _ i: Int,
        error: String?,
        countAttempt: Bool,
        forceFail: Bool = false,
        _ out: inout [Directive]
    ) {
        free(i)
        cells[i].lease = nil
        cells[i].worker = nil
        cells[i].dispatchedAt = nil
        cells[i].lastError = error
        if forceFail || (countAttempt && cells[i].attempts >= configuration.maxAttempts) {
            move(i, from: .leased, to: .failed)
            remainingCost -= cells[i].cost
            out.append(
                .log(
                    .error,
                    "cell \(short(cells[i].key)) FAILED after \(cells[i].attempts) attempts: \(error ?? "unknown error")"
                )
            )
        } else {
            move(i, from: .leased, to: .queued)
            enqueue(i)
        }
        out.append(.persist(update(i)))
    }

    /// Most queued cells looked at, per shard, for one that fits a worker's free cores and memory.
    static let fitScanLimit = 64

    /// Leases queued cells to workers with credit: to each, largest first, the cells that fit its
    /// free cores and memory. A cell that needs more memory than any registered worker has moves
    /// to `waiting` (logged once) instead of blocking the queue. When the largest queued cell fits
    /// no worker's free resources now, the worker closest to holding it is reserved for it: it
    /// takes no smaller cell until it can take that one (EASY backfilling), so that a big cell is
    /// not starved by small ones filling every worker as they free up.
    private mutating func dispatch(now: ContinuousClock.Instant, _ out: inout [Directive]) {
        guard dispatching && !queue.isEmpty && !workers.isEmpty else { return }
        let largestMemory = largestWorkerMemory
        while let head = queue.last, cells[head].requirements.memoryBytes > largestMemory {
            queue.removeLast()
            wait(head, &out)
        }
        var heldBack = reservation()
        var stillHungry: [[UInt8]] = []
        var seen = Set<[UInt8]>()
        for identity in hungry {
            // A worker that left, or an identity listed twice (it registered again): once.
            guard workers[identity] != nil, seen.insert(identity).inserted else { continue }
            while workers[identity]!.credit > 0 && !queue.isEmpty {
                let limit = min(workers[identity]!.credit, configuration.maximumShard)
                nextLease &+= 1
                let lease = UInt64(configuration.session) << 32 | UInt64(nextLease)
                var assignments: [Message.Assignment] = []
                var position = queue.count - 1
                var misses = 0
                while assignments.count < limit && position >= 0 && misses < Self.fitScanLimit {
                    let i = queue[position]
                    if heldBack?.worker == identity && i != heldBack?.cell { break }
                    if cells[i].state != .queued {
                        // Not queued any more (a guard: each cell is in at most one of queue, waiting, reserved).
                        queue.remove(at: position)
                    } else if cells[i].requirements.memoryBytes > largestMemory {
                        queue.remove(at: position)
                        wait(i, &out)
                    } else if fits(i, identity) {
                        queue.remove(at: position)
                        if heldBack?.cell == i { heldBack = nil }
                        assignments.append(grant(i, lease: lease, to: identity, now: now, &out))
                    } else {
                        misses += 1
                    }
                    position -= 1
                }
                if assignments.isEmpty {
                    nextLease &-= 1
                    break
                }
                workers[identity]!.credit -= assignments.count
                workers[identity]!.lastSent = now
                out.append(.send(to: identity, .shard(lease: lease, cells: assignments)))
            }
            if workers[identity]!.credit > 0 {
                stillHungry.append(identity)
            } else {
                workers[identity]!.hungry = false
            }
        }
        hungry = stillHungry
    }

    /// The largest queued cell and the worker reserved for it, when no worker's free resources
    /// hold it now: among the workers large enough for it, the one with the most free memory,
    /// then the most free cores.
    private func reservation() -> (cell: Int, worker: [UInt8])? {
        guard let head = queue.last, cells[head].requirements != .none else { return nil }
        var best: (identity: [UInt8], free: UInt64, cores: Int)?
        for (identity, worker) in workers where cells[head].requirements.memoryBytes <= worker.memory {
            if fits(head, identity) { return nil }
            let candidate = (identity, worker.memoryFree, worker.cores - worker.threadsInUse)
            if best.map({ (candidate.1, candidate.2) > ($0.free, $0.cores) }) ?? true { best = candidate }
        }
        return best.map { (head, $0.identity) }
    }

    /// Moves queued cell `i`, already out of the queue, to the cells that wait for a worker large
    /// enough, and says so.
    private mutating func wait(_ i: Int, _ out: inout [Directive]) {
        waiting.append(i)
        let has = workers.values.max { $0.memory < $1.memory }.map {
            "largest worker has \(SweepSpec.formatSize($0.memoryFree)) free of \(SweepSpec.formatSize($0.memory))"
        }
        out.append(
            .log(
                .warning,
                "cell \(short(cells[i].key)) waits: needs \(SweepSpec.formatSize(cells[i].requirements.memoryBytes)); \(has ?? "no worker")"
            )
        )
    }

    /// Leases queued cell `i` to a worker under `lease` (a new attempt, holding its cores and
    /// memory there) and returns its assignment; the state change is persisted.
    private mutating func grant(
        _ i: Int,
        lease: UInt64,
        to identity: [UInt8],
        now: ContinuousClock.Instant,
        _ out: inout [Directive]
    ) -> Message.Assignment {
        cells[i].attempts += 1
        cells[i].lease = lease
        cells[i].worker = identity
        cells[i].dispatchedAt = now
        move(i, from: .queued, to: .leased)
        workers[identity]!.leased.insert(i)
        hold(i, on: identity)
        out.append(.persist(update(i)))
        return assignment(i)
    }

    /// The threads cell `i` gets on a worker: its request, at most the worker's cores.
    private func threads(_ i: Int, on worker: Worker) -> Int {
        min(Int(cells[i].requirements.threads), worker.cores)
    }

    /// Whether cell `i` fits the free cores and memory of a worker.
    private func fits(_ i: Int, _ identity: [UInt8]) -> Bool {
        guard let worker = workers[identity] else { return false }
        let needs = cells[i].requirements
        let threads = threads(i, on: worker)
        return (threads == 0 || worker.threadsInUse + threads <= worker.cores) && needs.memoryBytes <= worker.memoryFree
    }

    /// Cell `i`, leased to a worker, holds its threads and memory there.
    private mutating func hold(_ i: Int, on identity: [UInt8]) {
        guard let worker = workers[identity], !cells[i].holding else { return }
        let threads = threads(i, on: worker)
        cells[i].threads = UInt16(threads)
        cells[i].holding = true
        cells[i].progress = nil
        workers[identity]!.threadsInUse += threads
        workers[identity]!.memoryInUse &+= cells[i].requirements.memoryBytes
    }

    /// Cell `i`'s outcome arrived or its lease ended: its worker's threads and memory are free.
    private mutating func free(_ i: Int) {
        guard cells[i].holding else { return }
        cells[i].holding = false
        cells[i].progress = nil
        if let identity = cells[i].worker, workers[identity] != nil {
            workers[identity]!.threadsInUse -= Int(cells[i].threads)
            workers[identity]!.memoryInUse &-= cells[i].requirements.memoryBytes
        }
    }

    private mutating func enqueue(_ i: Int) {
        // Keep the queue sorted as `init` does (cost up, seed order down) so the largest is at the end.
        let key = (cells[i].cost, -i)
        var low = 0
        var high = queue.count
        while low < high {
            let mid = (low + high) / 2
            if (cells[queue[mid]].cost, -queue[mid]) < key { low = mid + 1 } else { high = mid }
        }
        queue.insert(i, at: low)
    }

    private mutating func move(_ i: Int, from: CellState, to: CellState) {
        counts[from, default: 0] -= 1
        counts[to, default: 0] += 1
        cells[i].state = to
    }

    private func update(_ i: Int) -> CellUpdate {
        let cell = cells[i]
        return CellUpdate(
            key: cell.key,
            state: cell.state,
            attempts: cell.attempts,
            lease: cell.lease,
            worker: cell.worker.flatMap { workers[$0]?.id },
            lastError: cell.lastError
        )
    }

    private func assignment(_ i: Int) -> Message.Assignment {
        var limits = configuration.limits
        limits.threads = cells[i].threads
        limits.memoryBytes = cells[i].requirements.limitBytes
        return Message.Assignment(
            key: cells[i].key,
            attempt: UInt16(clamping: cells[i].attempts),
            work: cells[i].work,
            limits: limits
        )
    }

    private func short(_ key: String) -> String { String(key.prefix(12)) }
}

extension Duration {
    /// Whole milliseconds.
    public var milliseconds: Int64 {
        components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000
    }
}
