import Diagnostics
import SweepCore
import Testing
import TrainingCore

/// Leasing by cores and memory, waiting cells, progress and cost: the scheduler's resource rules.
@Suite struct ResourceSchedulingTests {
    let t0 = ContinuousClock.now
    static let mib: UInt64 = 1 << 20

    func key(_ i: Int) -> String { SHA256.hex([UInt8(i)]) }

    /// Cells `i` with cost `costs[i]` and requirements `needs[i]`.
    func scheduler(_ needs: [CellRequirements], costs: [Double]? = nil) -> Scheduler {
        let seeds = needs.indices.map { i in
            Scheduler.CellSeed(
                key: key(i),
                work: [UInt8(i)],
                cost: costs?[i] ?? Double(i),
                state: .queued,
                attempts: 0,
                lastError: nil,
                requirements: needs[i]
            )
        }
        return Scheduler(configuration: .init(session: 7), cells: seeds)
    }

    func join(
        _ s: inout Scheduler,
        _ identity: [UInt8],
        cores: UInt16,
        memory: UInt64,
        credit: UInt32 = 16,
        now: ContinuousClock.Instant? = nil
    ) -> [Message.Assignment] {
        let hello = Message.Hello(
            protocolVersion: Wire.protocolVersion,
            scienceVersion: UInt16(scienceVersion),
            workerID: "w\(identity[0])",
            build: "b",
            host: "h",
            slots: 4,
            cores: cores,
            memoryBytes: memory
        )
        _ = s.on(.message(from: identity, .hello(hello)), now: now ?? t0)
        return shards(s.on(.message(from: identity, .credit(count: credit)), now: now ?? t0))
    }

    func shards(_ directives: [Scheduler.Directive]) -> [Message.Assignment] {
        directives.flatMap { directive -> [Message.Assignment] in
            if case .send(_, .shard(_, let cells)) = directive { return cells }
            return []
        }
    }

    func lease(_ directives: [Scheduler.Directive]) -> UInt64? {
        for case .send(_, .shard(let lease, _)) in directives { return lease }
        return nil
    }

    @Test func aWorkerIsLeasedOnlyWhatItsMemoryHoldsAndMoreAsResultsArrive() throws {
        var s = scheduler(Array(repeating: CellRequirements(threads: 1, memoryBytes: 400 * Self.mib), count: 5))
        let first = join(&s, [1], cores: 8, memory: 1024 * Self.mib)
        #expect(first.count == 2, "two cells of 400 MiB fit 1 GiB, a third does not")
        #expect(first.allSatisfy { $0.limits.memoryBytes == 400 * Self.mib && $0.limits.threads == 1 })
        #expect(s.workerSummaries(now: t0)[0].memoryInUse == 800 * Self.mib)
        // Credit alone does not lease more.
        #expect(shards(s.on(.message(from: [1], .credit(count: 4)), now: t0)).isEmpty)
        // A result frees its memory at once (before the commit): one more cell goes out.
        let held = try #require(s.runningCells(now: t0).first?.key)
        let out = s.on(
            .message(from: [1], .result(lease: try #require(s.lease(of: held)), key: held, attempt: 1, payload: [1])),
            now: t0
        )
        #expect(shards(out).count == 1)
        #expect(s.workerSummaries(now: t0)[0].memoryInUse == 800 * Self.mib)
    }

    @Test func largestFirstAmongTheCellsThatFit() {
        // Cost order 2 > 1 > 0; memory 900, 300, 100 MiB: 1 GiB holds cell 2, then only cell 0.
        let needs = [100, 300, 900].map { CellRequirements(threads: 1, memoryBytes: UInt64($0) * Self.mib) }
        var s = scheduler(needs)
        let leased = join(&s, [1], cores: 8, memory: 1024 * Self.mib)
        #expect(leased.map(\.key) == [key(2), key(0)])
    }

    @Test func aBigCellBackInTheQueueReservesAWorkerInsteadOfBeingStarvedBySmallOnes() throws {
        // Cell 0 is big (900 MiB) and was running when the previous coordinator stopped; cells
        // 1-6 are small (300 MiB). The big cell is held for its old worker for the reclaim window.
        var seeds = (0..<7).map { i in
            Scheduler.CellSeed(
                key: key(i),
                work: [UInt8(i)],
                cost: i == 0 ? 100 : Double(i),
                state: i == 0 ? .leased : .queued,
                attempts: 0,
                lastError: nil,
                leasedTo: i == 0 ? "gone" : nil,
                requirements: CellRequirements(threads: 1, memoryBytes: (i == 0 ? 900 : 300) * Self.mib)
            )
        }
        seeds[0].attempts = 1
        var s = Scheduler(configuration: .init(session: 7), cells: seeds)
        let first = join(&s, [1], cores: 8, memory: 1024 * Self.mib)
        #expect(first.map(\.key) == [key(6), key(5), key(4)])
        // The window passes: the big cell is first in the queue, and 900 MiB are not free.
        let later = t0 + s.configuration.reclaimWindow + .seconds(1)
        #expect(shards(s.on(.message(from: [1], .heartbeat), now: later)).isEmpty)
        #expect(s.counts[.queued] == 4 && s.workerSummaries(now: later).count == 1)
        func finish(_ k: String) -> [Message.Assignment] {
            shards(
                s.on(
                    .message(from: [1], .result(lease: s.lease(of: k) ?? 0, key: k, attempt: 1, payload: [1])),
                    now: later
                )
            )
        }
        // A small cell ends: 300 MiB free would hold another small one, but the worker is reserved.
        #expect(finish(key(6)).isEmpty)
        #expect(finish(key(5)).isEmpty)
        // Once the last small one ends, the big cell goes out, then small ones fill what is left.
        let next = finish(key(4))
        #expect(next.first?.key == key(0))
        #expect(next.map(\.key) == [key(0)], "900 of 1024 MiB held: no 300 MiB cell fits beside it")
    }

    @Test func threadsAreCappedAtTheWorkersCoresAndCoresBoundWhatIsLeased() {
        var s = scheduler(
            [
                CellRequirements(threads: 8, memoryBytes: 0),
                CellRequirements(threads: 1, memoryBytes: 0),
                CellRequirements(threads: 1, memoryBytes: 0),
            ],
            costs: [1, 2, 3]
        )
        let leased = join(&s, [1], cores: 2, memory: 1 << 40)
        // The two 1-thread cells (largest cost first) fill the 2 cores; the 8-thread cell waits.
        #expect(leased.map(\.key) == [key(2), key(1)])
        let out = s.on(
            .message(from: [1], .result(lease: s.lease(of: key(2)) ?? 0, key: key(2), attempt: 1, payload: [1])),
            now: t0
        )
        #expect(shards(out).isEmpty, "one free core does not hold a cell given 2 threads")
        let next = s.on(
            .message(from: [1], .result(lease: s.lease(of: key(1)) ?? 0, key: key(1), attempt: 1, payload: [1])),
            now: t0
        )
        let big = shards(next)
        #expect(big.map(\.key) == [key(0)] && big[0].limits.threads == 2, "8 threads asked, 2 cores given")
    }

    @Test func aCellNoWorkerCanHoldWaitsWithItsReasonUntilOneCan() {
        var s = scheduler(
            [
                CellRequirements(threads: 1, memoryBytes: 18 << 30),
                CellRequirements(threads: 1, memoryBytes: 1 << 30),
            ],
            costs: [10, 1]
        )
        let leased = join(&s, [1], cores: 4, memory: 12 << 30)
        #expect(leased.map(\.key) == [key(1)], "the 18 GiB cell is not leased; the small one is")
        #expect(s.waitingCount == 1)
        let waiting = s.waitingCells()
        #expect(waiting.map(\.key) == [key(0)])
        #expect(waiting.first?.reason == "needs 18 GiB; largest worker has 11 GiB free of 12 GiB")
        #expect(s.counts[.queued] == 1 && !s.isFinished)
        // A worker large enough registers: the cell leaves the waiting list and goes to it.
        let big = join(&s, [2], cores: 4, memory: 32 << 30)
        #expect(big.map(\.key) == [key(0)] && s.waitingCount == 0)
    }

    @Test func aWaitingCellAWorkerResumesLeavesTheWaitingListAndIsNeverLeasedTwice() {
        var s = scheduler([CellRequirements(threads: 1, memoryBytes: 4 << 30)])
        #expect(join(&s, [1], cores: 2, memory: 1 << 30).isEmpty)
        #expect(s.waitingCount == 1)
        // The same worker registers again, offering the cell (it was computing it for a previous
        // coordinator): it is leased back to it, whatever its size.
        let again = Message.Hello(
            protocolVersion: Wire.protocolVersion,
            scienceVersion: UInt16(scienceVersion),
            workerID: "w1",
            build: "b",
            host: "h",
            slots: 4,
            cores: 2,
            memoryBytes: 1 << 30,
            resumable: [key(0)]
        )
        let adopted = shards(s.on(.message(from: [1], .hello(again)), now: t0))
        #expect(adopted.map(\.key) == [key(0)] && s.waitingCount == 0 && s.counts[.leased] == 1)
        // A worker large enough joins: nothing to lease, the cell is already running.
        #expect(join(&s, [2], cores: 2, memory: 8 << 30).isEmpty)
        #expect(s.counts[.leased] == 1 && s.counts[.queued] == 0)
    }

    @Test func aFailureAfterTheResultOfTheSameLeaseIsDropped() {
        var s = scheduler([CellRequirements(threads: 1, memoryBytes: Self.mib)])
        _ = join(&s, [1], cores: 2, memory: 1 << 30)
        let lease = s.lease(of: key(0)) ?? 0
        let out = s.on(.message(from: [1], .result(lease: lease, key: key(0), attempt: 1, payload: [1])), now: t0)
        _ = s.on(.message(from: [1], .failed(lease: lease, key: key(0), attempt: 1, error: "late")), now: t0)
        let commits = out.compactMap { if case .commit(let c) = $0 { c } else { nil } }
        _ = s.on(.committed(commits), now: t0)
        #expect(s.counts[.done] == 1 && s.counts[.queued] == 0 && s.isFinished)
    }

    @Test func aRunningCellWithAnInfiniteLossReportsNone() throws {
        let report = Message.CellProgress(
            key: key(0),
            phase: .train,
            step: 3,
            maxSteps: 9,
            trainMSE: .infinity,
            milliseconds: 1
        )
        guard case .progress(let decoded) = try Message.decode(Message.progress([report]).encode()) else {
            Issue.record("not PROGRESS")
            return
        }
        #expect(decoded.first?.trainMSE == nil)
    }

    @Test func progressIsKeptOnlyFromTheWorkerHoldingTheCell() {
        var s = scheduler([CellRequirements(threads: 1, memoryBytes: Self.mib)])
        _ = join(&s, [1], cores: 1, memory: 1 << 30)
        _ = join(&s, [2], cores: 1, memory: 1 << 30)
        let report = Message.CellProgress(
            key: key(0),
            phase: .train,
            step: 40,
            maxSteps: 100,
            trainMSE: 0.25,
            milliseconds: 1500
        )
        var forged = report
        forged.step = 99
        _ = s.on(.message(from: [2], .progress([forged])), now: t0)
        #expect(s.runningCells(now: t0).first?.progress == nil)
        _ = s.on(.message(from: [1], .progress([report])), now: t0)
        let running = s.runningCells(now: t0)
        #expect(running.count == 1 && running[0].progress == report && running[0].worker == "w1")
        #expect(running[0].threads == 1 && running[0].memoryBytes == Self.mib)
    }

    @Test func theRemainingCostFallsByEachCellsCostAsItCommits() {
        var s = scheduler(Array(repeating: CellRequirements.none, count: 3), costs: [1, 10, 100])
        #expect(s.remainingCost == 111)
        let leased = join(&s, [1], cores: 1, memory: 1 << 30, credit: 1)
        #expect(leased.map(\.key) == [key(2)])
        let out = s.on(
            .message(from: [1], .result(lease: s.lease(of: key(2)) ?? 0, key: key(2), attempt: 1, payload: [1])),
            now: t0
        )
        let commits = out.compactMap { if case .commit(let c) = $0 { c } else { nil } }
        _ = s.on(.committed(commits), now: t0)
        #expect(s.remainingCost == 11 && s.costDoneThisRun == 100)
    }

    @Test func leasedMemoryNeverExceedsAWorkersMemoryUnderRandomTraffic() {
        var generator = SplitMix(seed: 3)
        let needs = (0..<60).map { _ in
            CellRequirements(
                threads: UInt16(generator.next() % 3),
                memoryBytes: (generator.next() % 700 + 1) * Self.mib
            )
        }
        var s = scheduler(needs)
        var now = t0
        _ = join(&s, [1], cores: 3, memory: 1024 * Self.mib, credit: 8, now: now)
        for _ in 0..<400 {
            now += .milliseconds(10)
            let running = s.runningCells(now: now)
            let summary = s.workerSummaries(now: now)[0]
            #expect(summary.memoryInUse <= 1024 * Self.mib && summary.threadsInUse <= 3)
            #expect(running.reduce(0) { $0 + $1.memoryBytes } == summary.memoryInUse)
            guard let done = running.randomElement(using: &generator) else { break }
            let attempt = UInt16(s.attempts(of: done.key) ?? 0)
            _ = s.on(
                .message(
                    from: [1],
                    .failed(lease: s.lease(of: done.key) ?? 0, key: done.key, attempt: attempt, error: "x")
                ),
                now: now
            )
            _ = s.on(.message(from: [1], .credit(count: 1)), now: now)
        }
    }

    @Test func autoThreadsGrowWithTheStepAndAFixedMemoryBelowTheEstimateIsRefused() throws {
        func cell(_ n: Int, _ d: Int, _ width: Int, trainer: TrainerKind = .adam) -> CellWork {
            .train(CellParameters(n: n, d: d, width: width, trainer: trainer))
        }
        #expect(cell(512, 8, 512).autoThreads == 1)
        // 4 n d k = 4 * 2048 * 128 * 1024 = 1.07 GFLOP a step: 4 threads.
        #expect(cell(2048, 128, 1024).autoThreads == 4)
        #expect(cell(16384, 1024, 65536).autoThreads == 64)
        #expect(CellWork.noop(index: 1, fail: false).autoThreads == 0)
        #expect(try CellWork.noop(index: 1, fail: false).requirements(resources: ResourceLimits()) == .none)
        let needs = try cell(2048, 128, 1024).requirements(resources: ResourceLimits())
        #expect(needs.threads == 4 && needs.memoryBytes > 20 * Self.mib)
        // The enforced limit has a margin over the estimate (25%, at least 64 MiB); a fixed one has none.
        #expect(needs.limitBytes == needs.memoryBytes + max(needs.memoryBytes / 4, 64 * Self.mib))
        let fixed = try cell(2048, 128, 1024).requirements(resources: ResourceLimits(threads: 2, memoryBytes: 8 << 30))
        #expect(fixed == CellRequirements(threads: 2, memoryBytes: 8 << 30))
        #expect(throws: IsosweepError.self) {
            try cell(2048, 128, 1024).requirements(resources: ResourceLimits(memoryBytes: 2 * Self.mib))
        }
    }
}

/// A small deterministic generator for the randomized test.
struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
