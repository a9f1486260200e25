import SweepCore
import Testing
import TrainingCore

/// The scheduler's compact parts (keys, queue) and a sweep that streams in while workers ask.
@Suite struct StreamingTests {
    let t0 = ContinuousClock.now

    @Test func cellKeysRoundTripTheirHexAndRefuseAnythingElse() {
        for i in 0..<200 {
            let hex = SHA256.hex([UInt8(i & 255), UInt8(i >> 8)])
            let key = CellKey(hex: hex)
            #expect(key?.hex == hex)
            #expect(CellKey(hex: hex.uppercased()) == key)
            #expect(CellWork.noop(index: i, fail: false).cellKey.hex == CellWork.noop(index: i, fail: false).key)
        }
        let good = SHA256.hex([1])
        for bad in [
            String(good.dropLast()), good + "0", String(good.dropLast()) + "g", "", String(repeating: " ", count: 64),
        ] {
            #expect(CellKey(hex: bad) == nil, "\(bad) was read as a key")
        }
        // Ordered as the hex strings are.
        let keys = (0..<100).map { SHA256.hex([UInt8($0)]) }
        #expect(keys.sorted() == keys.compactMap { CellKey(hex: $0) }.sorted().map(\.hex))
    }

    func seed(_ i: Int, cost: Double, state: Scheduler.CellState = .queued) -> Scheduler.CellSeed {
        Scheduler.CellSeed(
            key: SHA256.hex(Array("cell \(i)".utf8)),
            work: Array("{\"noop\":\(i)}".utf8),
            cost: cost,
            state: state,
            attempts: 0,
            lastError: nil
        )
    }

    func hello(_ id: String, slots: UInt16 = 4, resumable: [String] = []) -> Message {
        .hello(
            Message.Hello(
                protocolVersion: Wire.protocolVersion,
                scienceVersion: UInt16(scienceVersion),
                workerID: id,
                build: "test",
                host: "h",
                slots: slots,
                resumable: resumable
            )
        )
    }

    func granted(_ out: [Scheduler.Directive]) -> [String] {
        out.flatMap { directive -> [String] in
            if case .send(_, .shard(_, let cells)) = directive { return cells.map(\.key) }
            return []
        }
    }

    @Test func theQueueHandsOutTheMostExpensiveFirstThenSeedOrderWhateverTheChunks() {
        // 300 cells with 7 distinct costs, added in three chunks in a scrambled order.
        let testSeed: UInt64 = 20_261_206
        print("theQueueHandsOutTheMostExpensiveFirst: seed \(testSeed)")
        var generator = SeededGenerator(seed: testSeed, stream: .testing)
        let seeds = (0..<300).map { seed($0, cost: Double($0 % 7)) }
        var s = Scheduler(configuration: .init(session: 1), loading: true)
        let shuffled = seeds.shuffled(using: &generator)
        s.add(Array(shuffled[0..<100]))
        s.add(Array(shuffled[100..<250]))
        s.add(Array(shuffled[250...]))
        s.finishLoading()
        _ = s.on(.message(from: [1], hello("A", slots: 1)), now: t0)
        let order = granted(s.on(.message(from: [1], .credit(count: 300)), now: t0))
        // Cost down; among equal costs, the order in which cells were added.
        let position = Dictionary(uniqueKeysWithValues: shuffled.enumerated().map { ($1.key, $0) })
        let expected = seeds.sorted { ($0.cost, position[$1.key]!) > ($1.cost, position[$0.key]!) }.map(\.key)
        #expect(order == expected)
    }

    @Test func cellsThatArriveWhileLoadingAreDispatchedAndTheSweepEndsOnlyOnceLoaded() {
        var s = Scheduler(configuration: .init(session: 1), loading: true)
        #expect(!s.isFinished)
        _ = s.on(.message(from: [1], hello("A")), now: t0)
        // A worker asks before any cell is there.
        #expect(granted(s.on(.message(from: [1], .credit(count: 3)), now: t0)).isEmpty)
        s.add([seed(0, cost: 1), seed(1, cost: 1, state: .done)])
        let first = granted(s.dispatchNow(now: t0))
        #expect(first == [seed(0, cost: 1).key])
        s.add([seed(2, cost: 5)])
        #expect(granted(s.dispatchNow(now: t0)) == [seed(2, cost: 5).key])
        // A repeated or malformed key is refused, not added twice.
        var broken = seed(3, cost: 1)
        broken.key = "not a key"
        #expect(s.add([seed(2, cost: 5), broken]) == [seed(2, cost: 5).key, "not a key"])
        #expect(s.cellCount == 3)
        for key in first + [seed(2, cost: 5).key] {
            let lease = s.lease(of: key)!
            let out = s.on(.message(from: [1], .result(lease: lease, key: key, attempt: 1, payload: [])), now: t0)
            let commits = out.compactMap { if case .commit(let c) = $0 { c } else { nil } }
            _ = s.on(.committed(commits), now: t0)
        }
        #expect(s.counts[.done] == 3 && !s.isFinished)
        s.finishLoading()
        #expect(s.isFinished)
    }

    @Test func aCellOfferedBeforeItIsLoadedIsLeasedBackWhenItArrives() {
        // A restart: cell 7 was running on A, but the sweep is still streaming in when A says HELLO.
        var s = Scheduler(configuration: .init(session: 1), loading: true)
        s.add([seed(0, cost: 1)])
        var running = seed(7, cost: 1, state: .leased)
        running.leasedTo = "A"
        let done = seed(8, cost: 1, state: .done)
        _ = s.on(.message(from: [1], hello("A", resumable: [running.key, done.key])), now: t0)
        #expect(s.state(of: running.key) == nil)
        s.add([running, done])
        let out = s.dispatchNow(now: t0)
        // Leased back to A without using its credit, and the committed one acknowledged.
        #expect(granted(out) == [running.key])
        #expect(s.state(of: running.key) == .leased && s.attempts(of: running.key) == 1)
        let acks = out.compactMap { directive -> [String]? in
            if case .send(_, .ack(let keys)) = directive { return keys }
            return nil
        }
        #expect(acks == [[done.key]])
        // A key the sweep never loads is forgotten when loading ends.
        s.finishLoading()
        #expect(granted(s.dispatchNow(now: t0)).isEmpty)
    }

    @Test func aReservedCellIsNotHandedToAnotherWorkerWhileTheSweepLoads() {
        var s = Scheduler(configuration: .init(session: 1), loading: true)
        var running = seed(7, cost: 1, state: .leased)
        running.leasedTo = "A"
        s.add([running])
        _ = s.on(.message(from: [2], hello("B")), now: t0)
        let window = s.configuration.reclaimWindow
        // Loading takes longer than the window: the cell stays held for A meanwhile.
        let late = t0 + window + .seconds(5)
        #expect(granted(s.on(.message(from: [2], .credit(count: 4)), now: late)).isEmpty)
        // Loaded, and the window (from the first event) has passed: another worker gets it.
        s.finishLoading()
        #expect(granted(s.on(.tick, now: late + .seconds(1))) == [running.key])
    }

    @Test func aCellWhoseResultIsBeingCommittedNoLongerCountsAsItsWorkers() {
        // The writer commits on its own thread: meanwhile the worker runs its next cell, and
        // /status must not show one cell more than the worker holds.
        var s = Scheduler(configuration: .init(session: 1), cells: [seed(0, cost: 1), seed(1, cost: 1)])
        _ = s.on(.message(from: [1], hello("A", slots: 1)), now: t0)
        let first = granted(s.on(.message(from: [1], .credit(count: 1)), now: t0))
        #expect(first.count == 1)
        let lease = s.lease(of: first[0])!
        let out = s.on(.message(from: [1], .result(lease: lease, key: first[0], attempt: 1, payload: [])), now: t0)
        #expect(s.workerSummaries(now: t0).first?.leased == 0)
        let next = granted(s.on(.message(from: [1], .credit(count: 1)), now: t0))
        #expect(next.count == 1 && s.workerSummaries(now: t0).first?.leased == 1)
        let commits = out.compactMap { if case .commit(let c) = $0 { c } else { nil } }
        _ = s.on(.committed(commits), now: t0)
        #expect(s.state(of: first[0]) == .done && s.workerSummaries(now: t0).first?.leased == 1)
    }
}
