import CZeroMQ
import Foundation
import Logging
import SweepKit
import TrainingCore
import Synchronization
import ZeroMQ

/// The worker's side of the protocol (zguide's Paranoid Pirate): register, take shards within
/// the credit it grants, send results, heartbeat, and reconnect with back-off when the
/// coordinator goes silent. Lives on the network thread with the DEALER socket.
struct Link {
    enum State {
        case connecting
        case registered
    }

    let engine: WorkerEngine
    var socket: Socket?
    var monitor: Monitor?
    var lastHandshakeComplaint: ContinuousClock.Instant?
    var state = State.connecting
    var session: UInt64 = 0
    var heartbeat: Duration
    var liveness: Int
    var backoff: Duration = .milliseconds(250)
    var nextHello = ContinuousClock.now
    var lastHeard = ContinuousClock.now
    var lastSent = ContinuousClock.now
    /// Jobs queued or running in slots (of any session).
    var inFlight = 0
    /// Credit granted in this session and not yet used by a shard.
    var outstandingCredit = 0
    var capacity: Int { engine.options.slots + engine.options.prefetch }
    /// Jobs queued or running, by cell key, with the lease each result must be sent under
    /// (rebound when the coordinator leases a running cell back after a restart).
    var pending: [String: Job] = [:]
    /// Results not yet acknowledged: resent under a new lease if the coordinator adopts them.
    var offers: [String: Outcome] = [:]
    /// Most unacknowledged results kept.
    static let maximumOffers = 10_000

    init(engine: WorkerEngine) {
        self.engine = engine
        heartbeat = engine.options.heartbeat
        liveness = engine.options.liveness
    }

    /// HELLO, offering the cells still running here and the results not yet acknowledged.
    var hello: Message {
        let queued = engine.queue.keys
        let running = pending.keys.filter { !queued.contains($0) }
        return .hello(
            Message.Hello(
                protocolVersion: Wire.protocolVersion, scienceVersion: UInt16(scienceVersion), workerID: engine.options.workerID,
                build: "isosweep \(IsosweepBuild.version)", host: ProcessInfo.processInfo.hostName, slots: UInt16(clamping: engine.options.slots),
                resumable: Array(Set(running).union(offers.keys).prefix(Wire.maximumShardCells))
            )
        )
    }

    var logger: Logger { engine.logger }

    mutating func close() {
        monitor = nil
        socket?.close()
        socket = nil
    }

    mutating func loop(pull: Socket) throws -> WorkerExit {
        var stopDeadline: ContinuousClock.Instant?
        while true {
            let now = ContinuousClock.now
            if engine.stopRequested.load(ordering: .relaxed) && stopDeadline == nil {
                forget(engine.queue.removeAll())
                stopDeadline = now + engine.options.grace
                logger.notice("stopping: \(inFlight) running cells may finish within \(engine.options.grace), then the rest are handed back")
            }
            if let stopDeadline, inFlight == 0 || now >= stopDeadline {
                if state == .registered, let socket {
                    _ = try? socket.send(Message.bye.encode(), dontWait: true)
                }
                logger.info("worker stopped", metadata: ["handed_back": "\(inFlight)"])
                return .stopped
            }
            var sockets = [pull]
            if let socket { sockets.append(socket) }
            if let monitor { sockets.append(monitor.pollable) }
            let ready = try Poller.readable(sockets, timeoutMilliseconds: 50)
            while let event = monitor?.next() {
                if case .handshakeFailed(let reason) = event, lastHandshakeComplaint.map({ ContinuousClock.now - $0 > .seconds(60) }) ?? true {
                    lastHandshakeComplaint = .now
                    logger.error("the coordinator refused the connection: check that this worker's public key is in its --allow folder and that --server-key is its key", metadata: ["coordinator": "\(engine.options.connect)", "reason": "\(reason)"])
                }
            }
            var grant = 0
            if ready[0] {
                while let received = try pull.receive(dontWait: true) {
                    guard let outcome = Outcome(frames: received.frames) else { continue }
                    inFlight -= 1
                    deliver(outcome)
                    grant += 1
                }
            }
            if ready.count > 1 && ready[1] {
                while let socket, let received = try socket.receive(dontWait: true) {
                    if let exit = try handle(received.frames) { return exit }
                }
            }
            if state == .registered && stopDeadline == nil && grant > 0 {
                let free = capacity - inFlight - outstandingCredit
                if free > 0 {
                    send(.credit(count: UInt32(free)))
                    outstandingCredit += free
                }
            }
            timers(now: ContinuousClock.now)
        }
    }

    /// Forgets jobs that were queued but never started (their leases ended).
    mutating func forget(_ jobs: [Job]) {
        inFlight -= jobs.count
        for job in jobs where pending[job.key]?.lease == job.lease { pending.removeValue(forKey: job.key) }
    }

    /// Sends a finished cell's result (or failure) under its latest lease if that lease belongs
    /// to this session; a result that cannot be sent now is kept to offer at the next HELLO.
    mutating func deliver(_ finished: Outcome) {
        var outcome = finished
        if let binding = pending.removeValue(forKey: outcome.job.key) {
            outcome.job = binding
        }
        if outcome.ok {
            if offers.count >= Self.maximumOffers, let any = offers.keys.first { offers.removeValue(forKey: any) }
            offers[outcome.job.key] = outcome
        }
        guard state == .registered, outcome.job.session == session else {
            logger.debug("kept a result from an earlier session to offer again", metadata: ["key": "\(outcome.job.key)"])
            return
        }
        if outcome.ok {
            send(.result(lease: outcome.job.lease, key: outcome.job.key, attempt: outcome.job.attempt, payload: outcome.payload))
        } else {
            let error = String(decoding: outcome.payload, as: UTF8.self)
            logger.warning("cell failed", metadata: ["key": "\(outcome.job.key)", "error": "\(error)"])
            send(.failed(lease: outcome.job.lease, key: outcome.job.key, attempt: outcome.job.attempt, error: error))
        }
    }

    /// Handles one message from the coordinator; returns an exit when the worker must stop.
    mutating func handle(_ frames: [[UInt8]]) throws -> WorkerExit? {
        let message: Message
        do {
            message = try Message.decode(frames)
        } catch {
            logger.warning("dropped a malformed message from the coordinator", metadata: ["reason": "\(error.reason)"])
            return nil
        }
        lastHeard = .now
        switch message {
        case .welcome(let session, let heartbeatMilliseconds, let liveness):
            self.session = session
            heartbeat = .milliseconds(Int64(heartbeatMilliseconds))
            self.liveness = Int(liveness)
            state = .registered
            backoff = .milliseconds(250)
            // Queued jobs of an earlier session have lost their leases; running ones may be adopted.
            forget(engine.queue.removeAll())
            outstandingCredit = 0
            logger.info("registered", metadata: ["coordinator": "\(engine.options.connect)", "session": "\(session)"])
            let free = capacity - inFlight
            if free > 0 && !engine.stopRequested.load(ordering: .relaxed) {
                send(.credit(count: UInt32(free)))
                outstandingCredit = free
            }
        case .shard(let lease, let cells):
            guard state == .registered else { return nil }
            var pushed = 0
            for cell in cells {
                let job = Job(session: session, lease: lease, key: cell.key, attempt: cell.attempt, work: cell.work)
                if pending[cell.key] != nil {
                    // Still running here: its result will go out under this lease.
                    pending[cell.key] = job
                } else if var done = offers[cell.key] {
                    done.job = job
                    offers[cell.key] = done
                    send(.result(lease: lease, key: cell.key, attempt: cell.attempt, payload: done.payload))
                } else {
                    pending[cell.key] = job
                    engine.queue.push(job)
                    pushed += 1
                }
            }
            inFlight += pushed
            outstandingCredit = max(0, outstandingCredit - pushed)
        case .ack(let keys):
            for key in keys { offers.removeValue(forKey: key) }
        case .heartbeat:
            break
        case .refuse(let reason, let fatal):
            if fatal {
                logger.error("the coordinator refused this worker", metadata: ["reason": "\(reason)"])
                return .refused(reason)
            }
            logger.info("the coordinator asks this worker to register again", metadata: ["reason": "\(reason)"])
            reconnect(after: .zero)
        case .hello, .credit, .result, .failed, .bye:
            logger.warning("the coordinator sent \(message.name), which only workers send; dropped")
        }
        return nil
    }

    mutating func timers(now: ContinuousClock.Instant) {
        switch state {
        case .connecting:
            guard now >= nextHello, !engine.stopRequested.load(ordering: .relaxed) else { return }
            close()
            do {
                let socket = try Socket(engine.context, .dealer)
                if case .curve(let keys, let serverKey) = engine.options.security {
                    try socket.makeCurveClient(serverKey: serverKey, publicKey: keys.publicKey, secretKey: keys.secretKey)
                }
                try socket.setOption(ZMQ_SNDHWM, Int32(100_000))
                try socket.setOption(ZMQ_RCVHWM, Int32(100_000))
                monitor = try Monitor(engine.context, watching: socket)
                try socket.connect(engine.options.connect)
                self.socket = socket
                lastHeard = now
                send(hello)
                logger.debug("said HELLO", metadata: ["coordinator": "\(engine.options.connect)"])
            } catch {
                logger.error("cannot connect", metadata: ["coordinator": "\(engine.options.connect)", "error": "\(error)"])
            }
            nextHello = now + backoff
            backoff = min(backoff * 2, engine.options.maximumBackoff)
        case .registered:
            if now - lastHeard > heartbeat * liveness {
                logger.warning("the coordinator is silent; reconnecting", metadata: ["silent_ms": "\((now - lastHeard).milliseconds)"])
                reconnect(after: .zero)
            } else if now - lastSent >= heartbeat {
                send(.heartbeat)
            }
        }
    }

    mutating func reconnect(after delay: Duration) {
        state = .connecting
        session = 0
        outstandingCredit = 0
        nextHello = .now + delay
    }

    mutating func send(_ message: Message) {
        guard let socket else { return }
        do {
            if try socket.send(message.encode(), dontWait: true) { lastSent = .now }
        } catch {
            logger.warning("send failed", metadata: ["message": "\(message.name)", "error": "\(error)"])
        }
    }
}

/// The build's version, reported in HELLO.
public enum IsosweepBuild {
    public static let version = "0.1.0"
}
