import SweepCore
import Testing
import TrainingCore
import Worker

/// Every rule of the worker's protocol, without sockets: events in, directives out.
@Suite struct WorkerCoreTests {
    let t0 = ContinuousClock.now

    func configuration(slots: Int = 2, prefetch: Int = 1, grace: Duration = .seconds(10)) -> WorkerCore.Configuration {
        WorkerCore.Configuration(
            workerID: "w1",
            build: "test",
            host: "h",
            slots: slots,
            prefetch: prefetch,
            heartbeat: .seconds(1),
            liveness: 3,
            maximumBackoff: .seconds(8),
            grace: grace
        )
    }

    static func key(_ i: Int) -> String {
        let hex = String(i, radix: 16)
        return String(repeating: "0", count: 64 - hex.count) + hex
    }

    static func shard(_ lease: UInt64, _ keys: [Int], attempt: UInt16 = 1) -> Message {
        .shard(
            lease: lease,
            cells: keys.map { Message.Assignment(key: key($0), attempt: attempt, work: Array("{}".utf8)) }
        )
    }

    /// A worker registered in `session` at t0.
    func registered(
        slots: Int = 2,
        prefetch: Int = 1,
        grace: Duration = .seconds(10),
        session: UInt64 = 7
    ) -> WorkerCore {
        var core = WorkerCore(configuration: configuration(slots: slots, prefetch: prefetch, grace: grace), now: t0)
        _ = core.on(.tick, now: t0)
        _ = core.on(.received(.welcome(session: session, heartbeatMilliseconds: 1000, liveness: 3)), now: t0)
        return core
    }

    func sent(_ directives: [WorkerCore.Directive]) -> [Message] {
        directives.compactMap { if case .send(let message) = $0 { message } else { nil } }
    }

    func ran(_ directives: [WorkerCore.Directive]) -> [Job] {
        directives.compactMap { if case .run(let job) = $0 { job } else { nil } }
    }

    func hello(_ directives: [WorkerCore.Directive]) -> Message.Hello? {
        for case .hello(let hello) in sent(directives) { return hello }
        return nil
    }

    func done(_ job: Job, ok: Bool = true) -> Outcome {
        Outcome(job: job, ending: ok ? .result(Array("{\"result\":1}".utf8)) : .failure("boom"))
    }

    // MARK: - Registration

    @Test func firstTickConnectsAndSaysHelloThenWelcomeGrantsSlotsPlusPrefetch() throws {
        var core = WorkerCore(configuration: configuration(), now: t0)
        let first = core.on(.tick, now: t0)
        #expect(first.first == .connect)
        let hello = try #require(self.hello(first))
        #expect(
            hello.workerID == "w1" && hello.slots == 2 && hello.protocolVersion == Wire.protocolVersion
                && hello.resumable.isEmpty
        )
        let welcome = core.on(.received(.welcome(session: 7, heartbeatMilliseconds: 1000, liveness: 3)), now: t0)
        #expect(core.connection == .registered(session: 7))
        #expect(sent(welcome) == [.credit(count: 3)])
        #expect(core.outstandingCredit == 3)
    }

    @Test func withoutWelcomeHelloIsRepeatedWithDoublingBackoffUpToTheMaximum() {
        var core = WorkerCore(configuration: configuration(), now: t0)
        var hellos: [Duration] = []
        var now = t0
        while now < t0 + .seconds(30) {
            if hello(core.on(.tick, now: now)) != nil { hellos.append(now - t0) }
            now += .milliseconds(50)
        }
        let gaps = zip(hellos.dropFirst(), hellos).map { $0 - $1 }
        #expect(hellos.first == .zero)
        #expect(gaps.prefix(6).map { $0.milliseconds } == [250, 500, 1000, 2000, 4000, 8000])
        #expect(gaps.dropFirst(5).allSatisfy { $0 == .seconds(8) })  // capped
        // WELCOME resets the back-off for the next time.
        _ = core.on(.received(.welcome(session: 1, heartbeatMilliseconds: 1000, liveness: 3)), now: now)
        _ = core.on(.received(.refuse(reason: "restarted", fatal: false)), now: now)
        #expect(hello(core.on(.tick, now: now)) != nil)
        #expect(hello(core.on(.tick, now: now + .milliseconds(200))) == nil)
        #expect(hello(core.on(.tick, now: now + .milliseconds(250))) != nil)
    }

    @Test func aNonFatalRefuseMakesItSayHelloAgainAndAFatalOneEndsIt() {
        var core = registered()
        let refused = core.on(.received(.refuse(reason: "not registered", fatal: false)), now: t0 + .seconds(1))
        #expect(core.connection == .connecting && sent(refused).isEmpty)
        let again = core.on(.tick, now: t0 + .seconds(1))
        #expect(again.first == .connect && hello(again) != nil)
        var fatal = registered()
        let ended = fatal.on(.received(.refuse(reason: "protocol version 9", fatal: true)), now: t0)
        #expect(ended.last == .exit(.refused("protocol version 9")) && fatal.exited)
        #expect(fatal.on(.tick, now: t0 + .seconds(5)).isEmpty)
    }

    // MARK: - Credit and slots

    @Test func everyCellGoesToTheSlotsInOrderAndEachFinishedCellEarnsCreditBack() throws {
        var core = registered(slots: 2, prefetch: 1)
        let started = core.on(.received(Self.shard(100, [1, 2, 3])), now: t0)
        // All at once, in order: the slots take the next without waiting for this loop.
        #expect(ran(started).map(\.key) == [Self.key(1), Self.key(2), Self.key(3)])
        #expect(core.outstandingCredit == 0 && core.inFlight == 3)
        let job = ran(started)[0]
        #expect(job.lease == 100 && job.session == 7)
        let after = core.on(.finished([done(job)]), now: t0)
        #expect(ran(after).isEmpty)
        #expect(
            sent(after) == [
                .result(lease: 100, key: Self.key(1), attempt: 1, payload: Array("{\"result\":1}".utf8)),
                .credit(count: 1),
            ]
        )
    }

    @Test func creditNeverExceedsFreeCapacityWhateverTheOrderOfEvents() {
        let testSeed: UInt64 = 20_261_206
        print("creditNeverExceedsFreeCapacity: seed \(testSeed)")
        var generator = SeededGenerator(seed: testSeed, stream: .testing)
        for round in 0..<50 {
            var core = registered(slots: 3, prefetch: 2)
            var nextKey = round * 1000
            var running: [Job] = []
            var lease: UInt64 = 1
            for _ in 0..<200 {
                var out: [WorkerCore.Directive] = []
                if Bool.random(using: &generator), core.outstandingCredit > 0 {
                    // The coordinator uses some of the credit it was given.
                    let count = Int.random(in: 1...core.outstandingCredit, using: &generator)
                    let keys = (0..<count).map { _ in
                        nextKey += 1
                        return nextKey
                    }
                    lease += 1
                    out = core.on(.received(Self.shard(lease, keys)), now: t0)
                } else if !running.isEmpty {
                    out = core.on(.finished([done(running.removeFirst())]), now: t0)
                }
                running += ran(out)
                #expect(running.count == core.inFlight && running.count <= 5)
                #expect(core.inFlight + core.outstandingCredit <= 5, "credit beyond slots plus prefetch")
            }
        }
    }

    @Test func aFailedCellIsReportedAndNotKept() {
        var core = registered()
        let job = ran(core.on(.received(Self.shard(5, [1])), now: t0))[0]
        let out = core.on(.finished([done(job, ok: false)]), now: t0)
        #expect(sent(out).first == .failed(lease: 5, key: Self.key(1), attempt: 1, error: "boom"))
        #expect(core.offers.isEmpty)
    }

    // MARK: - Results until acknowledged

    @Test func resultsAreKeptUntilAcknowledgedAndOfferedAtTheNextHello() throws {
        var core = registered()
        let job = ran(core.on(.received(Self.shard(5, [1])), now: t0))[0]
        _ = core.on(.finished([done(job)]), now: t0)
        #expect(core.offers.keys.contains(Self.key(1)))
        // The coordinator restarts before acknowledging: the worker registers again and offers it.
        _ = core.on(.received(.refuse(reason: "not registered", fatal: false)), now: t0)
        let hello = try #require(self.hello(core.on(.tick, now: t0)))
        #expect(hello.resumable == [Self.key(1)])
        _ = core.on(.received(.welcome(session: 8, heartbeatMilliseconds: 1000, liveness: 3)), now: t0)
        // Leased back: the kept result goes out under the new lease, nothing is trained again.
        let adopted = core.on(.received(Self.shard(900, [1], attempt: 2)), now: t0)
        #expect(ran(adopted).isEmpty)
        #expect(
            sent(adopted) == [.result(lease: 900, key: Self.key(1), attempt: 2, payload: Array("{\"result\":1}".utf8))]
        )
        _ = core.on(.received(.ack(keys: [Self.key(1)])), now: t0)
        #expect(core.offers.isEmpty)
    }

    @Test func aCellStillRunningAtReconnectionIsOfferedAndItsResultGoesOutUnderTheNewLease() throws {
        var core = registered(slots: 1, prefetch: 2)
        let started = core.on(.received(Self.shard(5, [1, 2, 3])), now: t0)
        let job = try #require(ran(started).first)
        #expect(core.inFlight == 3)
        // The coordinator goes silent: after liveness x heartbeat the worker reconnects. Cells no
        // slot has started are recalled (their leases end); the running one is offered.
        let silent = core.on(.tick, now: t0 + .milliseconds(3100))
        #expect(silent.contains { if case .log(.warning, let text) = $0 { text.contains("silent") } else { false } })
        #expect(silent.contains(.recall))
        _ = core.on(.unstarted(Array(ran(started).dropFirst())), now: t0 + .milliseconds(3100))
        #expect(core.connection == .connecting && core.inFlight == 1)
        let hello = try #require(self.hello(core.on(.tick, now: t0 + .milliseconds(3100))))
        #expect(hello.resumable == [Self.key(1)])
        _ = core.on(.received(.welcome(session: 9, heartbeatMilliseconds: 1000, liveness: 3)), now: t0 + .seconds(4))
        let adopted = core.on(.received(Self.shard(77, [1], attempt: 2)), now: t0 + .seconds(4))
        #expect(ran(adopted).isEmpty)
        let finished = core.on(.finished([done(job)]), now: t0 + .seconds(5))
        #expect(
            sent(finished).first
                == .result(lease: 77, key: Self.key(1), attempt: 2, payload: Array("{\"result\":1}".utf8))
        )
    }

    @Test func aStopWithOnlyUnstartedCellsEndsAsSoonAsTheyAreRecalled() {
        var core = registered(slots: 1, prefetch: 1)
        let jobs = ran(core.on(.received(Self.shard(5, [1, 2])), now: t0))
        #expect(core.on(.stop, now: t0).contains(.recall))
        let ended = core.on(.unstarted(jobs), now: t0)
        #expect(sent(ended) == [.bye] && ended.last == .exit(.stopped))
    }

    @Test func aResultFinishedWhileDisconnectedIsKeptNotSent() {
        var core = registered()
        let job = ran(core.on(.received(Self.shard(5, [1])), now: t0))[0]
        _ = core.on(.received(.refuse(reason: "again", fatal: false)), now: t0)
        let out = core.on(.finished([done(job)]), now: t0)
        #expect(sent(out).isEmpty)
        #expect(core.offers[Self.key(1)] != nil)
    }

    @Test func keptResultsAreBounded() {
        var configuration = configuration(slots: 1, prefetch: 0)
        configuration.maximumOffers = 3
        var core = WorkerCore(configuration: configuration, now: t0)
        _ = core.on(.tick, now: t0)
        _ = core.on(.received(.welcome(session: 1, heartbeatMilliseconds: 1000, liveness: 3)), now: t0)
        for i in 1...10 {
            let job = ran(core.on(.received(Self.shard(UInt64(i), [i])), now: t0))[0]
            _ = core.on(.finished([done(job)]), now: t0)
        }
        #expect(core.offers.count == 3)
    }

    // MARK: - Heartbeats and a dead coordinator

    @Test func heartbeatsGoOutOnlyWhenTheWorkerHasBeenSilent() {
        var core = registered()
        #expect(sent(core.on(.tick, now: t0 + .milliseconds(500))).isEmpty)
        #expect(sent(core.on(.tick, now: t0 + .milliseconds(1000))) == [.progress([])])
        #expect(sent(core.on(.tick, now: t0 + .milliseconds(1500))).isEmpty)
        // Any message the coordinator sends keeps it alive.
        _ = core.on(.received(.heartbeat), now: t0 + .milliseconds(2900))
        #expect(core.connection == .registered(session: 7))
        _ = core.on(.tick, now: t0 + .milliseconds(5800))
        #expect(core.connection == .registered(session: 7))
        _ = core.on(.tick, now: t0 + .milliseconds(5950))
        #expect(core.connection == .connecting)
    }

    @Test func progressGoesOutOnceAHeartbeatIntervalWhileCellsAreHeldAndAdvertisesResources() throws {
        var configuration = configuration()
        configuration.cores = 6
        configuration.memoryBytes = 3 << 30
        var core = WorkerCore(configuration: configuration, now: t0)
        let hello = try #require(self.hello(core.on(.tick, now: t0)))
        #expect(hello.cores == 6 && hello.memoryBytes == 3 << 30)
        _ = core.on(.received(.welcome(session: 7, heartbeatMilliseconds: 1000, liveness: 3)), now: t0)
        _ = core.on(.received(Self.shard(5, [1])), now: t0)
        #expect(!core.on(.tick, now: t0 + .milliseconds(500)).contains(.sendProgress))
        let due = core.on(.tick, now: t0 + .milliseconds(1000))
        #expect(due.contains(.sendProgress) && sent(due).isEmpty, "PROGRESS stands in for the heartbeat")
        #expect(!core.on(.tick, now: t0 + .milliseconds(1500)).contains(.sendProgress))
        #expect(core.on(.tick, now: t0 + .milliseconds(2000)).contains(.sendProgress))
    }

    @Test func welcomeSetsTheHeartbeatTheCoordinatorAsksFor() {
        var core = WorkerCore(configuration: configuration(), now: t0)
        _ = core.on(.tick, now: t0)
        _ = core.on(.received(.welcome(session: 1, heartbeatMilliseconds: 200, liveness: 2)), now: t0)
        #expect(sent(core.on(.tick, now: t0 + .milliseconds(200))) == [.progress([])])
        _ = core.on(.tick, now: t0 + .milliseconds(401))
        #expect(core.connection == .connecting)
    }

    // MARK: - Stopping

    @Test func stopLetsRunningCellsFinishThenSaysByeAndGrantsNothingMore() {
        var core = registered(slots: 2, prefetch: 1)
        let jobs = ran(core.on(.received(Self.shard(5, [1, 2, 3])), now: t0))
        let stopping = core.on(.stop, now: t0)
        #expect(stopping.first == .recall)
        #expect(!stopping.contains { if case .exit = $0 { true } else { false } })
        // The shell takes back the cell no slot started: it is handed back at BYE.
        #expect(!core.on(.unstarted([jobs[2]]), now: t0).contains { if case .exit = $0 { true } else { false } })
        #expect(core.inFlight == 2)
        let first = core.on(.finished([done(jobs[0])]), now: t0 + .seconds(1))
        #expect(ran(first).isEmpty && !sent(first).contains { if case .credit = $0 { true } else { false } })
        #expect(sent(core.on(.received(Self.shard(6, [4])), now: t0 + .seconds(1))).isEmpty)
        let last = core.on(.finished([done(jobs[1])]), now: t0 + .seconds(2))
        #expect(sent(last).suffix(1) == [.bye])
        #expect(last.last == .exit(.stopped))
    }

    @Test func theGracePeriodEndsAStopWithCellsStillRunning() {
        var core = registered(grace: .seconds(3))
        _ = core.on(.received(Self.shard(5, [1])), now: t0)
        _ = core.on(.stop, now: t0)
        #expect(core.on(.tick, now: t0 + .seconds(2)).last != .exit(.stopped))
        let ended = core.on(.tick, now: t0 + .seconds(3))
        #expect(sent(ended).last == .bye && ended.last == .exit(.stopped))
    }

    @Test func stoppingBeforeRegistrationSaysNoBye() {
        var core = WorkerCore(configuration: configuration(), now: t0)
        let out = core.on(.stop, now: t0)
        #expect(sent(out).isEmpty && out.last == .exit(.stopped))
    }

    // MARK: - What the coordinator should not send

    @Test func aWorkerThatHearsWorkerMessagesIsNotTalkingToACoordinatorAndReconnects() throws {
        // A TCP connection to itself (the coordinator's port in the ephemeral range, nothing
        // listening): the worker hears its own heartbeats and HELLOs. They must not keep it
        // "connected"; it reconnects on the first, and would also find the silence.
        var core = registered()
        let own = core.on(.received(.progress([])), now: t0 + .milliseconds(500))
        #expect(own.contains(.recall) && core.connection == .connecting)
        #expect(
            own.contains { if case .log(.warning, let text) = $0 { text.contains("only workers send") } else { false } }
        )
        // Connecting again, it hears its own HELLO: the next tick opens a new socket at once.
        _ = core.on(.tick, now: t0 + .seconds(1))
        let hello = try #require(self.hello(core.on(.tick, now: t0 + .seconds(5))))
        _ = core.on(.received(.hello(hello)), now: t0 + .seconds(5))
        let retry = core.on(.tick, now: t0 + .seconds(5) + .milliseconds(1))
        #expect(retry.first == .connect && self.hello(retry) != nil)
    }

    @Test func malformedAndMisdirectedMessagesAreLoggedAndChangeNothing() {
        var core = registered()
        let malformed = core.on(.malformed("truncated u32"), now: t0)
        #expect(malformed == [.log(.warning, "dropped a malformed message from the coordinator: truncated u32")])
        // A handshake refusal is logged at most once a minute.
        #expect(core.on(.handshakeFailed("no key"), now: t0).count == 1)
        #expect(core.on(.handshakeFailed("no key"), now: t0 + .seconds(30)).isEmpty)
        #expect(core.on(.handshakeFailed("no key"), now: t0 + .seconds(61)).count == 1)
    }
}

// MARK: - Checkpoints

extension WorkerCoreTests {
    static func resuming(_ lease: UInt64, key: Int, bytes: UInt64) -> Message {
        .shard(
            lease: lease,
            cells: [Message.Assignment(key: Self.key(key), attempt: 2, work: Array("{}".utf8), checkpointBytes: bytes)]
        )
    }

    /// A cell leased with a checkpoint runs only once all of it has arrived, with it.
    @Test func aCellWithACheckpointRunsOnceItHasArrivedWhole() throws {
        var core = registered()
        #expect(ran(core.on(.received(Self.resuming(5, key: 1, bytes: 5)), now: t0)).isEmpty)
        let first = Message.CheckpointChunk(
            key: Self.key(1),
            lease: 5,
            attempt: 2,
            step: 40,
            total: 5,
            offset: 0,
            bytes: [1, 2, 3]
        )
        #expect(ran(core.on(.received(.resume(first)), now: t0)).isEmpty)
        var rest = first
        rest.offset = 3
        rest.bytes = [4, 5]
        let job = try #require(ran(core.on(.received(.resume(rest)), now: t0)).first)
        #expect(job.checkpoint == [1, 2, 3, 4, 5] && job.resumeStep == 40)
        // Held all along: it counts against the credit like any cell.
        #expect(core.inFlight == 1)
    }

    /// A chunk out of order, or a checkpoint that stops arriving, runs the cell from step 0.
    @Test func aBrokenOrStalledCheckpointRunsTheCellFromTheStart() throws {
        var core = registered()
        _ = core.on(.received(Self.resuming(5, key: 1, bytes: 5)), now: t0)
        let skipped = Message.CheckpointChunk(
            key: Self.key(1),
            lease: 5,
            attempt: 2,
            step: 40,
            total: 5,
            offset: 3,
            bytes: [4, 5]
        )
        let job = try #require(ran(core.on(.received(.resume(skipped)), now: t0)).first)
        #expect(job.checkpoint.isEmpty && job.resumeStep == nil)
        _ = core.on(.received(Self.resuming(6, key: 2, bytes: 5)), now: t0)
        // The coordinator stays in touch (its heartbeats); only the checkpoint stops coming.
        for second in stride(from: 1, through: 59, by: 2) {
            _ = core.on(.received(.heartbeat), now: t0 + .seconds(second))
            #expect(ran(core.on(.tick, now: t0 + .seconds(second))).isEmpty)
        }
        let end = t0 + WorkerCore.resumePatience + .seconds(1)
        _ = core.on(.received(.heartbeat), now: end)
        let late = try #require(ran(core.on(.tick, now: end)).first)
        #expect(late.key == Self.key(2) && late.checkpoint.isEmpty)
    }

    /// A runner's checkpoint goes out in chunks under its cell's latest lease; after the session
    /// ends it is dropped.
    @Test func aRunnersCheckpointGoesOutUnderTheLatestLease() throws {
        var core = registered()
        let job = try #require(ran(core.on(.received(Self.shard(9, [3])), now: t0)).first)
        let bytes = [UInt8](repeating: 7, count: Wire.maximumCheckpointChunk + 1)
        let out = sent(core.on(.checkpointed(key: job.key, step: 12, bytes: bytes), now: t0))
        let chunks: [Message.CheckpointChunk] = out.compactMap { if case .checkpoint(let c) = $0 { c } else { nil } }
        #expect(
            chunks.count == 2 && chunks.allSatisfy { $0.lease == 9 && $0.step == 12 && $0.total == UInt64(bytes.count) }
        )
        #expect(chunks.flatMap(\.bytes) == bytes)
        _ = core.on(.tick, now: t0 + .seconds(10))  // the coordinator is silent: the session ends
        #expect(sent(core.on(.checkpointed(key: job.key, step: 13, bytes: [1]), now: t0 + .seconds(10))).isEmpty)
    }
}
