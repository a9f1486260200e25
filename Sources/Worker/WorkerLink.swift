import Diagnostics
import Foundation
import Logging
import SweepCore
import Synchronization
import ZeroMQ

/// The worker's network loop, a thin shell around `WorkerCore`: it owns the DEALER socket (and
/// its monitor) on the network thread, turns socket, slot and clock happenings into events, and
/// carries out the core's directives. Nothing here decides anything about the protocol.
struct WorkerLink {
    let engine: WorkerEngine
    var core: WorkerCore
    var socket: Socket?
    var monitor: Monitor?

    init(engine: WorkerEngine) {
        self.engine = engine
        let options = engine.options
        var configuration = WorkerCore.Configuration(
            workerID: options.workerID,
            build: "isosweep \(IsosweepBuild.version)",
            host: ProcessInfo.processInfo.hostName,
            slots: options.slots,
            prefetch: options.prefetch,
            heartbeat: options.heartbeat,
            liveness: options.liveness,
            maximumBackoff: options.maximumBackoff,
            grace: options.grace
        )
        configuration.cores = options.cores
        configuration.memoryBytes = options.memoryBytes
        configuration.blasCore = options.blasCore
        core = WorkerCore(configuration: configuration, now: .now)
    }

    var logger: Logger { engine.logger }

    mutating func close() {
        monitor = nil
        socket?.close()
        socket = nil
    }

    /// Runs until the core says the worker is done; `pull` receives the slots' outcomes.
    mutating func loop(pull: Socket) throws -> WorkerExit {
        var stopSignalled = false
        while true {
            if !stopSignalled && engine.stopRequested.load(ordering: .relaxed) {
                stopSignalled = true
                // Running cells save a checkpoint now; it goes out before BYE, so that a cell
                // handed back resumes elsewhere from here.
                engine.requestCheckpoints()
                if let exit = execute(core.on(.stop, now: .now)) { return exit }
            }
            var sockets = [pull]
            if let socket { sockets.append(socket) }
            if let monitor { sockets.append(monitor.pollable) }
            let ready = try Poller.readable(sockets, timeoutMilliseconds: 50)
            while let event = monitor?.next() {
                if case .handshakeFailed(let reason) = event,
                    let exit = execute(core.on(.handshakeFailed(reason), now: .now))
                {
                    return exit
                }
            }
            if ready[0] {
                var outcomes: [Outcome] = []
                while let received = try pull.receive(dontWait: true) {
                    if let checkpoint = Self.checkpoint(received.frames) {
                        if let exit = execute(core.on(checkpoint, now: .now)) { return exit }
                    } else if let outcome = Outcome(frames: received.frames) {
                        outcomes.append(outcome)
                    } else if received.frames.count > 1 {
                        // Our own frames, so a bug: report the cell failed rather than hold its slot forever.
                        let key = String(decoding: received.frames[1], as: UTF8.self)
                        logger.error("a slot handed over an outcome that cannot be read", metadata: ["key": "\(key)"])
                        let job = Job(session: 0, lease: 0, key: key, attempt: 0, work: [])
                        outcomes.append(
                            Outcome(job: job, ending: .failure("the worker lost this cell's outcome"))
                        )
                    } else {
                        logger.error("a slot handed over an outcome without a cell key; dropped")
                    }
                }
                if !outcomes.isEmpty, let exit = execute(core.on(.finished(outcomes), now: .now)) { return exit }
            }
            if ready.count > 1 && ready[1] {
                while let socket, let received = try socket.receive(dontWait: true) {
                    let event: WorkerCore.Event
                    do {
                        event = .received(try Message.decode(received.frames))
                    } catch {
                        event = .malformed(error.message)
                    }
                    if let exit = execute(core.on(event, now: .now)) { return exit }
                }
            }
            if let exit = execute(core.on(.tick, now: .now)) { return exit }
        }
    }

    /// A slot's checkpoint hand-over ([header, key, [2], step, bytes]) as an event, or nil.
    static func checkpoint(_ frames: [[UInt8]]) -> WorkerCore.Event? {
        guard frames.count == 5, frames[2] == [2] else { return nil }
        var step = WireReader(frames[3])
        guard let value = try? step.u64(), step.atEnd else { return nil }
        return .checkpointed(key: String(decoding: frames[1], as: UTF8.self), step: value, bytes: frames[4])
    }

    /// Carries out directives; returns the exit when the core ends the worker.
    mutating func execute(_ directives: [WorkerCore.Directive]) -> WorkerExit? {
        for directive in directives {
            switch directive {
            case .connect: connect()
            case .send(let message): send(message)
            case .run(let job): engine.queue.push(job)
            case .recall:
                if let exit = execute(core.on(.unstarted(engine.queue.removeAll()), now: .now)) { return exit }
            case .sendProgress:
                let reports = engine.board.withLock { Array($0.values) }
                send(.progress(Array(reports.sorted { $0.key < $1.key }.prefix(Wire.maximumShardCells))))
            case .log(let level, let text): log(level, text)
            case .exit(let exit): return exit
            }
        }
        return nil
    }

    mutating func connect() {
        close()
        do {
            let socket = try Socket(engine.context, .dealer)
            if case .curve(let keys, let serverKey) = engine.options.security {
                try socket.makeCurveClient(serverKey: serverKey, publicKey: keys.publicKey, secretKey: keys.secretKey)
            }
            try socket.set(.sendHighWaterMark(100_000))
            try socket.set(.receiveHighWaterMark(100_000))
            monitor = try Monitor(engine.context, watching: socket)
            try socket.connect(engine.options.connect)
            self.socket = socket
        } catch {
            logger.error("cannot connect", metadata: ["coordinator": "\(engine.options.connect)", "error": "\(error)"])
        }
    }

    func send(_ message: Message) {
        guard let socket else { return }
        do {
            _ = try socket.send(message.encode(), dontWait: true)
        } catch {
            logger.warning("send failed", metadata: ["message": "\(message.name)", "error": "\(error)"])
        }
    }

    func log(_ level: LogLevel, _ text: String) {
        // LogLevel's raw values are swift-log's level names.
        let level = Logger.Level(rawValue: level.rawValue) ?? .info
        logger.log(level: level, "\(text)", metadata: ["coordinator": "\(engine.options.connect)"])
    }
}
