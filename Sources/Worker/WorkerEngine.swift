import Diagnostics
import Foundation
public import Logging
import SweepCore
import Synchronization
import TrainingCore
public import ZeroMQ

/// Settings of a worker daemon.
public struct WorkerOptions: Sendable {
    /// The coordinator's endpoint, e.g. tcp://node1:5555.
    public var connect: String
    /// Cells run at once (default: the machine's cores).
    public var slots: Int
    /// Extra cells kept queued so a slot never waits a round trip (default: one per slot).
    public var prefetch: Int
    /// Cores the cells may use together (default: the CPUs this process may use).
    public var cores = MachineResources.cores()
    /// Bytes of memory the cells may use together (default: the cgroup limit or physical
    /// memory, less a reserve).
    public var memoryBytes = MachineResources.memory()
    /// OpenBLAS threads per cell (default 1: two single-threaded cells beat one two-threaded one).
    public var blasThreads = 1
    /// The OpenBLAS kernels its cell runners run, announced in HELLO (default: this process's,
    /// which runners inherit with its environment).
    public var blasCore = BLAS.core
    /// Heartbeat interval until the coordinator says otherwise.
    public var heartbeat: Duration = .seconds(1)
    /// Missed heartbeats before the coordinator is considered gone, until it says otherwise.
    public var liveness = 3
    /// Longest wait between reconnection attempts (back-off doubles up to this).
    public var maximumBackoff: Duration = .seconds(8)
    /// On SIGTERM, how long running cells may take to finish before they are handed back.
    public var grace: Duration = .seconds(10)
    /// How the connection is secured.
    public var security = Security.plaintext(insecure: false)
    /// Stable identity of this worker process.
    public var workerID = "\(ProcessInfo.processInfo.hostName)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"

    public init(connect: String, slots: Int, prefetch: Int? = nil) {
        self.connect = connect
        self.slots = slots
        self.prefetch = prefetch ?? slots
    }
}

extension WorkerOptions {
    /// Transport security of a worker.
    public enum Security: Sendable {
        /// No encryption; allowed only to a loopback coordinator unless `insecure`.
        case plaintext(insecure: Bool)
        /// CURVE with this worker's key pair, trusting only the coordinator's `serverKey`.
        case curve(KeyFiles.KeyPair, serverKey: String)
    }
}

/// The I/O shell around the training core: a DEALER socket on a network thread that is never
/// blocked by training (heartbeats keep flowing), and slot threads that run cells.
public final class WorkerEngine: Sendable {
    let options: WorkerOptions
    let logger: Logger
    let stopRequested = Atomic<Bool>(false)
    /// Set when the network loop has ended (the grace period is over): running cells abandon
    /// their work and slot threads exit. Slots do not stop on `stopRequested`: a job the core
    /// handed to a slot just before the stop must still be taken and finished within the grace.
    let abortRunning = Atomic<Bool>(false)
    let queue = JobQueue()
    /// The latest progress of each running cell, by key, for the network thread to send.
    let board = Mutex<[String: Message.CellProgress]>([:])
    /// The runners computing a cell now, by slot: a stop asks each for a checkpoint (SIGTERM).
    let busyRunners = Mutex<[Int: pid_t]>([:])
    let context: Context
    let resultsEndpoint: String

    public init(options: WorkerOptions, logger: Logger) throws {
        if case .plaintext(let insecure) = options.security, !Endpoint.isLocal(options.connect), !insecure {
            throw IsosweepError(
                .security,
                "refusing to connect to \(options.connect) without encryption: plain TCP is allowed only on loopback",
                remedy: """
                    make a key pair with `isosweep keygen --out keys --name worker1`, give its .pub to the coordinator's --allow folder, \
                    and pass --curve-secret keys/worker1.secret --server-key COORDINATOR.pub; or --insecure if this network is truly private
                    """
            )
        }
        self.options = options
        self.logger = logger
        self.context = try Context()
        self.resultsEndpoint = "inproc://isosweep-results-\(UUID().uuidString)"
    }

    /// Asks the worker to finish or hand back its cells, say BYE and return.
    public func requestStop() {
        stopRequested.store(true, ordering: .sequentiallyConsistent)
    }

    /// Runs on dedicated threads until stopped; use from async code.
    public func run() async throws -> WorkerExit {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<WorkerExit, any Error>) in
            let thread = Thread { [self] in
                do {
                    continuation.resume(returning: try runBlocking())
                } catch {
                    continuation.resume(throwing: error)
                }
            }
            thread.name = "isosweep-worker-network"
            thread.start()
        }
    }

    /// The network loop, on the calling thread. Every slot must start (its hand-over socket
    /// connected) before the worker registers: a slot that cannot start is an error, not a
    /// worker that quietly runs fewer cells than it advertises.
    public func runBlocking() throws -> WorkerExit {
        // A runner that died while idle is found by writing its next job: that write must fail
        // (EPIPE, and the slot starts another runner), not kill the worker with SIGPIPE.
        signal(SIGPIPE, SIG_IGN)
        let pull = try Socket(context, .pull)
        try pull.bind(resultsEndpoint)
        defer { pull.close() }
        let started = DispatchSemaphore(value: 0)
        let slotFailures = Mutex<[String]>([])
        let slotsDone = Atomic<Int>(0)
        for slot in 0..<options.slots {
            let thread = Thread { [self] in
                runSlot(slot) { failure in
                    if let failure { slotFailures.withLock { $0.append(failure) } }
                    started.signal()
                }
                slotsDone.add(1, ordering: .sequentiallyConsistent)
            }
            thread.name = "isosweep-slot-\(slot)"
            thread.start()
        }
        for _ in 0..<options.slots { started.wait() }
        if let failure = slotFailures.withLock({ $0.first }) {
            abortRunning.store(true, ordering: .sequentiallyConsistent)
            throw IsosweepError(
                .worker,
                failure,
                remedy: "the worker did not start; check the process's limits (open files, threads)"
            )
        }
        var link = WorkerLink(engine: self)
        defer { link.close() }
        let exit: WorkerExit
        do {
            exit = try link.loop(pull: pull)
        } catch {
            abortRunning.store(true, ordering: .sequentiallyConsistent)
            throw error
        }
        // Running cells abandon their work at their next step; wait for every slot thread so
        // that nothing is computing while the process exits.
        stopRequested.store(true, ordering: .sequentiallyConsistent)
        abortRunning.store(true, ordering: .sequentiallyConsistent)
        let deadline = ContinuousClock.now + .seconds(30)
        while slotsDone.load(ordering: .sequentiallyConsistent) < options.slots && ContinuousClock.now < deadline {
            Thread.sleep(forTimeInterval: 0.01)
        }
        return exit
    }

    /// A slot: takes jobs, has its cell runner (a child process, started when first needed and
    /// reused) compute them, and hands each outcome to the network thread over inproc. A runner
    /// that dies fails its cell's attempt with the cause and is replaced. Calls `started` once,
    /// with nil or why the slot cannot run.
    func runSlot(_ slot: Int, started: (String?) -> Void) {
        let push: Socket
        do {
            push = try Socket(context, .push)
            try push.connect(resultsEndpoint)
        } catch {
            started("slot \(slot) cannot open its hand-over socket: \(error)")
            return
        }
        defer { push.close() }
        started(nil)
        var runner: RunnerProcess?
        defer { runner?.kill() }
        while !abortRunning.load(ordering: .relaxed) {
            guard let job = queue.pop(timeout: .now() + .milliseconds(100)) else { continue }
            // Decoding the work only to log it would cost no-op cells most of their time.
            if logger.logLevel <= .info, let parameters = CellWork(json: job.work)?.parameters {
                logger.info(
                    "training cell",
                    metadata: [
                        "key": "\(job.key)", "attempt": "\(job.attempt)", "slot": "\(slot)", "n": "\(parameters.n)",
                        "width": "\(parameters.width)",
                    ]
                )
            }
            let ending = run(job, on: &runner, slot: slot, push: push)
            handOver(Outcome(job: job, ending: ending), from: push, slot: slot)
        }
    }

    /// Asks every runner computing a cell for a checkpoint now (the worker is stopping): each
    /// saves one at its next step and the network thread sends it before BYE.
    func requestCheckpoints() {
        let runners = busyRunners.withLock { Array($0.values) }
        for pid in runners { _ = Glibc.kill(pid, SIGTERM) }
        if !runners.isEmpty { logger.info("asked \(runners.count) running cells for a checkpoint") }
    }

    /// Runs a job on the slot's runner (starting one if needed); the outcome, or why the runner
    /// could not give one. Checkpoints the runner saves go to the network thread through `push`.
    /// Returns early, killing the runner, when the worker aborts, the cell's time or memory runs
    /// out, or its progress stands still for its stall limit.
    func run(_ job: Job, on runner: inout RunnerProcess?, slot: Int = 0, push: Socket? = nil) -> Outcome.Ending {
        let threads = job.limits.threads > 0 ? job.limits.threads : UInt16(clamping: options.blasThreads)
        let request = RunnerChannel.Job(
            key: job.key,
            threads: threads,
            timeLimitMilliseconds: job.limits.timeLimitMilliseconds,
            checkpointEveryMilliseconds: job.limits.checkpointEveryMilliseconds,
            work: job.work,
            resume: job.checkpoint
        )
        let started = ContinuousClock.now
        let killAt = job.limits.timeLimitMilliseconds > 0 ? started + Self.killDelay(job.limits) : nil
        defer {
            board.withLock { _ = $0.removeValue(forKey: job.key) }
            busyRunners.withLock { _ = $0.removeValue(forKey: slot) }
        }
        var watchdog = StallWatchdog(limitMilliseconds: job.limits.stallLimitMilliseconds, now: started)
        // The training step the runner last reported, for the cause of an attempt that ends
        // early (what a retry from a checkpoint computes again is the steps since that one).
        var lastStep: UInt32?
        var atStep: String { lastStep.map { " (last reported at step \($0))" } ?? "" }
        var process: RunnerProcess
        if let idle = runner, (idle.residentBytes ?? 0) > Self.residentAllowance(job, threads: threads) {
            // It kept memory from earlier cells (heap, buffers of more BLAS threads): a fresh
            // runner, so that the cell's estimate and allowance measure this cell alone.
            idle.kill()
            runner = nil
        }
        do {
            process = try runner ?? RunnerProcess()
            runner = process
            do {
                try RunnerChannel.write(.job(request), to: process.input)
            } catch {
                // The idle runner had died: start another once.
                logger.warning("a cell runner died while idle (\(process.waitForExit())); starting another")
                process = try RunnerProcess()
                runner = process
                try RunnerChannel.write(.job(request), to: process.input)
            }
        } catch {
            runner = nil
            return .failure("\(error)")
        }
        busyRunners.withLock { $0[slot] = process.pid }
        while true {
            let read = process.outcomes.next(until: .now + .milliseconds(100))
            switch read {
            case .frame(.done(let done)):
                return done.ok ? .result(done.payload) : .failure(String(decoding: done.payload, as: UTF8.self))
            case .frame(.progress(let progress)):
                let report = Message.CellProgress(
                    key: job.key,
                    phase: Message.CellProgress.Phase(rawValue: progress.phase) ?? .setup,
                    step: progress.step,
                    maxSteps: progress.maxSteps,
                    trainMSE: progress.trainMSE.isFinite ? progress.trainMSE : nil,
                    milliseconds: UInt64(max(0, (ContinuousClock.now - started).milliseconds)),
                    resumedFromStep: job.resumeStep
                )
                board.withLock { $0[job.key] = report }
                watchdog.observe(progress.work, now: .now)
                if progress.phase == CellProgress.Phase.train.rawValue { lastStep = progress.step }
            case .frame(.checkpoint(let checkpoint)):
                watchdog.observe(nil, now: .now)
                if let push { handOver(checkpoint, of: job, from: push, slot: slot) }
            case .timedOut:
                break
            case .endOfFile, .failed, .frame(.job):
                // A runner that breaks the channel is killed first, so that reaping it cannot hang.
                if case .endOfFile = read {} else { process.kill() }
                let cause = process.waitForExit()
                runner = nil
                logger.error("a cell runner died", metadata: ["key": "\(job.key)", "cause": "\(cause)"])
                return .failure("the cell runner died: \(cause)\(atStep)")
            }
            if abortRunning.load(ordering: .relaxed) {
                process.kill()
                runner = nil
                return .failure("the worker stopped before the cell finished")
            }
            if let still = watchdog.stalled(now: .now) {
                process.kill()
                runner = nil
                logger.error("killed a cell runner that made no progress", metadata: ["key": "\(job.key)"])
                return .failure(
                    "no progress for \(Units.formatDuration(still.seconds)) (stall_limit); the runner was killed\(atStep)"
                )
            }
            if let killAt, ContinuousClock.now >= killAt {
                process.kill()
                runner = nil
                let limit = Duration.milliseconds(Int64(job.limits.timeLimitMilliseconds))
                let grace = Self.killDelay(job.limits) - limit
                logger.error("killed a cell runner after its cell's time limit", metadata: ["key": "\(job.key)"])
                return .failure("killed after its time limit of \(limit) (and a grace of \(grace))")
            }
            if job.limits.memoryBytes > 0, let resident = process.residentBytes, resident > job.limits.memoryBytes {
                process.kill()
                runner = nil
                let allowance = Units.formatSize(job.limits.memoryBytes)
                logger.error(
                    "killed a cell runner over its cell's memory allowance",
                    metadata: [
                        "key": "\(job.key)", "resident": "\(resident)", "allowance": "\(job.limits.memoryBytes)",
                    ]
                )
                return .failure(
                    "exceeded its memory allowance of \(allowance) (resident \(Units.formatSize(resident))); raise resources.memory or shrink the cell"
                )
            }
        }
    }

    /// Hands a runner's checkpoint to the network thread (frames as an outcome's, with kind 2 and
    /// the step before the bytes); dropped, with a word, if the hand-over fails: the cell goes on
    /// and the next checkpoint may get through.
    func handOver(_ checkpoint: RunnerChannel.Checkpoint, of job: Job, from push: Socket, slot: Int) {
        var header = WireWriter()
        header.u64(job.session)
        header.u64(job.lease)
        header.u16(job.attempt)
        var step = WireWriter()
        step.u64(checkpoint.step)
        let frames = [header.bytes, Array(job.key.utf8), [2], step.bytes, checkpoint.bytes]
        do {
            _ = try push.send(frames, dontWait: false)
        } catch {
            logger.error(
                "slot \(slot) cannot hand over a checkpoint of cell \(job.key)",
                metadata: ["error": "\(error)"]
            )
        }
    }

    /// Most resident memory an idle runner may hold and still take a cell with a memory
    /// allowance (a fresh one holds ~37 MiB: the runtime, Foundation, OpenBLAS).
    static let freshRunnerResident: UInt64 = 64 << 20

    /// Most resident memory an idle runner may hold and still take `job`: a study cell's
    /// estimate counts a runner's baseline (`CellParameters.reusableRunnerResident`), so a runner
    /// that kept more from earlier cells is replaced; a diagnostic cell only minds it under a
    /// memory allowance.
    static func residentAllowance(_ job: Job, threads: UInt16) -> UInt64 {
        if !CellWork.isNoop(job.work), CellWork(json: job.work)?.parameters != nil {
            return UInt64(CellParameters.reusableRunnerResident(threads: Int(threads)))
        }
        return job.limits.memoryBytes > 0 ? freshRunnerResident : .max
    }

    /// How long after its start a cell with a time limit is killed if it has not ended by itself:
    /// the limit plus a grace of a quarter of it, at least 2 s (a cell stops training at 3/4 of
    /// its limit and its Lipschitz search at the limit; the grace covers the upper bound and the
    /// result's hand-over).
    static func killDelay(_ limits: ResourceLimits) -> Duration {
        let limit = Duration.milliseconds(Int64(limits.timeLimitMilliseconds))
        return limit + max(.seconds(2), limit / 4)
    }

    /// Sends an outcome to the network thread; a failure is logged and retried until it goes
    /// through or the worker stops, never dropped without a word.
    func handOver(_ outcome: Outcome, from push: Socket, slot: Int) {
        var complained = false
        while true {
            do {
                if try push.send(outcome.frames, dontWait: true) { return }
            } catch {
                if !complained {
                    logger.error(
                        "slot \(slot) cannot hand over the outcome of cell \(outcome.job.key); retrying",
                        metadata: ["error": "\(error)"]
                    )
                    complained = true
                }
            }
            if abortRunning.load(ordering: .relaxed) {
                logger.error(
                    "slot \(slot) stopped before it could hand over the outcome of cell \(outcome.job.key); the coordinator will lease it again"
                )
                return
            }
            Thread.sleep(forTimeInterval: 0.01)
        }
    }
}

/// Outcomes cross from a slot to the network thread as frames: [session, lease, attempt], key,
/// [ok], payload.
extension Outcome {
    var frames: [[UInt8]] {
        var header = WireWriter()
        header.u64(job.session)
        header.u64(job.lease)
        header.u16(job.attempt)
        switch ending {
        case .result(let payload): return [header.bytes, Array(job.key.utf8), [1], payload]
        case .failure(let error): return [header.bytes, Array(job.key.utf8), [0], Array(error.utf8)]
        }
    }

    init?(frames: [[UInt8]]) {
        guard frames.count == 4, frames[2].count == 1 else { return nil }
        var header = WireReader(frames[0])
        guard let session = try? header.u64(), let lease = try? header.u64(), let attempt = try? header.u16(),
            header.atEnd
        else { return nil }
        self.init(
            job: Job(
                session: session,
                lease: lease,
                key: String(decoding: frames[1], as: UTF8.self),
                attempt: attempt,
                work: []
            ),
            ending: frames[2][0] == 1 ? .result(frames[3]) : .failure(String(decoding: frames[3], as: UTF8.self))
        )
    }
}
