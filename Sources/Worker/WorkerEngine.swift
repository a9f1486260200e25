import CZeroMQ
import Foundation
public import Logging
import SweepKit
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
    /// OpenBLAS threads per cell (default 1: two single-threaded cells beat one two-threaded one).
    public var blasThreads = 1
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

/// Transport security of a worker.
public enum Security: Sendable {
    /// No encryption; allowed only to a loopback coordinator unless `insecure`.
    case plaintext(insecure: Bool)
    /// CURVE with this worker's key pair, trusting only the coordinator's `serverKey`.
    case curve(KeyFiles.KeyPair, serverKey: String)
}

/// Why a worker stopped.
public enum WorkerExit: Sendable, Equatable {
    /// Asked to stop (SIGTERM/SIGINT).
    case stopped
    /// The coordinator refused it for good (e.g. another protocol version).
    case refused(String)
}

/// The I/O shell around the training core: a DEALER socket on a network thread that is never
/// blocked by training (heartbeats keep flowing), and slot threads that run cells.
public final class WorkerEngine: Sendable {
    let options: WorkerOptions
    let logger: Logger
    let stopRequested = Atomic<Bool>(false)
    /// Set when the grace period is over: running cells abandon their work.
    let abortRunning = Atomic<Bool>(false)
    let queue = JobQueue()
    let context: Context
    let resultsEndpoint: String

    public init(options: WorkerOptions, logger: Logger) throws {
        if case .plaintext(let insecure) = options.security, !Endpoint.isLocal(options.connect), !insecure {
            throw SecurityError(message: """
                refusing to connect to \(options.connect) without encryption: plain TCP is allowed only on loopback. \
                Make a key pair with `isosweep keygen --out keys --name worker1`, give its .pub to the coordinator's --allow folder, \
                and pass --curve-secret keys/worker1.secret --server-key COORDINATOR.pub; or --insecure if this network is truly private
                """)
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

    /// The network loop, on the calling thread.
    public func runBlocking() throws -> WorkerExit {
        BLAS.setThreads(options.blasThreads)
        let pull = try Socket(context, .pull)
        try pull.bind(resultsEndpoint)
        defer { pull.close() }
        let slotsDone = Atomic<Int>(0)
        for slot in 0..<options.slots {
            let thread = Thread { [self] in
                runSlot(slot)
                slotsDone.add(1, ordering: .sequentiallyConsistent)
            }
            thread.name = "isosweep-slot-\(slot)"
            thread.start()
        }
        var link = Link(engine: self)
        defer { link.close() }
        let exit = try link.loop(pull: pull)
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

    /// A slot: takes jobs, trains, hands the outcome to the network thread over inproc.
    func runSlot(_ slot: Int) {
        guard let push = try? Socket(context, .push) else { return }
        defer { push.close() }
        do { try push.connect(resultsEndpoint) } catch { return }
        let decoder = JSONDecoder()
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        while !stopRequested.load(ordering: .relaxed) {
            guard let job = queue.pop(timeout: .now() + .milliseconds(100)) else { continue }
            var outcome = Outcome(job: job, ok: true, payload: [])
            do {
                let work = try decoder.decode(CellWork.self, from: Data(job.work))
                switch work {
                case .train(let parameters):
                    logger.info("training cell", metadata: ["key": "\(job.key)", "attempt": "\(job.attempt)", "slot": "\(slot)"])
                    let result = try Cell.run(parameters) { [self] in abortRunning.load(ordering: .relaxed) }.result
                    outcome.payload = Array(try encoder.encode(result))
                case .noop(_, let fail):
                    if fail { throw TrainingError(.invalidParameter, "this no-op cell always fails (test cell)") }
                }
            } catch let error as TrainingError {
                outcome.ok = false
                outcome.payload = Array(error.message.utf8)
            } catch {
                outcome.ok = false
                outcome.payload = Array("cannot run the cell: \(error)".utf8)
            }
            _ = try? push.send(outcome.frames)
        }
    }
}

/// A finished job as it crosses from a slot to the network thread.
struct Outcome {
    var job: Job
    var ok: Bool
    var payload: [UInt8]

    var frames: [[UInt8]] {
        var header = WireWriter()
        header.u64(job.session)
        header.u64(job.lease)
        header.u16(job.attempt)
        return [header.bytes, Array(job.key.utf8), [ok ? 1 : 0], payload]
    }

    init(job: Job, ok: Bool, payload: [UInt8]) {
        self.job = job
        self.ok = ok
        self.payload = payload
    }

    init?(frames: [[UInt8]]) {
        guard frames.count == 4, frames[2].count == 1 else { return nil }
        var header = WireReader(frames[0])
        guard let session = try? header.u64(), let lease = try? header.u64(), let attempt = try? header.u16(), header.atEnd else { return nil }
        job = Job(session: session, lease: lease, key: String(decoding: frames[1], as: UTF8.self), attempt: attempt, work: [])
        ok = frames[2][0] == 1
        payload = frames[3]
    }
}
