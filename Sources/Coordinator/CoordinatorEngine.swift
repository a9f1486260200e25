import Diagnostics
import Foundation
public import Logging
import SweepCore
import SweepStore
import Synchronization
import ZeroMQ

/// The I/O shell around the scheduler: the ROUTER socket, the store and the clock, on one
/// dedicated thread (a ZeroMQ socket lives on one thread; nothing blocks the async pool).
///
/// The shell is spread over small files: this one loads the sweep and runs the loop
/// (`CoordinatorLoop`), which reads messages (`MessageIntake`), commits (`StoreWriter`),
/// authenticates (`CoordinatorSecurity`) and publishes progress (`StatusPublishing`).
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
    /// The latest status, for the HTTP endpoint, and its JSON (workers' page 0).
    let latestStatus = Mutex<(snapshot: StatusSnapshot, json: [UInt8])?>(nil)
    let metrics = CoordinatorMetrics()

    /// The latest status snapshot (nil before the sweep is loaded).
    public var status: StatusSnapshot? { latestStatus.withLock { $0?.snapshot } }

    /// The latest status as `/status` sends it, with page `workersPage` of the workers.
    public func statusJSON(workersPage: Int = 0) -> [UInt8]? {
        guard let latest = latestStatus.withLock({ $0 }) else { return nil }
        return workersPage == 0 ? latest.json : Self.encode(latest.snapshot.page(workersPage))
    }

    /// The database this engine writes.
    public var databasePath: String { options.database }

    /// The endpoint actually bound (with the real port), once bound.
    public var endpoint: String? { boundEndpoint.withLock { $0 } }

    public init(options: CoordinatorOptions, work: CoordinatorWork, logger: Logger) {
        self.options = options
        self.work = work
        self.logger = logger
    }

    /// Asks the run to stop dispatching, commit what arrives for a short grace, and return.
    public func requestStop() {
        stopRequested.store(true, ordering: .sequentiallyConsistent)
    }

    /// The sweep's name, for status and logs.
    var sweepName: String {
        switch work {
        case .sweep(let spec): spec.name
        case .cells(let name, _), .diagnostic(let name, _): name
        }
    }

    /// Runs the sweep to its end on the calling thread (use `run()` from async code).
    public func runBlocking(progress: @escaping @Sendable (CoordinatorProgress) -> Void) throws -> CoordinatorOutcome {
        let started = ContinuousClock.now
        if case .plaintext(let insecure) = options.security, !Endpoint.isLocal(options.bind), !insecure {
            throw Self.plaintextRefusal(options.bind)
        }
        let store = try ResultStore(path: options.database)
        // Requests made while no coordinator ran are in the cells table already.
        try store.markApplied()
        let (loading, feed) = try beginLoading(into: store)
        defer { feed.cancel() }
        var scheduler = loading
        let context = try Context()
        let (router, zap) = try secureRouter(context)
        defer {
            router.close()
            zap?.stop()
        }
        let monitor = try Monitor(context, watching: router)
        warnIfEphemeral()
        try bind(router)
        let endpoint = router.lastEndpoint
        boundEndpoint.withLock { $0 = endpoint }
        logger.info("listening", metadata: ["endpoint": "\(endpoint)"])
        var loop = CoordinatorLoop(
            engine: self,
            router: router,
            monitor: monitor,
            writer: StoreWriter(store: store, logger: logger),
            intake: MessageIntake(
                router: router,
                logger: logger,
                allowEmptyResults: { if case .sweep = work { false } else { true } }()
            ),
            started: started,
            progress: progress,
            feed: feed,
            requests: RequestPoller(store: store, logger: logger),
            refiner: {
                if case .sweep(let spec) = work, let refine = spec.refine {
                    RefineDriver(refinement: refine, store: store, logger: logger)
                } else {
                    nil
                }
            }(),
            checkpoints: CheckpointFiles(database: options.database)
        )
        return try loop.run(&scheduler)
    }

    /// How long a coordinator waits for its address while something else holds it: longer than
    /// Linux's TIME_WAIT (60 s), which a worker's socket that had connected to itself leaves on
    /// the port when it closes.
    static let bindPatience: Duration = .seconds(90)

    /// A warning when the port to listen on is in the kernel's ephemeral range: while nothing
    /// listens there (a restart), a worker's socket can TCP-connect to itself on it, and the
    /// port is then held (TIME_WAIT) for up to a minute after the worker notices.
    func warnIfEphemeral() {
        guard let port = options.bind.split(separator: ":").last.flatMap({ Int($0) }), port > 0,
            let text = try? String(contentsOfFile: "/proc/sys/net/ipv4/ip_local_port_range", encoding: .utf8)
        else { return }
        let bounds = text.split(whereSeparator: \.isWhitespace).compactMap { Int($0) }
        guard bounds.count == 2, (bounds[0]...bounds[1]).contains(port) else { return }
        logger.warning(
            """
            port \(port) is in this machine's ephemeral range \(bounds[0])-\(bounds[1]): while the coordinator is down, a \
            worker's socket can connect to itself on it and hold it for a minute; prefer a port below \(bounds[0]), such as 5555
            """
        )
    }

    /// Binds the ROUTER socket, waiting up to `bindPatience` while the address is in use: a
    /// coordinator restarted on its port can find it held for a moment (by a worker's socket
    /// that TCP connected to itself while nothing listened, when the port is in the ephemeral
    /// range, until the worker notices; or by the previous process's last connections).
    func bind(_ router: Socket) throws {
        let deadline = ContinuousClock.now + Self.bindPatience
        var waiting = false
        while true {
            do {
                try router.bind(options.bind)
                if waiting { logger.notice("bound \(options.bind) after waiting for it") }
                return
            } catch {
                guard error.code == .addressInUse, ContinuousClock.now < deadline else { throw error }
                if !waiting {
                    logger.warning("\(options.bind) is in use; waiting up to \(Self.bindPatience) for it")
                    waiting = true
                }
                Thread.sleep(forTimeInterval: 0.1)
            }
        }
    }

    /// Starts loading the sweep into the store (`SweepFeed` streams the cells into the scheduler
    /// from the loop) and returns a scheduler, still empty, and the feed.
    func beginLoading(into store: ResultStore) throws -> (Scheduler, SweepFeed) {
        let began = ContinuousClock.now
        let load: SweepLoad
        var maxAttempts = options.maxAttempts
        var limits = options.limits
        switch work {
        case .sweep(let spec):
            load = try store.load(spec: spec, retryFailed: options.retryFailed, force: options.force)
            if let fromFile = spec.maxAttempts { maxAttempts = fromFile }
            limits = spec.limits
        case .cells(let name, let cells):
            load = try store.load(name: name, cells: cells)
        case .diagnostic(let name, let count):
            load = try store.load(name: name, diagnosticCells: count)
        }
        logger.info("sweep \(sweepName): \(load.summary); loading")
        var configuration = Scheduler.Configuration(
            heartbeatInterval: options.heartbeat,
            liveness: options.liveness,
            maxAttempts: maxAttempts,
            session: UInt32.random(in: 1...UInt32.max)
        )
        configuration.limits = limits
        var scheduler = Scheduler(configuration: configuration, loading: true)
        scheduler.reserveCapacity(load.expectedCount)
        return (scheduler, SweepFeed(load: load, limits: limits, began: began, database: options.database))
    }

    /// Sets what each cell needs under `resources` (decoded once here, not per lease), in place.
    static func addRequirements(to seeds: inout [Scheduler.CellSeed], resources: ResourceLimits) throws(IsosweepError) {
        let decoder = JSONDecoder()
        for index in seeds.indices where seeds[index].state != .done && seeds[index].state != .failed {
            // No-op benchmark cells need nothing: no decoding.
            if CellWork.isNoop(seeds[index].work) { continue }
            guard let work = CellWork(json: seeds[index].work, decoder: decoder) else { continue }
            seeds[index].requirements = try work.requirements(resources: resources)
        }
    }

    /// Runs the sweep on a dedicated thread; a graceful shutdown of the task stops it cleanly.
    public func run(progress: @escaping @Sendable (CoordinatorProgress) -> Void) async throws -> CoordinatorOutcome {
        try await withCheckedThrowingContinuation {
            (continuation: CheckedContinuation<CoordinatorOutcome, any Error>) in
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
