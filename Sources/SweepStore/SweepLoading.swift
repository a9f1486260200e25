public import Diagnostics
import Foundation
import GRDB
public import SweepCore
import TrainingCore

extension ResultStore {
    /// Starts loading a sweep file's cells into this store and out to the scheduler, in chunks
    /// (`SweepLoad.next`), so that a coordinator serves workers while a large sweep loads.
    ///
    /// - A database that already holds exactly this file (the fingerprint of its text and
    ///   science version recorded when it was last loaded in full) streams its cells back
    ///   without hashing or writing them: a restart.
    /// - A database whose load of this file was cut short (a kill -9 while a large sweep
    ///   loaded) streams what it recorded and records the rest: cells are recorded in key order,
    ///   so the rest is every cell after the largest key stored.
    /// - An empty database takes the cells in key order, one transaction per chunk, and records
    ///   the fingerprint after the last one.
    /// - Anything else (another file, an extended sweep, a load cut short) goes through
    ///   `prepare`, which compares the cell sets in one transaction, and then streams.
    public func load(spec: SweepSpec, retryFailed: Bool = false, force: Bool = false) throws(IsosweepError) -> SweepLoad
    {
        let fingerprint = SHA256.hex(Array("science \(scienceVersion)\n\(spec.source)".utf8))
        return try load(fingerprint: fingerprint, retryFailed: retryFailed) { () throws(IsosweepError) in
            let (cells, keys) = try spec.keyedCells()
            return ({ cells[$0] }, keys, spec.name, spec.source)
        } prepare: { () throws(IsosweepError) in
            let cells = try spec.cells()
            let preparation = try self.prepare(spec: spec, cells: cells, retryFailed: retryFailed, force: force)
            return (preparation.seeds, preparation.summary)
        }
    }

    /// Starts loading cells with no sweep file of their own (the benchmarks' no-op cells).
    public func load(name: String, cells: [CellWork]) throws(IsosweepError) -> SweepLoad {
        // The cells themselves are the identity: one pass over their JSON, no per-cell hashing.
        var all: [UInt8] = Array("science \(scienceVersion)\n\(name)\n".utf8)
        for cell in cells { all += cell.json }
        let fingerprint = SHA256.hex(all)
        all = []
        return try load(fingerprint: fingerprint, retryFailed: false) { () throws(IsosweepError) in
            ({ cells[$0] }, cells.map(\.cellKey), name, "")
        } prepare: { () throws(IsosweepError) in
            (try self.prepare(name: name, cells: cells), "\(cells.count) cells")
        }
    }

    /// Starts loading `count` diagnostic cells that succeed at once
    /// (`CellWork.noop(index: 0..<count)`), made as they load rather than held as a list.
    public func load(name: String, diagnosticCells count: Int) throws(IsosweepError) -> SweepLoad {
        // (The fingerprint's words are what databases of these cells hold.)
        let fingerprint = SHA256.hex(Array("science \(scienceVersion)\n\(name)\nnoop 0..<\(count)".utf8))
        func cell(_ i: Int) -> CellWork { .noop(index: i, fail: false) }
        return try load(fingerprint: fingerprint, retryFailed: false) { () throws(IsosweepError) in
            (cell, (0..<count).map { cell($0).cellKey }, name, "")
        } prepare: { () throws(IsosweepError) in
            (try self.prepare(name: name, cells: (0..<count).map(cell)), "\(count) cells")
        }
    }

    private func load(
        fingerprint: String,
        retryFailed: Bool,
        fresh: () throws(IsosweepError) -> (cell: (Int) -> CellWork, keys: [CellKey], name: String, source: String),
        prepare: () throws(IsosweepError) -> (seeds: [Scheduler.CellSeed], summary: String)
    ) throws(IsosweepError) -> SweepLoad {
        let found = try read("sweep") { db in
            (
                loaded: try String.fetchOne(db, sql: "SELECT loaded FROM sweep WHERE id = 1"),
                hasSweep: try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM sweep)") ?? false,
                hasCells: try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM cells)") ?? false
            )
        }
        if found.loaded == fingerprint {
            if retryFailed {
                try write("retry the failed cells") { db in
                    try db.execute(
                        sql: "UPDATE cells SET state = 'queued', attempts = 0 WHERE state = 'failed' AND in_sweep = 1"
                    )
                }
            }
            let count = try read("cells") { db in
                try Int.fetchOne(db, sql: "SELECT SUM(n) FROM cell_counts WHERE in_sweep = 1") ?? 0
            }
            return SweepLoad(
                store: self,
                source: .stored(after: nil, then: nil),
                fingerprint: fingerprint,
                summary: "reloaded",
                expectedCount: count
            )
        }
        let partial = SweepLoad.partialMark + fingerprint
        if found.loaded == partial {
            let (cell, keys, _, _) = try fresh()
            // In key order, as they were being recorded: the rest follows the largest key stored.
            let order = keys.indices.sorted { keys[$0] < keys[$1] }.map { Int32($0) }
            let largest = try read("cells") { db in try String.fetchOne(db, sql: "SELECT MAX(key) FROM cells") }
            var next = 0
            if let largest, let last = CellKey(hex: largest) {
                var high = order.count
                while next < high {
                    let middle = (next + high) / 2
                    if keys[Int(order[middle])] <= last { next = middle + 1 } else { high = middle }
                }
            }
            if retryFailed {
                try write("retry the failed cells") { db in
                    try db.execute(
                        sql: "UPDATE cells SET state = 'queued', attempts = 0 WHERE state = 'failed' AND in_sweep = 1"
                    )
                }
            }
            let rest = SweepLoad.Fresh(cell: cell, keys: keys, order: order, next: next)
            return SweepLoad(
                store: self,
                source: .stored(after: nil, then: rest),
                fingerprint: fingerprint,
                summary: "resumed loading: \(next) cells recorded, \(keys.count - next) to record",
                expectedCount: keys.count
            )
        }
        if !found.hasSweep && !found.hasCells {
            let (cell, keys, name, source) = try fresh()
            try write("record the sweep") { db in
                try db.execute(
                    sql: """
                        INSERT INTO sweep (id, name, source, science_version, created_at, loaded) VALUES (1, ?, ?, ?, ?, ?)
                        """,
                    arguments: [name, source, scienceVersion, Date().timeIntervalSince1970, partial]
                )
            }
            // In key order: the table's B-tree grows at its end instead of at a million places.
            let order = keys.indices.sorted { keys[$0] < keys[$1] }.map { Int32($0) }
            return SweepLoad(
                store: self,
                source: .fresh(SweepLoad.Fresh(cell: cell, keys: keys, order: order, next: 0)),
                fingerprint: fingerprint,
                summary: "new sweep: \(keys.count) cells",
                expectedCount: keys.count
            )
        }
        let (seeds, summary) = try prepare()
        try write("record the sweep") { db in
            try db.execute(sql: "UPDATE sweep SET loaded = ? WHERE id = 1", arguments: [fingerprint])
        }
        return SweepLoad(
            store: self,
            source: .seeds(seeds, next: 0),
            fingerprint: fingerprint,
            summary: summary,
            expectedCount: seeds.count
        )
    }

    func write<T>(_ what: String, _ body: (Database) throws -> T) throws(IsosweepError) -> T {
        do {
            return try database.write(body)
        } catch let error as IsosweepError {
            throw error
        } catch {
            throw IsosweepError(.store, "cannot \(what) in \(path)", remedy: Self.explain(error))
        }
    }
}

/// A sweep loading in chunks (`ResultStore.load`): each `next` records and returns the next
/// cells for the scheduler, until it returns an empty array.
public final class SweepLoad {
    /// Cells `cell(i)` with keys `keys[i]`, to record in the order `order` from `next` on.
    struct Fresh {
        var cell: (Int) -> CellWork
        var keys: [CellKey]
        var order: [Int32]
        var next: Int
    }

    /// What `loaded` holds while a new sweep's cells are being recorded, before its fingerprint.
    static let partialMark = "partial "

    enum Source {
        case fresh(Fresh)
        /// The stored cells after a key, then (a load cut short) the cells still to record.
        case stored(after: String?, then: Fresh?)
        case seeds([Scheduler.CellSeed], next: Int)
        case finished
    }

    let store: ResultStore
    var source: Source
    let fingerprint: String
    /// One line for the log: new, reloaded, extended, ...
    public let summary: String
    /// How many cells it will return (to reserve room for them at once).
    public let expectedCount: Int

    init(store: ResultStore, source: Source, fingerprint: String, summary: String, expectedCount: Int) {
        self.store = store
        self.source = source
        self.fingerprint = fingerprint
        self.summary = summary
        self.expectedCount = expectedCount
    }

    /// Every cell has been returned.
    public var isFinished: Bool {
        if case .finished = source { return true }
        return false
    }

    /// The next at most `limit` cells (none once finished).
    public func next(limit: Int) throws(IsosweepError) -> [Scheduler.CellSeed] {
        switch source {
        case .finished:
            return []
        case .seeds(let seeds, let next):
            let end = min(seeds.count, next + limit)
            source = end == seeds.count ? .finished : .seeds(seeds, next: end)
            return Array(seeds[next..<end])
        case .stored(let after, let then):
            let seeds = try store.read("cells") { db in
                try Row.fetchAll(
                    db,
                    sql: """
                        SELECT key, work, cost, state, attempts, last_error, worker FROM cells
                        WHERE key > ? AND +in_sweep = 1 ORDER BY key LIMIT ?
                        """,
                    arguments: [after ?? "", limit]
                ).map { try Self.seed($0) }
            }
            if seeds.count == limit {
                source = .stored(after: seeds.last?.key, then: then)
            } else {
                source = then.map { .fresh($0) } ?? .finished
            }
            return seeds
        case .fresh(var fresh):
            let (make, keys, order, next) = (fresh.cell, fresh.keys, fresh.order, fresh.next)
            let end = min(order.count, next + limit)
            var seeds: [Scheduler.CellSeed] = []
            seeds.reserveCapacity(end - next)
            for position in next..<end {
                let i = Int(order[position])
                let cell = make(i)
                var seed = Scheduler.CellSeed(
                    key: keys[i].hex,
                    work: cell.json,
                    cost: cell.estimatedCost,
                    state: .queued,
                    attempts: 0,
                    lastError: nil
                )
                seed.cellKey = keys[i]
                seeds.append(seed)
            }
            let last = end == order.count
            try store.write("record the sweep's cells") { db in
                // A cell that left the sweep (--force) and comes back is a member again, with its result.
                let statement = try db.cachedStatement(
                    sql: """
                        INSERT INTO cells (key, work, cost, state, attempts, in_sweep) VALUES (?, ?, ?, 'queued', 0, 1)
                        ON CONFLICT(key) DO UPDATE SET in_sweep = 1
                        """
                )
                for seed in seeds { try statement.run(.text(seed.key), .utf8(seed.work), .real(seed.cost)) }
                if last { try db.execute(sql: "UPDATE sweep SET loaded = ? WHERE id = 1", arguments: [fingerprint]) }
            }
            fresh.next = end
            source = last ? .finished : .fresh(fresh)
            return seeds
        }
    }

    static func seed(_ row: Row) throws(IsosweepError) -> Scheduler.CellSeed {
        let key: String = row[0]
        let work: String = row[1]
        return Scheduler.CellSeed(
            key: key,
            work: Array(work.utf8),
            cost: row[2],
            state: try CellState(stored: row[3], of: "cell \(key.prefix(16))"),
            attempts: row[4],
            lastError: row[5],
            leasedTo: row[6]
        )
    }
}
