/// The scheduler's leasing rules: what a worker gets, what a lost lease becomes.
extension Scheduler {
    /// Unregisters a worker; its leased cells go back to the queue. A graceful hand-back does not
    /// use up an attempt; losing a worker that had delivered results does (the cell may be what
    /// killed it); losing one that never delivered anything counts as a loss (see `maxLosses`).
    mutating func remove(
        _ identity: [UInt8],
        handedBack: Bool,
        reason: String,
        now: ContinuousClock.Instant,
        _ out: inout [Directive]
    ) {
        guard let worker = workers.removeValue(forKey: identity) else { return }
        // Cells it offered before they were loaded are not its to resume any more.
        if !awaitingAdoption.isEmpty { awaitingAdoption = awaitingAdoption.filter { $0.value != identity } }
        if identities[worker.id] == identity { identities.removeValue(forKey: worker.id) }
        if worker.memory == largestWorkerMemory { largestWorkerMemory = workers.values.map(\.memory).max() ?? 0 }
        for i in worker.leased.sorted() where cells[i].state == .leased && !cells[i].committing {
            if handedBack {
                cells[i].attempts -= 1
                release(i, error: errors[i], countAttempt: false, &out)
            } else if worker.delivered == 0 {
                cells[i].attempts -= 1
                cells[i].losses &+= 1
                if Int(cells[i].losses) >= configuration.maxLosses {
                    let error =
                        "lost \(cells[i].losses) times with workers that never delivered a result (last: \(reason))"
                    release(i, error: error, countAttempt: true, forceFail: true, &out)
                } else {
                    release(i, error: reason, countAttempt: false, &out)
                }
            } else {
                release(i, error: reason, countAttempt: true, &out)
            }
        }
        out.append(.recordWorker(record(worker, alive: false)))
    }

    /// Ends a lease: back to the queue, or FAILED when attempts are used up.
    mutating func release(
        _ i: Int,
        error: String?,
        countAttempt: Bool,
        forceFail: Bool = false,
        _ out: inout [Directive]
    ) {
        free(i)
        leases.removeValue(forKey: i)
        errors[i] = error
        if forceFail || (countAttempt && Int(cells[i].attempts) >= configuration.maxAttempts) {
            move(i, from: .leased, to: .failed)
            remainingCost -= cells[i].cost
            out.append(
                .log(
                    .error,
                    "cell \(short(cells[i].key.hex)) FAILED after \(cells[i].attempts) attempts: \(error ?? "unknown error")"
                )
            )
        } else {
            move(i, from: .leased, to: .queued)
            enqueue(i)
        }
        out.append(.persist(update(i)))
    }

    /// Most queued cells looked at, per shard, for one that fits a worker's free cores and memory.
    static let fitScanLimit = 64

    /// Leases queued cells to workers with credit: to each, largest first, the cells that fit its
    /// free cores and memory. A cell that needs more memory than any registered worker has moves
    /// to `waiting` (logged once) instead of blocking the queue. When the largest queued cell fits
    /// no worker's free resources now, the worker closest to holding it is reserved for it: it
    /// takes no smaller cell until it can take that one (EASY backfilling), so that a big cell is
    /// not starved by small ones filling every worker as they free up.
    mutating func dispatch(now: ContinuousClock.Instant, _ out: inout [Directive]) {
        guard dispatching && !workers.isEmpty else { return }
        let largestMemory = largestWorkerMemory
        while let head = head(), requirements(head).memoryBytes > largestMemory {
            _ = queue.pop()
            wait(head, &out)
        }
        guard !queue.isEmpty && !hungry.isEmpty else { return }
        var heldBack = reservation()
        var stillHungry: [[UInt8]] = []
        var seen = Set<[UInt8]>()
        for identity in hungry {
            // A worker that left, or an identity listed twice (it registered again): once.
            guard workers[identity] != nil, seen.insert(identity).inserted else { continue }
            while workers[identity]!.credit > 0 && !queue.isEmpty {
                let limit = min(workers[identity]!.credit, configuration.maximumShard)
                nextLease &+= 1
                let lease = UInt64(configuration.session) << 32 | UInt64(nextLease)
                var assignments: [Message.Assignment] = []
                // Queued cells looked at that did not fit: back in the queue after the shard.
                var skipped: [CellQueue.Entry] = []
                while assignments.count < limit && skipped.count < Self.fitScanLimit, let i = head() {
                    if heldBack?.worker == identity && i != heldBack?.cell { break }
                    let entry = queue.pop()!
                    if requirements(i).memoryBytes > largestMemory {
                        wait(i, &out)
                    } else if fits(i, identity) {
                        cells[i].place = .none
                        if heldBack?.cell == i { heldBack = nil }
                        assignments.append(grant(i, lease: lease, to: identity, now: now, &out))
                    } else {
                        skipped.append(entry)
                    }
                }
                for entry in skipped { queue.push(entry) }
                if assignments.isEmpty {
                    nextLease &-= 1
                    break
                }
                workers[identity]!.credit -= assignments.count
                workers[identity]!.lastSent = now
                out.append(.send(to: identity, .shard(lease: lease, cells: assignments)))
            }
            if workers[identity]!.credit > 0 {
                stillHungry.append(identity)
            } else {
                workers[identity]!.hungry = false
            }
        }
        hungry = stillHungry
    }

    /// The most expensive queued cell, after dropping the queue's stale entries from its top
    /// (cells taken out of it by an adoption, or entered twice).
    mutating func head() -> Int? {
        while let entry = queue.first {
            let i = Int(entry.index)
            if cells[i].place == .queue && cells[i].state == .queued { return i }
            _ = queue.pop()
        }
        return nil
    }

    /// The largest queued cell and the worker reserved for it, when no worker's free resources
    /// hold it now: among the workers large enough for it, the one with the most free memory,
    /// then the most free cores.
    mutating func reservation() -> (cell: Int, worker: [UInt8])? {
        guard let head = head(), requirements(head) != .none else { return nil }
        var best: (identity: [UInt8], free: UInt64, cores: Int)?
        for (identity, worker) in workers where requirements(head).memoryBytes <= worker.memory {
            if fits(head, identity) { return nil }
            let candidate = (identity, worker.memoryFree, worker.cores - worker.threadsInUse)
            if best.map({ (candidate.1, candidate.2) > ($0.free, $0.cores) }) ?? true { best = candidate }
        }
        return best.map { (head, $0.identity) }
    }

    /// Moves queued cell `i`, already out of the queue, to the cells that wait for a worker large
    /// enough, and says so.
    mutating func wait(_ i: Int, _ out: inout [Directive]) {
        cells[i].place = .waiting
        waiting.append(i)
        waitingCount += 1
        let has = workers.values.max { $0.memory < $1.memory }.map {
            "largest worker has \(Units.formatSize($0.memoryFree)) free of \(Units.formatSize($0.memory))"
        }
        out.append(
            .log(
                .warning,
                "cell \(short(cells[i].key.hex)) waits: needs \(Units.formatSize(requirements(i).memoryBytes)); \(has ?? "no worker")"
            )
        )
    }

    /// Leases queued cell `i`, out of every waiting collection, to a worker under `lease` (a new
    /// attempt, holding its cores and memory there) and returns its assignment; the state change
    /// is persisted.
    mutating func grant(
        _ i: Int,
        lease: UInt64,
        to identity: [UInt8],
        now: ContinuousClock.Instant,
        _ out: inout [Directive]
    ) -> Message.Assignment {
        cells[i].attempts += 1
        leases[i] = Lease(id: lease, worker: identity, dispatchedAt: now)
        move(i, from: .queued, to: .leased)
        workers[identity]!.leased.insert(i)
        hold(i, on: identity)
        out.append(.persist(update(i)))
        return assignment(i)
    }

    /// The threads cell `i` gets on a worker: its request, at most the worker's cores.
    func threads(_ i: Int, on worker: Worker) -> Int {
        min(Int(requirements(i).threads), worker.cores)
    }

    /// Whether cell `i` fits the free cores and memory of a worker.
    func fits(_ i: Int, _ identity: [UInt8]) -> Bool {
        guard let worker = workers[identity] else { return false }
        let needs = requirements(i)
        let threads = threads(i, on: worker)
        return (threads == 0 || worker.threadsInUse + threads <= worker.cores) && needs.memoryBytes <= worker.memoryFree
    }

    /// Cell `i`, leased to a worker, holds its threads and memory there.
    mutating func hold(_ i: Int, on identity: [UInt8]) {
        guard let worker = workers[identity], let lease = leases[i], !lease.holding else { return }
        let threads = threads(i, on: worker)
        leases[i]!.threads = UInt16(threads)
        leases[i]!.holding = true
        leases[i]!.progress = nil
        workers[identity]!.threadsInUse += threads
        workers[identity]!.memoryInUse &+= requirements(i).memoryBytes
    }

    /// Cell `i`'s outcome arrived or its lease ended: its worker's threads and memory are free.
    mutating func free(_ i: Int) {
        guard let lease = leases[i], lease.holding else { return }
        leases[i]!.holding = false
        leases[i]!.progress = nil
        if workers[lease.worker] != nil {
            workers[lease.worker]!.threadsInUse -= Int(lease.threads)
            workers[lease.worker]!.memoryInUse &-= requirements(i).memoryBytes
        }
    }

    /// Puts queued cell `i` (in no waiting collection) in the queue.
    mutating func enqueue(_ i: Int) {
        guard cells[i].place != .queue else { return }
        cells[i].place = .queue
        queue.push(CellQueue.Entry(cost: cells[i].cost, index: Int32(i)))
    }

    mutating func move(_ i: Int, from: CellState, to: CellState) {
        counts[from, default: 0] -= 1
        counts[to, default: 0] += 1
        cells[i].state = to
        if from == .failed { failed.remove(i) }
        if to == .failed { failed.insert(i) }
    }

    func update(_ i: Int) -> CellUpdate {
        CellUpdate(
            key: cells[i].key.hex,
            state: cells[i].state,
            attempts: Int(cells[i].attempts),
            lease: leases[i]?.id,
            worker: leases[i].flatMap { workers[$0.worker]?.id },
            lastError: errors[i]
        )
    }

    func assignment(_ i: Int) -> Message.Assignment {
        var limits = configuration.limits
        limits.threads = leases[i]?.threads ?? 0
        limits.memoryBytes = requirements(i).limitBytes
        return Message.Assignment(
            key: cells[i].key.hex,
            attempt: UInt16(clamping: cells[i].attempts),
            work: works[cells[i].work],
            limits: limits
        )
    }

    func short(_ key: String) -> String { String(key.prefix(12)) }
}
