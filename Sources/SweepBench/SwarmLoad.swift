import ArgumentParser
import CommandSupport
import Foundation
import SweepCore
import Synchronization
import Worker
import ZeroMQ

/// `isosweep bench swarm-load` (hidden, started by `bench swarm`): many simulated workers in one
/// process, each a real `WorkerCore` (the worker's protocol rules) on its own DEALER socket,
/// whose cells are no-op cells finished the moment they arrive. Runs until SIGTERM, then says
/// BYE for every worker and prints its figures as JSON.
struct SwarmLoad: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "swarm-load",
        abstract: "Simulated workers for bench swarm (not for direct use).",
        shouldDisplay: false
    )

    @Option var connect: String
    @Option var workers = 250
    @Option var slots = 4
    @Option(help: "Names the workers: swarm-PREFIX-i.") var prefix = "0"
    @Option(help: "Fraction of this process's workers that leave (BYE) and come back, per second.") var churn = 0.0
    @Option(help: "Heartbeat interval in milliseconds.") var heartbeat = 1000

    func validate() throws {
        guard (1...10_000).contains(workers), (1...4096).contains(slots), churn >= 0, churn <= 10 else {
            throw ValidationError("--workers 1-10000, --slots 1-4096, --churn 0-10")
        }
    }

    /// One simulated worker: its protocol core and its socket.
    struct Simulated {
        var core: WorkerCore
        var socket: Socket?
        /// Outcomes of cells it received, to report at the next turn.
        var finished: [Outcome] = []
        var welcomed: Date?
        /// Out of the swarm (churn) until this time.
        var awayUntil: Date?
    }

    func run() throws {
        let stop = Atomic<Bool>(false)
        signal(SIGTERM, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: SIGTERM, queue: .global())
        source.setEventHandler { stop.store(true, ordering: .relaxed) }
        source.resume()
        let context = try Context()
        var swarm = (0..<workers).map { index in
            Simulated(core: Self.core(id: "swarm-\(prefix)-\(index)", slots: slots, heartbeat: heartbeat))
        }
        var firstHello: Date?
        var cellsDone = 0
        var leaves = 0
        var lastChurn = Date()
        var churnDebt = 0.0
        var lastTick = ContinuousClock.now
        while !stop.load(ordering: .relaxed) {
            try receive(&swarm, firstHello: &firstHello, context: context)
            cellsDone += reportFinished(&swarm, firstHello: &firstHello, context: context)
            let now = ContinuousClock.now
            if now - lastTick >= .milliseconds(20) {
                lastTick = now
                tick(&swarm, now: now, leaves: leaves, firstHello: &firstHello, context: context)
            }
            if churn > 0 {
                leaves += churnOut(&swarm, debt: &churnDebt, lastChurn: &lastChurn)
            }
        }
        for index in swarm.indices {
            _ = try? swarm[index].socket?.send(Message.bye.encode(), dontWait: true)
        }
        Thread.sleep(forTimeInterval: 0.2)
        for index in swarm.indices { swarm[index].socket?.close() }
        let welcomes = swarm.compactMap(\.welcomed)
        try Output.json(
            SwarmLoadFigures(
                workers: workers,
                welcomed: welcomes.count,
                firstHello: firstHello?.timeIntervalSince1970 ?? 0,
                lastFirstWelcome: welcomes.max()?.timeIntervalSince1970 ?? 0,
                cellsDone: cellsDone,
                leaves: leaves
            )
        )
    }

    /// Carries out the directives of simulated worker `index`'s core: (re)connects its socket to
    /// `connect`, sends its messages, and finishes the cells it is given at once (their outcomes
    /// are reported at the next turn); notes the time of the first HELLO in `firstHello`.
    private func execute(
        _ index: Int,
        _ directives: [WorkerCore.Directive],
        swarm: inout [Simulated],
        firstHello: inout Date?,
        context: Context
    ) {
        for directive in directives {
            switch directive {
            case .connect:
                swarm[index].socket?.close()
                do {
                    let socket = try Socket(context, .dealer)
                    try socket.connect(connect)
                    swarm[index].socket = socket
                } catch {
                    swarm[index].socket = nil
                }
            case .send(let message):
                if case .hello = message, firstHello == nil { firstHello = Date() }
                _ = try? swarm[index].socket?.send(message.encode(), dontWait: true)
            case .run(let job):
                swarm[index].finished.append(Outcome(job: job, ending: .result([])))
            case .recall:
                let unstarted = swarm[index].core.on(.unstarted([]), now: .now)
                execute(index, unstarted, swarm: &swarm, firstHello: &firstHello, context: context)
            case .sendProgress:
                _ = try? swarm[index].socket?.send(Message.progress([]).encode(), dontWait: true)
            case .log, .exit:
                break
            }
        }
    }

    /// Waits up to 5 ms for messages on the connected workers' sockets (sleeps 5 ms when none is
    /// connected), and hands every message received to its worker's core, noting first WELCOMEs.
    private func receive(_ swarm: inout [Simulated], firstHello: inout Date?, context: Context) throws {
        let present = swarm.indices.filter { swarm[$0].socket != nil }
        let sockets = present.map { swarm[$0].socket! }
        let ready = sockets.isEmpty ? [] : try Poller.readable(sockets, timeoutMilliseconds: 5)
        if sockets.isEmpty { Thread.sleep(forTimeInterval: 0.005) }
        for (position, index) in present.enumerated() where ready[position] {
            while let socket = swarm[index].socket, let received = try? socket.receive(dontWait: true) {
                guard let message = try? Message.decode(received.frames) else { continue }
                if case .welcome = message, swarm[index].welcomed == nil { swarm[index].welcomed = Date() }
                let directives = swarm[index].core.on(.received(message), now: .now)
                execute(index, directives, swarm: &swarm, firstHello: &firstHello, context: context)
            }
        }
    }

    /// Reports to each worker's core the outcomes of the cells it has finished since the last
    /// turn; returns how many cells that was.
    private func reportFinished(_ swarm: inout [Simulated], firstHello: inout Date?, context: Context) -> Int {
        var cellsDone = 0
        for index in swarm.indices where !swarm[index].finished.isEmpty {
            let outcomes = swarm[index].finished
            swarm[index].finished = []
            cellsDone += outcomes.count
            let directives = swarm[index].core.on(.finished(outcomes), now: .now)
            execute(index, directives, swarm: &swarm, firstHello: &firstHello, context: context)
        }
        return cellsDone
    }

    /// Ticks the core of every worker not away at `now`, first bringing back those whose time away
    /// is over, each as a new worker process (named after `leaves`, the leaves so far).
    private func tick(
        _ swarm: inout [Simulated],
        now: ContinuousClock.Instant,
        leaves: Int,
        firstHello: inout Date?,
        context: Context
    ) {
        for index in swarm.indices {
            if let away = swarm[index].awayUntil {
                guard Date() >= away else { continue }
                // Back: a new worker process, as a restarted one would be.
                swarm[index].awayUntil = nil
                swarm[index].core = Self.core(
                    id: "swarm-\(prefix)-\(index)-\(leaves)",
                    slots: slots,
                    heartbeat: heartbeat
                )
            }
            let directives = swarm[index].core.on(.tick, now: now)
            execute(index, directives, swarm: &swarm, firstHello: &firstHello, context: context)
        }
    }

    /// Makes workers leave at the `churn` rate for the time since `lastChurn` (carrying the
    /// fraction over in `churnDebt`); returns how many left.
    private func churnOut(_ swarm: inout [Simulated], debt churnDebt: inout Double, lastChurn: inout Date) -> Int {
        var leaves = 0
        churnDebt += churn * Double(workers) * Date().timeIntervalSince(lastChurn)
        lastChurn = Date()
        while churnDebt >= 1 {
            churnDebt -= 1
            let index = Int.random(in: 0..<workers)
            guard swarm[index].awayUntil == nil, swarm[index].socket != nil else { continue }
            // Leaves the way a stopped worker does: BYE, then gone for a while.
            _ = try? swarm[index].socket?.send(Message.bye.encode(), dontWait: true)
            swarm[index].socket?.close()
            swarm[index].socket = nil
            swarm[index].awayUntil = Date().addingTimeInterval(Double.random(in: 0.2...1.0))
            leaves += 1
        }
        return leaves
    }

    static func core(id: String, slots: Int, heartbeat: Int) -> WorkerCore {
        var configuration = WorkerCore.Configuration(
            workerID: id,
            build: "isosweep swarm-load",
            host: "swarm",
            slots: slots,
            prefetch: slots,
            heartbeat: .milliseconds(heartbeat),
            liveness: 3,
            maximumBackoff: .seconds(2),
            grace: .seconds(1)
        )
        configuration.cores = slots
        configuration.memoryBytes = 1 << 30
        return WorkerCore(configuration: configuration, now: .now)
    }
}

/// What one `swarm-load` process saw.
struct SwarmLoadFigures: Codable {
    var workers: Int
    var welcomed: Int
    /// Seconds since 1970 of its first HELLO, and of the last worker's first WELCOME.
    var firstHello: Double
    var lastFirstWelcome: Double
    var cellsDone: Int
    var leaves: Int

    enum CodingKeys: String, CodingKey {
        case workers, welcomed, leaves
        case firstHello = "first_hello"
        case lastFirstWelcome = "last_first_welcome"
        case cellsDone = "cells_done"
    }
}
