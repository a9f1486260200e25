import TrainingCore

/// The scheduler's events: messages from workers, ticks and commits.
extension Scheduler {
    /// Applies an event at time `now` and returns what the shell must do.
    public mutating func on(_ event: Event, now: ContinuousClock.Instant) -> [Directive] {
        var out: [Directive] = []
        if !reserved.isEmpty {
            // The window starts at the first event. Workers that said HELLO meanwhile get their
            // cells as they stream in (`awaitingAdoption`), and none goes to another worker while
            // the sweep is still loading.
            let deadline = reservationDeadline ?? now + configuration.reclaimWindow
            reservationDeadline = deadline
            if now >= deadline && !loading {
                let unclaimed = reserved.filter { cells[$0].state == .queued && cells[$0].place == .reserved }
                reserved = []
                for i in unclaimed {
                    cells[i].place = .none
                    enqueue(i)
                }
                if !unclaimed.isEmpty {
                    out.append(
                        .log(
                            .info,
                            "\(unclaimed.count) cells in flight before the restart were not reclaimed: back in the queue"
                        )
                    )
                }
                dispatch(now: now, &out)
            }
        }
        switch event {
        case .message(let identity, let message):
            receive(message, from: identity, now: now, &out)
        case .tick:
            tick(now: now, &out)
        case .committed(let commits):
            committed(commits, now: now, &out)
        case .requeue(let cells):
            requeue(cells, &out)
            dispatch(now: now, &out)
        case .cancel(let keys):
            cancel(keys, &out)
        }
        return out
    }

    /// FAILED or cancelled cells back in the queue with their attempts reset; others untouched.
    private mutating func requeue(
        _ requests: [(key: String, work: [UInt8], requirements: CellRequirements)],
        _ out: inout [Directive]
    ) {
        var count = 0
        for request in requests {
            guard let i = position(request.key), cells[i].state == .failed || cells[i].state == .cancelled else {
                continue
            }
            if cells[i].work.length == 0 { cells[i].work = works.append(request.work) }
            // A cell loaded as FAILED was given no requirements: it has them now.
            cells[i].need = intern(request.requirements)
            let previous = cells[i].state
            cells[i].attempts = 0
            cells[i].losses = 0
            errors[i] = nil
            move(i, from: previous, to: .queued)
            remainingCost += cells[i].cost
            enqueue(i)
            out.append(.persist(update(i)))
            count += 1
        }
        if count > 0 { out.append(.log(.info, "\(count) cells requeued by request")) }
    }

    /// Queued or FAILED cells out of the sweep; a cell running or done is left as it is.
    private mutating func cancel(_ keys: [String], _ out: inout [Directive]) {
        var count = 0
        for key in keys {
            guard let i = position(key), cells[i].state == .queued || cells[i].state == .failed else { continue }
            let previous = cells[i].state
            // The queue skips it lazily (`place`; reservations are recomputed at each dispatch).
            cells[i].place = .none
            if previous == .queued { remainingCost -= cells[i].cost }
            move(i, from: previous, to: .cancelled)
            out.append(.persist(update(i)))
            count += 1
        }
        if count > 0 { out.append(.log(.info, "\(count) cells cancelled by request")) }
    }

    /// Leases back the cells `add` brought in that their workers offered to resume, and offers
    /// the queue to workers with credit (after `add` put new cells in it).
    public mutating func dispatchNow(now: ContinuousClock.Instant) -> [Directive] {
        var out: [Directive] = []
        let found = adoptions
        adoptions = [:]
        for identity in found.keys.sorted(by: { $0.lexicographicallyPrecedes($1) }) {
            resume(found[identity]!, on: identity, now: now, &out)
        }
        dispatch(now: now, &out)
        return out
    }

    private mutating func receive(
        _ message: Message,
        from identity: [UInt8],
        now: ContinuousClock.Instant,
        _ out: inout [Directive]
    ) {
        if case .hello(let hello) = message {
            register(hello, identity: identity, now: now, &out)
            return
        }
        guard workers[identity] != nil else {
            // A worker we do not know (e.g. we restarted): ask it to register again.
            if message != .bye {
                out.append(
                    .send(
                        to: identity,
                        .refuse(reason: "not registered with this coordinator: say HELLO", fatal: false)
                    )
                )
            }
            return
        }
        workers[identity]!.lastHeard = now
        switch message {
        case .credit(let count):
            workers[identity]!.credit += Int(count)
            if !workers[identity]!.hungry {
                workers[identity]!.hungry = true
                hungry.append(identity)
            }
            dispatch(now: now, &out)
        case .result(let lease, let key, let attempt, let payload):
            accept(result: payload, lease: lease, key: key, attempt: attempt, from: identity, &out)
            // Its cores and memory are free: a cell that did not fit may now.
            dispatch(now: now, &out)
        case .failed(let lease, let key, let attempt, let error):
            fail(lease: lease, key: key, attempt: attempt, error: error, from: identity, now: now, &out)
        case .heartbeat:
            break
        case .checkpoint(let chunk):
            // Kept only from the worker that holds the cell, under its current lease and attempt.
            guard let i = position(chunk.key), cells[i].state == .leased, let held = leases[i],
                held.id == chunk.lease, held.worker == identity, Int32(chunk.attempt) == cells[i].attempts
            else {
                out.append(
                    .log(
                        .warning,
                        "worker \(workers[identity]!.id) sent a checkpoint for \(short(chunk.key)) under lease \(chunk.lease), which it does not hold; dropped"
                    )
                )
                return
            }
            out.append(.storeCheckpoint(chunk))
        case .progress(let reports):
            for report in reports {
                guard let i = position(report.key), leases[i]?.worker == identity, leases[i]?.holding == true
                else { continue }
                leases[i]!.progress = report
            }
        case .bye:
            let worker = workers[identity]!
            out.append(
                .log(
                    .info,
                    "worker \(worker.id) on \(worker.host) left (BYE); \(worker.leased.count) unfinished cells go back to the queue"
                )
            )
            remove(identity, handedBack: true, reason: "handed back by \(worker.id)", now: now, &out)
            dispatch(now: now, &out)
        case .hello, .welcome, .refuse, .shard, .ack, .resume:
            out.append(
                .log(
                    .warning,
                    "worker \(workers[identity]!.id) sent \(message.name), which only the coordinator sends; dropped"
                )
            )
        }
    }

    private mutating func register(
        _ hello: Message.Hello,
        identity: [UInt8],
        now: ContinuousClock.Instant,
        _ out: inout [Directive]
    ) {
        guard admits(hello, identity: identity, &out) else { return }
        // The same worker process reconnecting under a new identity, or saying HELLO again: its
        // cells are handed back (a reconnection says nothing about the cells).
        let previous = Set([identity] + [identities[hello.workerID]].compactMap { $0 })
        for other in previous.sorted(by: { $0.lexicographicallyPrecedes($1) }) {
            guard let worker = workers[other] else { continue }
            out.append(
                .log(
                    .info,
                    "worker \(worker.id) registered again; its \(worker.leased.count) unfinished cells go back to the queue"
                )
            )
            remove(
                other,
                handedBack: true,
                reason: "worker \(worker.id) reconnected before finishing it",
                now: now,
                &out
            )
        }
        joins += 1
        workers[identity] = Worker(
            identity: identity,
            id: hello.workerID,
            host: hello.host,
            build: hello.build,
            slots: Int(hello.slots),
            cores: Int(hello.cores),
            memory: hello.memoryBytes,
            blasCore: hello.blasCore,
            lastHeard: now,
            lastSent: now,
            joined: joins
        )
        identities[hello.workerID] = identity
        largestWorkerMemory = max(largestWorkerMemory, hello.memoryBytes)
        let session = UInt64(configuration.session) << 32 | UInt64(joins)
        out.append(
            .send(
                to: identity,
                .welcome(
                    session: session,
                    heartbeatMilliseconds: UInt32(configuration.heartbeatInterval.milliseconds),
                    liveness: UInt16(configuration.liveness)
                )
            )
        )
        out.append(
            .log(
                .info,
                "worker \(hello.workerID) joined from \(hello.host) with \(hello.slots) slots, \(hello.cores) cores, \(hello.memoryBytes == .max ? "unstated" : Units.formatSize(hello.memoryBytes)) memory and \(hello.blasCore) BLAS kernels"
            )
        )
        requeueWaiting(for: hello.memoryBytes)
        out.append(
            .recordWorker(
                WorkerRecord(
                    id: hello.workerID,
                    host: hello.host,
                    build: hello.build,
                    slots: Int(hello.slots),
                    alive: true
                )
            )
        )
        adopt(hello.resumable, for: identity, now: now, &out)
    }

    /// Whether a HELLO speaks this coordinator's protocol and science versions; if not, the
    /// worker is refused for good (a fatal REFUSE that says what to do) and false is returned.
    private func admits(_ hello: Message.Hello, identity: [UInt8], _ out: inout [Directive]) -> Bool {
        guard hello.protocolVersion == Wire.protocolVersion else {
            out.append(
                .log(
                    .warning,
                    "refused worker \(hello.workerID) on \(hello.host): protocol version \(hello.protocolVersion), coordinator speaks \(Wire.protocolVersion)"
                )
            )
            out.append(
                .send(
                    to: identity,
                    .refuse(
                        reason:
                            "protocol version \(hello.protocolVersion) is not \(Wire.protocolVersion): run the same isosweep build on workers and coordinator",
                        fatal: true
                    )
                )
            )
            return false
        }
        guard hello.scienceVersion == UInt16(scienceVersion) else {
            out.append(
                .log(
                    .warning,
                    "refused worker \(hello.workerID) on \(hello.host): science version \(hello.scienceVersion), coordinator has \(scienceVersion)"
                )
            )
            out.append(
                .send(
                    to: identity,
                    .refuse(
                        reason:
                            "science version \(hello.scienceVersion) is not \(scienceVersion): results would not be comparable; upgrade the worker",
                        fatal: true
                    )
                )
            )
            return false
        }
        return true
    }

    /// Cells that waited for a worker with `memory` bytes go back to the queue.
    private mutating func requeueWaiting(for memory: UInt64) {
        guard waitingCount > 0 else { return }
        var still: [Int] = []
        var listed = Set<Int>()
        for i in waiting where cells[i].place == .waiting && cells[i].state == .queued && listed.insert(i).inserted {
            if requirements(i).memoryBytes <= memory {
                cells[i].place = .none
                waitingCount -= 1
                enqueue(i)
            } else {
                still.append(i)
            }
        }
        waiting = still
    }

    /// Leases back to a (re)registered worker the cells it offers to resume, when they are still
    /// waiting in the queue: work computed across a coordinator restart or a reconnection is not
    /// thrown away. They do not use the worker's credit, since it is already running them.
    private mutating func adopt(
        _ keys: [String],
        for identity: [UInt8],
        now: ContinuousClock.Instant,
        _ out: inout [Directive]
    ) {
        var known: [Int] = []
        for key in keys {
            if let i = position(key) {
                known.append(i)
            } else if loading, let cellKey = CellKey(hex: key) {
                // Not loaded yet (a large sweep streams in after a restart): adopted when it is.
                awaitingAdoption[cellKey] = identity
            }
        }
        resume(known, on: identity, now: now, &out)
    }

    /// Leases cells `indices` back to the worker that offers them (adoption), and acknowledges
    /// those already committed (their ACK was lost), so that the worker forgets them.
    mutating func resume(_ indices: [Int], on identity: [UInt8], now: ContinuousClock.Instant, _ out: inout [Directive])
    {
        guard workers[identity] != nil else { return }
        let committed = indices.filter { cells[$0].state == .done }.map { cells[$0].key.hex }
        if !committed.isEmpty { out.append(.send(to: identity, .ack(keys: committed))) }
        let adoptable = Set(indices).filter { cells[$0].state == .queued }
        guard dispatching, !adoptable.isEmpty else { return }
        nextLease &+= 1
        let lease = UInt64(configuration.session) << 32 | UInt64(nextLease)
        var assignments: [Message.Assignment] = []
        for i in adoptable.sorted() {
            // Out of the queue, the waiting list or the reserve: their entries are skipped from now on.
            if cells[i].place == .waiting { waitingCount -= 1 }
            cells[i].place = .none
            // Already running there: it holds its resources whether or not they fit.
            assignments.append(grant(i, lease: lease, to: identity, now: now, &out))
        }
        out.append(
            .log(.info, "worker \(workers[identity]!.id) resumes \(assignments.count) cells it was already computing")
        )
        out.append(.send(to: identity, .shard(lease: lease, cells: assignments)))
    }

    private mutating func accept(
        result payload: [UInt8],
        lease: UInt64,
        key: String,
        attempt: UInt16,
        from identity: [UInt8],
        _ out: inout [Directive]
    ) {
        // Its id only: a copy of the whole worker would be copied again when its sets change.
        let workerID = workers[identity]!.id
        guard let i = position(key) else {
            out.append(.log(.warning, "worker \(workerID) sent a result for unknown cell \(short(key)); dropped"))
            return
        }
        if cells[i].state == .done {
            // Already committed: acknowledge again so the worker forgets it, and discard.
            out.append(.send(to: identity, .ack(keys: [key])))
            return
        }
        guard cells[i].state == .leased, let held = leases[i], held.id == lease, held.worker == identity,
            Int32(attempt) == cells[i].attempts, !cells[i].committing
        else {
            out.append(
                .log(
                    .warning,
                    "worker \(workerID) sent a result for \(short(key)) under lease \(lease) attempt \(attempt), which it does not hold; dropped"
                )
            )
            return
        }
        cells[i].committing = true
        free(i)
        // Finished there: no longer one of its cells (its result is being committed, on the
        // writer's thread, while the worker already runs the next).
        workers[identity]!.leased.remove(i)
        workers[identity]!.delivered += 1
        var commit = Commit(key: key, payload: payload, worker: workerID, attempt: Int(attempt), identity: identity)
        commit.cell = Int32(i)
        out.append(.commit(commit))
    }

    private mutating func committed(_ commits: [Commit], now: ContinuousClock.Instant, _ out: inout [Directive]) {
        var acks: [[UInt8]: [String]] = [:]
        for commit in commits {
            let known = commit.cell >= 0 && Int(commit.cell) < cells.count ? Int(commit.cell) : nil
            guard let i = known ?? position(commit.key), cells[i].state != .done else { continue }
            let previous = cells[i].state
            free(i)
            if let lease = leases.removeValue(forKey: i) {
                workers[lease.worker]?.leased.remove(i)
                latencyMilliseconds.append(Float((now - lease.dispatchedAt) / .milliseconds(1)))
            }
            if previous != .failed { remainingCost -= cells[i].cost }
            costDoneThisRun += cells[i].cost
            move(i, from: previous, to: .done)
            cells[i].committing = false
            if workers[commit.identity] != nil { workers[commit.identity]!.cellsDone += 1 }
            acks[commit.identity, default: []].append(commit.key)
        }
        for (identity, keys) in acks {
            var start = 0
            while start < keys.count {
                let end = min(keys.count, start + Wire.maximumAckKeys)
                out.append(.send(to: identity, .ack(keys: Array(keys[start..<end]))))
                start = end
            }
            if workers[identity] != nil { workers[identity]!.lastSent = now }
        }
    }

    private mutating func fail(
        lease: UInt64,
        key: String,
        attempt: UInt16,
        error: String,
        from identity: [UInt8],
        now: ContinuousClock.Instant,
        _ out: inout [Directive]
    ) {
        let workerID = workers[identity]!.id
        guard let i = position(key), cells[i].state == .leased, let held = leases[i], held.id == lease,
            held.worker == identity, Int32(attempt) == cells[i].attempts, !cells[i].committing
        else {
            out.append(
                .log(
                    .warning,
                    "worker \(workerID) reported a failure of \(short(key)) under a lease it does not hold; dropped"
                )
            )
            return
        }
        workers[identity]!.leased.remove(i)
        workers[identity]!.delivered += 1
        release(i, error: "\(error) (attempt \(attempt) on \(workerID))", countAttempt: true, &out)
        dispatch(now: now, &out)
    }

    private mutating func tick(now: ContinuousClock.Instant, _ out: inout [Directive]) {
        let deadline = configuration.deadline
        for (identity, worker) in workers where now - worker.lastHeard > deadline {
            out.append(
                .log(
                    .warning,
                    "worker \(worker.id) on \(worker.host) silent for \((now - worker.lastHeard).milliseconds) ms: dead; \(worker.leased.count) cells go back to the queue"
                )
            )
            remove(
                identity,
                handedBack: false,
                reason: "worker \(worker.id) on \(worker.host) stopped responding",
                now: now,
                &out
            )
        }
        for (identity, worker) in workers where now - worker.lastSent >= configuration.heartbeatInterval {
            out.append(.send(to: identity, .heartbeat))
            workers[identity]!.lastSent = now
        }
        dispatch(now: now, &out)
    }
}
