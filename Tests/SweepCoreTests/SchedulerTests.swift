import Diagnostics
import SweepCore
import Testing
import TrainingCore

/// Every scheduling rule, without a socket: events in, directives out.
@Suite struct SchedulerTests {
    let t0 = ContinuousClock.now
    static let workerA: [UInt8] = [0xA]
    static let workerB: [UInt8] = [0xB]

    func key(_ i: Int) -> String { SHA256.hex([UInt8(i)]) }

    func scheduler(cells: Int = 5, maxAttempts: Int = 3, states: [Scheduler.CellState]? = nil) -> Scheduler {
        let seeds = (0..<cells).map { i in
            Scheduler.CellSeed(
                key: key(i),
                work: [UInt8(i)],
                cost: Double(i),
                state: states?[i] ?? .queued,
                attempts: 0,
                lastError: nil
            )
        }
        return Scheduler(
            configuration: .init(heartbeatInterval: .seconds(1), liveness: 3, maxAttempts: maxAttempts, session: 42),
            cells: seeds
        )
    }

    func hello(
        _ id: String,
        slots: UInt16 = 2,
        protocolVersion: UInt16 = Wire.protocolVersion,
        science: UInt16 = UInt16(scienceVersion),
        resumable: [String] = []
    ) -> Message {
        .hello(
            Message.Hello(
                protocolVersion: protocolVersion,
                scienceVersion: science,
                workerID: id,
                build: "b",
                host: "h",
                slots: slots,
                resumable: resumable
            )
        )
    }

    func sends(_ directives: [Scheduler.Directive], to peer: [UInt8]? = nil) -> [Message] {
        directives.compactMap { if case .send(let to, let m) = $0, peer == nil || to == peer { m } else { nil } }
    }

    func shards(_ directives: [Scheduler.Directive]) -> [(lease: UInt64, cells: [Message.Assignment])] {
        sends(directives).compactMap { if case .shard(let lease, let cells) = $0 { (lease, cells) } else { nil } }
    }

    func commits(_ directives: [Scheduler.Directive]) -> [Scheduler.Commit] {
        directives.compactMap { if case .commit(let c) = $0 { c } else { nil } }
    }

    /// Registers worker A with `credit` and returns the first shard.
    func start(_ s: inout Scheduler, credit: UInt32 = 2) -> (lease: UInt64, cells: [Message.Assignment]) {
        let welcome = s.on(.message(from: Self.workerA, hello("A")), now: t0)
        #expect(sends(welcome).contains { if case .welcome = $0 { true } else { false } })
        let out = s.on(.message(from: Self.workerA, .credit(count: credit)), now: t0)
        return shards(out)[0]
    }

    @Test func largestCellsFirstWithinCredit() {
        var s = scheduler()
        let shard = start(&s, credit: 2)
        #expect(shard.cells.map(\.key) == [key(4), key(3)])
        #expect(shard.cells.allSatisfy { $0.attempt == 1 })
        #expect(s.counts[.leased] == 2 && s.counts[.queued] == 3)
        // No credit left: nothing more is sent until the worker asks.
        #expect(shards(s.on(.tick, now: t0 + .milliseconds(10))).isEmpty)
    }

    @Test func resultsAreAcknowledgedOnlyAfterCommit() {
        var s = scheduler()
        let shard = start(&s)
        let out = s.on(
            .message(from: Self.workerA, .result(lease: shard.lease, key: key(4), attempt: 1, payload: [1])),
            now: t0
        )
        let commit = commits(out)
        #expect(commit.count == 1 && commit[0].key == key(4) && commit[0].worker == "A")
        #expect(sends(out).isEmpty)  // no ACK before the commit
        #expect(s.state(of: key(4)) == .leased)
        let after = s.on(.committed(commit), now: t0)
        #expect(sends(after, to: Self.workerA) == [.ack(keys: [key(4)])])
        #expect(s.state(of: key(4)) == .done)
        // A duplicate is acknowledged again and not committed twice.
        let duplicate = s.on(
            .message(from: Self.workerA, .result(lease: shard.lease, key: key(4), attempt: 1, payload: [2])),
            now: t0
        )
        #expect(commits(duplicate).isEmpty)
        #expect(sends(duplicate) == [.ack(keys: [key(4)])])
    }

    @Test func aResultInFlightToTheStoreIsNotCommittedTwice() {
        var s = scheduler()
        let shard = start(&s)
        let result = Message.result(lease: shard.lease, key: key(4), attempt: 1, payload: [1])
        #expect(commits(s.on(.message(from: Self.workerA, result), now: t0)).count == 1)
        #expect(commits(s.on(.message(from: Self.workerA, result), now: t0)).isEmpty)
    }

    @Test func resultsUnderLeasesTheSenderDoesNotHoldAreDropped() {
        var s = scheduler()
        let shard = start(&s)
        _ = s.on(.message(from: Self.workerB, hello("B")), now: t0)
        let cases: [([UInt8], Message)] = [
            // another worker's lease
            (Self.workerB, .result(lease: shard.lease, key: key(4), attempt: 1, payload: [])),
            // wrong lease
            (Self.workerA, .result(lease: shard.lease + 1, key: key(4), attempt: 1, payload: [])),
            (Self.workerA, .result(lease: shard.lease, key: key(4), attempt: 2, payload: [])),  // wrong attempt
            (Self.workerA, .result(lease: shard.lease, key: key(0), attempt: 1, payload: [])),  // a queued cell
            (Self.workerA, .result(lease: shard.lease, key: key(99), attempt: 1, payload: [])),  // unknown cell
        ]
        for (peer, message) in cases {
            let out = s.on(.message(from: peer, message), now: t0)
            #expect(commits(out).isEmpty, "\(message)")
            #expect(out.contains { if case .log(.warning, _) = $0 { true } else { false } })
        }
        #expect(s.counts[.done, default: 0] == 0)
    }

    @Test func failuresRetryThenFailWithTheLastError() {
        var s = scheduler(cells: 1, maxAttempts: 2)
        var shard = start(&s, credit: 1)
        var out = s.on(
            .message(from: Self.workerA, .failed(lease: shard.lease, key: key(0), attempt: 1, error: "boom 1")),
            now: t0
        )
        #expect(s.state(of: key(0)) == .queued)
        out = s.on(.message(from: Self.workerA, .credit(count: 1)), now: t0)
        shard = shards(out)[0]
        #expect(shard.cells[0].attempt == 2)
        out = s.on(
            .message(from: Self.workerA, .failed(lease: shard.lease, key: key(0), attempt: 2, error: "boom 2")),
            now: t0
        )
        #expect(s.state(of: key(0)) == .failed)
        #expect(s.isFinished)
        let persisted = out.compactMap { if case .persist(let u) = $0 { u } else { nil } }
        #expect(persisted.last?.state == .failed && persisted.last?.attempts == 2)
        #expect(persisted.last?.lastError?.contains("boom 2") == true)
    }

    /// Requests from the database: a FAILED cell (loaded without its work) is requeued with the
    /// work given and its attempts from 0; a queued cell is cancelled and never leased; the sweep
    /// counts cancelled cells as finished.
    @Test func requeuedAndCancelledCellsByRequest() {
        var s = scheduler(cells: 3, maxAttempts: 2, states: [.failed, .queued, .done])
        #expect(!s.isFinished && s.counts[.failed] == 1)
        var out = s.on(.cancel([key(1), key(2)]), now: t0)
        #expect(s.state(of: key(1)) == .cancelled && s.state(of: key(2)) == .done)  // done stays done
        #expect(s.isFinished && s.remainingCost == 0)
        #expect(
            out.contains { if case .persist(let u) = $0 { u.key == key(1) && u.state == .cancelled } else { false } }
        )
        out = s.on(.requeue([(key(0), [7, 7], .none)]), now: t0)
        #expect(s.state(of: key(0)) == .queued && s.attempts(of: key(0)) == 0 && !s.isFinished)
        #expect(s.remainingCost == 0)  // cost(0) is 0 in this fixture
        // A worker gets the requeued cell, with the work the request carried, not the cancelled one.
        let shard = start(&s, credit: 5)
        #expect(shard.cells.map(\.key) == [key(0)] && shard.cells[0].work == [7, 7] && shard.cells[0].attempt == 1)
        // A cancelled cell can be requeued too: back in the queue, and at once to A, which has credit.
        out = s.on(.requeue([(key(1), [1], .none)]), now: t0)
        #expect(s.state(of: key(1)) == .leased && shards(out).first?.cells.map(\.key) == [key(1)])
        // Requeue leaves queued, running and done cells alone.
        out = s.on(.requeue([(key(2), [2], .none)]), now: t0)
        #expect(s.state(of: key(2)) == .done && !out.contains { if case .persist = $0 { true } else { false } })
    }

    @Test func aSilentWorkerIsDeadAfterLivenessTimesInterval() {
        var s = scheduler()
        let first = start(&s, credit: 3)
        // A delivers one result (so it is a real worker), then falls silent; B keeps talking.
        let commit = commits(
            s.on(
                .message(from: Self.workerA, .result(lease: first.lease, key: key(4), attempt: 1, payload: [])),
                now: t0
            )
        )
        _ = s.on(.committed(commit), now: t0)
        _ = s.on(.message(from: Self.workerB, hello("B")), now: t0)
        _ = s.on(.message(from: Self.workerB, .heartbeat), now: t0 + .milliseconds(2900))
        var out = s.on(.tick, now: t0 + .milliseconds(2900))
        #expect(s.workersAlive == 2)
        out = s.on(.tick, now: t0 + .milliseconds(3100))
        #expect(s.workersAlive == 1)
        #expect(s.counts[.leased, default: 0] == 0 && s.counts[.queued] == 4)
        #expect(out.contains { if case .recordWorker(let w) = $0 { w.id == "A" && !w.alive } else { false } })
        // Its cells go to B as soon as B has credit; the lost attempt counts.
        out = s.on(.message(from: Self.workerB, .credit(count: 1)), now: t0 + .milliseconds(3200))
        let shard = shards(out)[0]
        #expect(shard.cells.map(\.key) == [key(3)])
        #expect(shard.cells[0].attempt == 2)
    }

    @Test func peersThatNeverDeliverCannotFailCells() {
        // A hostile or crashing peer registers, takes every cell and vanishes, again and again:
        // no attempt is used, and only after maxLosses does the cell end FAILED.
        var s = scheduler(cells: 2, maxAttempts: 3)
        var now = t0
        for round in 0..<29 {
            let identity: [UInt8] = [UInt8(round)]
            _ = s.on(.message(from: identity, hello("ghost-\(round)")), now: now)
            _ = s.on(.message(from: identity, .credit(count: 100)), now: now)
            now = now + .seconds(4)
            _ = s.on(.tick, now: now)
        }
        #expect(s.counts[.queued] == 2 && s.attempts(of: key(0)) == 0)
        _ = s.on(.message(from: [99], hello("ghost-last")), now: now)
        _ = s.on(.message(from: [99], .credit(count: 100)), now: now)
        let out = s.on(.tick, now: now + .seconds(4))
        #expect(s.counts[.failed] == 2)
        let persisted = out.compactMap { if case .persist(let u) = $0 { u } else { nil } }
        #expect(persisted.allSatisfy { $0.lastError?.contains("lost 30 times") == true })
    }

    @Test func heartbeatsGoToQuietWorkers() {
        var s = scheduler()
        _ = s.on(.message(from: Self.workerA, hello("A")), now: t0)
        #expect(sends(s.on(.tick, now: t0 + .milliseconds(500))).isEmpty)
        #expect(sends(s.on(.tick, now: t0 + .milliseconds(1000))) == [.heartbeat])
    }

    @Test func byeHandsBackWithoutUsingAnAttempt() {
        var s = scheduler(cells: 2)
        _ = start(&s, credit: 2)
        _ = s.on(.message(from: Self.workerA, .bye), now: t0)
        #expect(s.workersAlive == 0 && s.counts[.queued] == 2)
        #expect(s.attempts(of: key(1)) == 0)
    }

    @Test func aWorkerThatReconnectsLosesItsOldLeases() {
        var s = scheduler(cells: 2)
        let shard = start(&s, credit: 2)
        // The same worker id from a new connection (identity B).
        let out = s.on(.message(from: Self.workerB, hello("A")), now: t0)
        #expect(s.workersAlive == 1)
        #expect(s.counts[.queued] == 2)
        #expect(sends(out, to: Self.workerB).contains { if case .welcome = $0 { true } else { false } })
        // Results under the old lease are no longer accepted.
        #expect(
            commits(
                s.on(
                    .message(from: Self.workerB, .result(lease: shard.lease, key: key(1), attempt: 1, payload: [])),
                    now: t0
                )
            ).isEmpty
        )
    }

    @Test func strangersAndOtherVersionsAreRefused() {
        var s = scheduler()
        #expect(
            sends(s.on(.message(from: [1], .heartbeat), now: t0)) == [
                .refuse(reason: "not registered with this coordinator: say HELLO", fatal: false)
            ]
        )
        let protocolRefusal = sends(s.on(.message(from: [2], hello("old", protocolVersion: 99)), now: t0))
        #expect(protocolRefusal.count == 1)
        if case .refuse(let reason, let fatal) = protocolRefusal.first {
            #expect(fatal && reason.contains("protocol version 99"))
        }
        let scienceRefusal = sends(s.on(.message(from: [3], hello("sci", science: 77)), now: t0))
        if case .refuse(let reason, let fatal) = scienceRefusal.first {
            #expect(fatal && reason.contains("science version 77"))
        } else {
            Issue.record("no refusal")
        }
        #expect(s.workersAlive == 0)
    }

    @Test func resumeRequeuesLeasedCellsAndKeepsDoneOnes() {
        var s = scheduler(cells: 3, states: [.done, .leased, .failed])
        #expect(s.counts[.done] == 1 && s.counts[.queued] == 1 && s.counts[.failed] == 1)
        let shard = start(&s, credit: 5)
        #expect(shard.cells.map(\.key) == [key(1)])
        #expect(!s.isFinished)
    }

    @Test func stopDispatchingStillCommits() {
        var s = scheduler()
        let shard = start(&s, credit: 1)
        s.stopDispatching()
        #expect(shards(s.on(.message(from: Self.workerA, .credit(count: 3)), now: t0)).isEmpty)
        let out = s.on(
            .message(from: Self.workerA, .result(lease: shard.lease, key: key(4), attempt: 1, payload: [])),
            now: t0
        )
        #expect(commits(out).count == 1)
    }

    @Test func leasesOfTwoCoordinatorRunsNeverCollide() {
        var first = scheduler()
        let a = start(&first, credit: 1)
        var second = Scheduler(
            configuration: .init(session: 43),
            cells: [.init(key: key(0), work: [], cost: 0, state: .queued, attempts: 0, lastError: nil)]
        )
        let b = start(&second, credit: 1)
        #expect(a.lease != b.lease)
        #expect(a.lease >> 32 == 42 && b.lease >> 32 == 43)
    }

    @Test func aRestartedCoordinatorLeasesRunningCellsBackToTheirWorker() {
        // After a restart every unfinished cell is queued; a worker says HELLO offering the cells it
        // is still computing (and one that finished elsewhere, and one it does not know).
        var s = scheduler(cells: 4, states: [.queued, .queued, .done, .queued])
        _ = s.on(.message(from: Self.workerB, hello("B")), now: t0)
        _ = s.on(.message(from: Self.workerB, .credit(count: 1)), now: t0)  // B takes the largest queued: cell 3
        let out = s.on(.message(from: Self.workerA, hello("A", resumable: [key(1), key(2), key(3), key(9)])), now: t0)
        let adopted = shards(out)
        #expect(adopted.count == 1)
        #expect(adopted.first?.cells.map(\.key) == [key(1)])  // 2 is done, 3 is B's, 9 is unknown
        #expect(sends(out, to: Self.workerA).contains(.ack(keys: [key(2)])))  // the done one is acknowledged
        #expect(s.state(of: key(1)) == .leased)
        // Its result comes back under the new lease and is committed.
        let lease = adopted[0].lease
        #expect(
            commits(
                s.on(.message(from: Self.workerA, .result(lease: lease, key: key(1), attempt: 1, payload: [])), now: t0)
            ).count == 1
        )
        // The adoption did not use A's credit: A's first CREDIT still gets the next cell.
        #expect(
            shards(s.on(.message(from: Self.workerA, .credit(count: 1)), now: t0)).first?.cells.map(\.key) == [key(0)]
        )
    }

    @Test func cellsInFlightAtARestartWaitForTheirWorkers() {
        // Cells 2 and 3 were leased to A and B when the previous run stopped.
        let seeds = (0..<4).map { i in
            Scheduler.CellSeed(
                key: key(i),
                work: [],
                cost: Double(i),
                state: i >= 2 ? .leased : .queued,
                attempts: i >= 2 ? 1 : 0,
                lastError: nil,
                leasedTo: i == 2 ? "A" : i == 3 ? "B" : nil
            )
        }
        var s = Scheduler(configuration: .init(heartbeatInterval: .seconds(1), liveness: 3, session: 7), cells: seeds)
        // C comes first and asks for everything: it gets only the unreserved cells.
        _ = s.on(.message(from: [0xC], hello("C")), now: t0)
        let first = shards(s.on(.message(from: [0xC], .credit(count: 10)), now: t0))
        #expect(Set(first.flatMap { $0.cells.map(\.key) }) == [key(0), key(1)])
        // A comes back offering its cell and gets it back.
        let adopted = shards(s.on(.message(from: Self.workerA, hello("A", resumable: [key(2)])), now: t0 + .seconds(1)))
        #expect(adopted.first?.cells.map(\.key) == [key(2)])
        #expect(adopted.first?.cells.first?.attempt == 2)
        // B never comes back: after the reclaim window (2 x 3 s + 8 s) its cell goes to C, which
        // meanwhile stays alive and asks for one more cell.
        // (A, silent since, is dead by then and its cell went back to the queue too.)
        let before =
            shards(s.on(.message(from: [0xC], .credit(count: 2)), now: t0 + .seconds(12)))
            + shards(s.on(.tick, now: t0 + .seconds(13)))
        #expect(!before.flatMap { $0.cells.map(\.key) }.contains(key(3)))
        let released = shards(s.on(.tick, now: t0 + .seconds(14.5)))
        #expect(released.flatMap { $0.cells.map(\.key) }.contains(key(3)))
    }
}
