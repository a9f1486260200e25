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
        public var limits = ResourceLimits()

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

    /// Where a cell is in its life (`CellState`, shared with the store): the scheduler's name for
    /// it, kept because the scheduler's API and its callers speak of `Scheduler.CellState`.
    public typealias CellState = SweepCore.CellState

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
        /// The key as bytes, when the loader has it already (saves parsing `key`).
        public var cellKey: CellKey?

        public init(
            key: String,
            work: [UInt8],
            cost: Double,
            state: CellState,
            attempts: Int,
            lastError: String?,
            leasedTo: String? = nil,
            requirements: CellRequirements = .none,
            cellKey: CellKey? = nil
        ) {
            self.cellKey = cellKey
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
        /// The cell's index in the scheduler that asked for the commit (saves finding it again).
        var cell: Int32 = -1

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
        /// A user put FAILED or cancelled cells back in the queue (`isosweep requeue`), with their
        /// work (a cell loaded as FAILED keeps none), attempts starting again from 0.
        case requeue([(key: String, work: [UInt8], requirements: CellRequirements)])
        /// A user took queued or FAILED cells out of the sweep (`isosweep cancel`).
        case cancel([String])
    }

    /// What the shell must do.
    public enum Directive: Sendable, Equatable {
        case send(to: [UInt8], Message)
        case commit(Commit)
        case persist(CellUpdate)
        case recordWorker(WorkerRecord)
        case log(LogLevel, String)
        /// Keep this chunk of a leased cell's checkpoint (it came from the worker holding it).
        case storeCheckpoint(Message.CheckpointChunk)
    }

    /// A cell, kept small (72 bytes, nothing on the heap): a million of them are held.
    /// What only a leased cell has lives in `leases`, a last error in `errors`.
    struct Cell {
        var key: CellKey
        var cost: Double
        /// Its requirements, as an index into `needs` (a sweep has a few distinct ones).
        var need: UInt32
        var work: WorkArena.Slice
        var attempts: Int32
        var losses: UInt16 = 0
        var state: CellState
        /// Its result arrived and is being committed.
        var committing = false
        /// Which collection of queued cells holds it (the queue's stale entries are skipped).
        var place: Place = .none
    }

    /// Where a queued cell waits.
    enum Place: UInt8 {
        case none, queue, waiting, reserved
    }

    /// A leased cell's lease.
    struct Lease {
        var id: UInt64
        var worker: [UInt8]
        var dispatchedAt: ContinuousClock.Instant
        /// BLAS threads given with the lease (the request capped at the worker's cores).
        var threads: UInt16 = 0
        /// It holds cores and memory of its worker (until its outcome arrives).
        var holding = false
        /// The latest report of its runner in this lease.
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
        /// The OpenBLAS kernels its cells run.
        var blasCore: String
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
    /// Cells by the first 64 bits of their key (12 bytes an entry instead of 36: a digest's
    /// bits are uniform), with the full keys of the few that share them in `collisions`.
    var index: [UInt64: Int32] = [:]
    var collisions: [CellKey: Int32] = [:]
    var works = WorkArena()
    /// Leases of the leased cells, by cell index.
    var leases: [Int: Lease] = [:]
    /// The last error of cells that have one.
    var errors: [Int: String] = [:]

    /// Queued cells, most expensive first.
    var queue = CellQueue()
    /// Queued cells that need more memory than any registered worker has: not leased until a
    /// worker that can hold them registers.
    var waiting: [Int] = []
    /// Cells in `waiting` still waiting (the list is cleaned lazily).
    public internal(set) var waitingCount = 0
    /// Estimated cost of the cells not done or failed, and of those committed in this run (for
    /// an ETA that weighs cells by cost).
    public internal(set) var remainingCost = 0.0
    public internal(set) var costDoneThisRun = 0.0
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
    /// More cells are still being loaded (`add`): the sweep is not finished before they are.
    public internal(set) var loading = false
    /// The distinct requirements of the cells, and where each is in that list.
    var needs: [CellRequirements] = []
    var needIndex: [CellRequirements: UInt32] = [:]
    /// Cells that registering workers offered to resume before they were loaded, by key, and
    /// the loaded ones to lease back at the next `dispatchNow`.
    var awaitingAdoption: [CellKey: [UInt8]] = [:]
    var adoptions: [[UInt8]: [Int]] = [:]
    /// Cells in flight when the previous run stopped, held for their workers until the deadline.
    var reserved: [Int] = []
    var reservationDeadline: ContinuousClock.Instant?
    /// The FAILED cells.
    var failed: Set<Int> = []
    /// Counts by state, kept up to date.
    public internal(set) var counts: [CellState: Int] = [:]
    /// Dispatch-to-commit latency, in milliseconds, of every cell committed in this run.
    public internal(set) var latencyMilliseconds: [Float] = []

    /// A scheduler over `seeds`; leased cells of an earlier run go back to the queue. With
    /// `loading`, more cells follow (`add`, then `finishLoading`).
    public init(configuration: Configuration, cells seeds: [CellSeed] = [], loading: Bool = false) {
        self.configuration = configuration
        self.loading = loading
        add(seeds)
    }

    /// Adds cells (a chunk of a sweep that streams in) and returns the keys it refused: keys
    /// that are not 64 hex digits, or already present. Queued ones can be dispatched at once.
    @discardableResult
    public mutating func add(_ seeds: [CellSeed]) -> [String] {
        var refused: [String] = []
        // Grown geometrically: reserving exactly one chunk more would copy (and rehash) everything
        // at every chunk of a streaming load.
        let needed = cells.count + seeds.count
        if cells.capacity < needed { cells.reserveCapacity(max(needed, 2 * cells.capacity)) }
        if index.capacity < needed { index.reserveCapacity(max(needed, 2 * index.capacity)) }
        var fresh: [CellQueue.Entry] = []
        for seed in seeds {
            guard let key = seed.cellKey ?? CellKey(hex: seed.key), position(key) == nil else {
                refused.append(seed.key)
                continue
            }
            let i = cells.count
            let state: CellState = seed.state == .leased ? .queued : seed.state
            let open = state == .queued
            if index[key.w0] == nil {
                index[key.w0] = Int32(i)
            } else {
                collisions[key] = Int32(i)
            }
            cells.append(
                Cell(
                    key: key,
                    cost: seed.cost,
                    need: intern(seed.requirements),
                    // Only cells that may still run need their work.
                    work: open ? works.append(seed.work) : .empty,
                    attempts: Int32(clamping: seed.attempts),
                    state: state
                )
            )
            if let error = seed.lastError { errors[i] = error }
            if !awaitingAdoption.isEmpty, let identity = awaitingAdoption.removeValue(forKey: key) {
                adoptions[identity, default: []].append(i)
            }
            counts[state, default: 0] += 1
            if state == .failed { failed.insert(i) }
            if state == .queued || state == .leased { remainingCost += seed.cost }
            if seed.state == .leased && seed.leasedTo != nil {
                cells[i].place = .reserved
                reserved.append(i)
            } else if open {
                cells[i].place = .queue
                fresh.append(CellQueue.Entry(cost: seed.cost, index: Int32(i)))
            }
        }
        if queue.isEmpty {
            queue.replace(with: fresh)
        } else {
            for entry in fresh { queue.push(entry) }
        }
        return refused
    }

    /// The index of `requirements` in `needs`, adding it when new.
    mutating func intern(_ requirements: CellRequirements) -> UInt32 {
        if let known = needIndex[requirements] { return known }
        needs.append(requirements)
        needIndex[requirements] = UInt32(needs.count - 1)
        return UInt32(needs.count - 1)
    }

    /// What cell `i` needs.
    func requirements(_ i: Int) -> CellRequirements { needs[Int(cells[i].need)] }

    /// Makes room for `count` cells in all (a streaming load knows its size): the tables are
    /// allocated once instead of doubling, which would hold the old and the new copy at once.
    public mutating func reserveCapacity(_ count: Int) {
        cells.reserveCapacity(count)
        index.reserveCapacity(count)
        queue.reserveCapacity(count)
    }

    /// Every cell has been added: the sweep can finish.
    public mutating func finishLoading() {
        loading = false
        // Offered for cells this sweep does not have.
        awaitingAdoption = [:]
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

    /// Every cell is loaded, and done or failed.
    public var isFinished: Bool {
        !loading && (counts[.done] ?? 0) + (counts[.failed] ?? 0) + (counts[.cancelled] ?? 0) == cells.count
    }
    /// Number of cells (so far, while loading).
    public var cellCount: Int { cells.count }
    /// Registered workers.
    public var workersAlive: Int { workers.count }
    /// The state of a cell.
    public func state(of key: String) -> CellState? { position(key).map { cells[$0].state } }
    /// The lease a cell is held under, if it is leased.
    public func lease(of key: String) -> UInt64? { position(key).flatMap { leases[$0]?.id } }
    /// The number of tries a cell has had.
    public func attempts(of key: String) -> Int? { position(key).map { Int(cells[$0].attempts) } }
    /// The index of the cell with this key.
    func position(_ key: String) -> Int? { CellKey(hex: key).flatMap(position) }

    /// The index of the cell with this key.
    func position(_ key: CellKey) -> Int? {
        if let i = index[key.w0], cells[Int(i)].key == key { return Int(i) }
        return collisions[key].map(Int.init)
    }

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
                memoryInUse: $0.memoryInUse,
                blasCore: $0.blasCore
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
                "largest worker has \(Units.formatSize($0.memoryFree)) free of \(Units.formatSize($0.memory))"
            } ?? "no worker is connected"
        // A cell can be listed twice (adopted, then waiting again): once here.
        return Set(waiting.filter { cells[$0].state == .queued && cells[$0].place == .waiting })
            .sorted {
                (requirements($0).memoryBytes, cells[$0].key) > (
                    requirements($1).memoryBytes, cells[$1].key
                )
            }
            .prefix(limit)
            .map {
                let size = requirements($0).memoryBytes
                return WaitingCell(
                    key: cells[$0].key.hex,
                    memoryBytes: size,
                    reason: "needs \(Units.formatSize(size)); \(has)"
                )
            }
    }

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

    /// Leased cells whose outcome has not arrived, those with a progress report first, then the
    /// longest running (at most `limit`).
    public func runningCells(now: ContinuousClock.Instant, limit: Int = 200) -> [RunningCell] {
        // Sorted as plain numbers: the leases themselves hold arrays and strings, and sorting
        // thousands of them twice a second showed up in profiles.
        var order: [(reported: Int, since: Int64, index: Int)] = []
        order.reserveCapacity(leases.count)
        for (i, lease) in leases where lease.holding {
            order.append((lease.progress != nil ? 0 : 1, -(now - lease.dispatchedAt).milliseconds, i))
        }
        order.sort { ($0.reported, $0.since, $0.index) < ($1.reported, $1.since, $1.index) }
        return order.prefix(limit).map { entry in
            let i = entry.index
            let lease = leases[i]!
            return RunningCell(
                key: cells[i].key.hex,
                work: works[cells[i].work],
                worker: workers[lease.worker]?.id ?? "?",
                threads: lease.threads,
                memoryBytes: requirements(i).memoryBytes,
                progress: lease.progress,
                milliseconds: (now - lease.dispatchedAt).milliseconds
            )
        }
    }

    /// Every registered worker as the store records it, e.g. `alive: false` when the coordinator stops.
    public func workerRecords(alive: Bool) -> [WorkerRecord] {
        workers.values.sorted { $0.joined < $1.joined }.map { record($0, alive: alive) }
    }

    func record(_ worker: Worker, alive: Bool) -> WorkerRecord {
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
        /// The OpenBLAS kernels its cells run (as its HELLO said).
        public var blasCore: String

        enum CodingKeys: String, CodingKey {
            case id, host, slots, leased, done, cores
            case silentMilliseconds = "last_heartbeat_ms_ago"
            case threadsInUse = "threads_in_use"
            case memoryBytes = "memory_bytes"
            case memoryInUse = "memory_in_use_bytes"
            case blasCore = "blas_core"
        }
    }

    /// Cells that FAILED (at most `limit`, in load order), with their attempts and last error.
    public func failures(limit: Int = .max) -> [(key: String, attempts: Int, error: String)] {
        failed.sorted().prefix(limit).map { (cells[$0].key.hex, Int(cells[$0].attempts), errors[$0] ?? "") }
    }
}

extension Duration {
    /// Whole milliseconds.
    public var milliseconds: Int64 {
        components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000
    }
}
