public import Diagnostics
public import Foundation
import GRDB
public import SweepCore
import TrainingCore

/// The durable record of a sweep in SQLite (WAL, synchronous=FULL): the sweep file as the user
/// wrote it, every cell with its state, attempts, lease, worker and last error (and whether it
/// belongs to the sweep's current file), every result, every worker with its cells done and when
/// it was last seen, and events. GRDB's queue serializes the threads that use a store (the
/// coordinator's loop, its writer and its loader).
///
/// A database written by an older isosweep is migrated when opened for writing; opened read-only,
/// a private in-memory copy is migrated and the file is left as it is.
///
/// Sendable: its state is GRDB's queue, which serializes the threads that share it.
public final class ResultStore: Sendable {
    /// The database.
    let database: DatabaseQueue
    /// Its path.
    public let path: String

    /// Opens (creating if needed) the store at `path`.
    public init(path: String, readOnly: Bool = false) throws(IsosweepError) {
        self.path = path
        if readOnly && !FileManager.default.fileExists(atPath: path) {
            throw IsosweepError(
                .store,
                "no database at \(path)",
                remedy: "check the path (the coordinator creates it with --db)"
            )
        }
        var configuration = Configuration()
        configuration.readonly = readOnly
        configuration.journalMode = readOnly ? .default : .wal
        configuration.busyMode = .timeout(10)
        configuration.prepareDatabase { db in
            // Every commit reaches the disk before the coordinator acknowledges it.
            try db.execute(sql: "PRAGMA synchronous = FULL")
        }
        do {
            let file = try DatabaseQueue(path: path, configuration: configuration)
            try file.read { db in
                guard try db.tableExists("cells") || !readOnly else {
                    throw IsosweepError(.store, "\(path) is not an isosweep database (no cells table)")
                }
            }
            if !readOnly {
                try Self.migrator.migrate(file)
                database = file
            } else if try file.read({ db in try Self.migrator.hasCompletedMigrations(db) }) {
                database = file
            } else {
                // Written by an older isosweep: read a migrated copy, never change the file.
                let copy = try DatabaseQueue()
                try file.backup(to: copy)
                try Self.migrator.migrate(copy)
                database = copy
            }
            try database.read { db in
                guard try db.tableExists("cells") else {
                    throw IsosweepError(.store, "\(path) is not an isosweep database (no cells table)")
                }
            }
        } catch let error as IsosweepError {
            throw error
        } catch {
            throw IsosweepError(.store, "cannot open the database \(path)", remedy: Self.explain(error))
        }
    }

    /// A database error in words a user can act on.
    static func explain(_ error: any Error) -> String {
        guard let error = error as? DatabaseError else { return "\(error)" }
        switch error.resultCode {
        case .SQLITE_READONLY:
            return
                "it is read-only (\(error.message ?? "")): check the file system and the file's permissions, or copy it somewhere writable"
        case .SQLITE_FULL:
            return "the disk is full: free space and run again (nothing committed is lost)"
        case .SQLITE_CANTOPEN:
            return "cannot open the file: check that its folder exists and is writable"
        case .SQLITE_NOTADB, .SQLITE_CORRUPT:
            return "the file is not an isosweep database or is damaged (\(error.message ?? ""))"
        default:
            return "\(error)"
        }
    }

    /// The schema's history: v1 as isosweep 0.1 wrote it, then each change as a migration.
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.execute(
                sql: """
                    CREATE TABLE sweep (
                        id INTEGER PRIMARY KEY CHECK (id = 1),
                        name TEXT NOT NULL,
                        spec TEXT NOT NULL,
                        spec_hash TEXT NOT NULL,
                        science_version INTEGER NOT NULL,
                        created_at REAL NOT NULL
                    );
                    CREATE TABLE cells (
                        key TEXT PRIMARY KEY,
                        work TEXT NOT NULL,
                        cost REAL NOT NULL,
                        state TEXT NOT NULL,
                        attempts INTEGER NOT NULL DEFAULT 0,
                        lease INTEGER,
                        worker TEXT,
                        last_error TEXT,
                        updated_at REAL
                    ) WITHOUT ROWID;
                    CREATE TABLE results (
                        key TEXT PRIMARY KEY REFERENCES cells(key),
                        result TEXT NOT NULL,
                        worker TEXT NOT NULL,
                        attempt INTEGER NOT NULL,
                        committed_at REAL NOT NULL
                    ) WITHOUT ROWID;
                    CREATE TABLE workers (
                        id TEXT PRIMARY KEY,
                        host TEXT NOT NULL,
                        build TEXT NOT NULL,
                        slots INTEGER NOT NULL,
                        cells_done INTEGER NOT NULL,
                        alive INTEGER NOT NULL,
                        first_seen REAL NOT NULL,
                        last_seen REAL NOT NULL
                    ) WITHOUT ROWID;
                    CREATE TABLE events (
                        id INTEGER PRIMARY KEY,
                        at REAL NOT NULL,
                        kind TEXT NOT NULL,
                        detail TEXT NOT NULL
                    );
                    """
            )
        }
        migrator.registerMigration("v2-explicit-json") { db in
            try LegacyFormats.migrateToExplicitJSON(db)
        }
        migrator.registerMigration("v3-load-fingerprint") { db in
            // The fingerprint of the sweep file (or cells) last loaded in full: a restart with the
            // same file streams the stored cells instead of hashing and comparing them all.
            try db.execute(sql: "ALTER TABLE sweep ADD COLUMN loaded TEXT")
        }
        migrator.registerMigration("v4-cell-counts") { db in
            try db.execute(sql: cellCountsSchema)
        }
        migrator.registerMigration("v5-cell-requests") { db in
            try db.execute(sql: cellRequestsSchema)
        }
        migrator.registerMigration("v6-refine-rounds") { db in
            try db.execute(
                sql: "CREATE TABLE refine_rounds (round INTEGER PRIMARY KEY, cells INTEGER NOT NULL, at REAL NOT NULL)"
            )
        }
        return migrator
    }

    /// Counts of cells by membership and state, kept by triggers, so that `status --db` reads
    /// eight rows instead of a million; and a partial index of the cells with an error. An
    /// index on the state itself would be rewritten at every state change (two per cell) and
    /// cost the coordinator a fifth of its commit rate; the triggers touch one small page.
    static let cellCountsSchema = """
        DROP INDEX IF EXISTS cells_by_state;
        CREATE TABLE cell_counts (
            in_sweep INTEGER NOT NULL,
            state TEXT NOT NULL,
            n INTEGER NOT NULL,
            PRIMARY KEY (in_sweep, state)
        ) WITHOUT ROWID;
        INSERT INTO cell_counts (in_sweep, state, n)
            SELECT m.in_sweep, s.state, 0 FROM (SELECT 0 AS in_sweep UNION SELECT 1) AS m,
            (SELECT 'queued' AS state UNION SELECT 'leased' UNION SELECT 'done' UNION SELECT 'failed') AS s;
        UPDATE cell_counts SET n = (
            SELECT COUNT(*) FROM cells WHERE cells.in_sweep = cell_counts.in_sweep AND cells.state = cell_counts.state
        );
        CREATE TRIGGER cells_counted_insert AFTER INSERT ON cells BEGIN
            UPDATE cell_counts SET n = n + 1 WHERE in_sweep = NEW.in_sweep AND state = NEW.state;
        END;
        CREATE TRIGGER cells_counted_delete AFTER DELETE ON cells BEGIN
            UPDATE cell_counts SET n = n - 1 WHERE in_sweep = OLD.in_sweep AND state = OLD.state;
        END;
        CREATE TRIGGER cells_counted_update AFTER UPDATE OF state, in_sweep ON cells
        WHEN OLD.state IS NOT NEW.state OR OLD.in_sweep IS NOT NEW.in_sweep BEGIN
            UPDATE cell_counts SET n = n - 1 WHERE in_sweep = OLD.in_sweep AND state = OLD.state;
            UPDATE cell_counts SET n = n + 1 WHERE in_sweep = NEW.in_sweep AND state = NEW.state;
        END;
        CREATE INDEX cells_troubled ON cells(key) WHERE last_error IS NOT NULL OR state = 'failed';
        """

    // MARK: - Setting up a sweep

    /// What opening a sweep file on this database found.
    public struct Preparation: Sendable {
        /// The sweep's cells as the scheduler starts with them (finished ones included).
        public var seeds: [Scheduler.CellSeed]
        /// Cells of the file that the database's sweep did not have.
        public var newCells: Int
        /// Cells of the file that the database's sweep already had (finished or not).
        public var reusedCells: Int
        /// Cells of the database's sweep that the file does not have (dropped with `force`).
        public var droppedCells: Int
        /// Whether the database had a sweep before.
        public var existed: Bool

        /// One line for the log: what is new, what is reused, what was dropped.
        public var summary: String {
            guard existed else { return "new sweep: \(newCells) cells" }
            var parts: [String] = []
            if newCells > 0 { parts.append("extended by \(newCells) new cells") }
            parts.append("\(reusedCells) cells reused")
            if droppedCells > 0 { parts.append("\(droppedCells) cells dropped (--force; their results are kept)") }
            return parts.joined(separator: ", ")
        }
    }

    /// Records the sweep file and its cells and returns the cells for the scheduler.
    ///
    /// A sweep's identity is the set of its cells: the same cells in another order, with other
    /// comments or another description are the same sweep, and a file whose cells include all of
    /// the database's *extends* it (only the new cells run). A file that drops cells is refused
    /// unless `force`, which records the change and keeps every earlier result. Cells FAILED in an
    /// earlier run are retried when `retryFailed`.
    public func prepare(
        spec: SweepSpec,
        cells: [CellWork],
        retryFailed: Bool = false,
        force: Bool = false
    ) throws(IsosweepError) -> Preparation {
        do {
            return try database.write { db in
                let wanted = Set(cells.map(\.key))
                var preparation = Preparation(seeds: [], newCells: 0, reusedCells: 0, droppedCells: 0, existed: false)
                if let row = try Row.fetchOne(db, sql: "SELECT name, science_version FROM sweep WHERE id = 1") {
                    preparation.existed = true
                    let version: Int = row["science_version"]
                    guard version == scienceVersion else {
                        throw IsosweepError(
                            .store,
                            "\(path) holds results of science version \(version), this isosweep computes version \(scienceVersion)",
                            remedy: "use a new --db"
                        )
                    }
                    let name: String = row["name"]
                    let members = Set(try String.fetchAll(db, sql: "SELECT key FROM cells WHERE in_sweep = 1"))
                    let dropped = members.subtracting(wanted)
                    preparation.newCells = wanted.subtracting(members).count
                    preparation.reusedCells = wanted.count - preparation.newCells
                    preparation.droppedCells = dropped.count
                    if !dropped.isEmpty {
                        guard force else {
                            throw IsosweepError(
                                .store,
                                "\(path) belongs to sweep '\(name)', and \(spec.name)'s file drops \(dropped.count) of its \(members.count) cells",
                                remedy:
                                    "use a new --db for this sweep file, or --force to switch this database to it (earlier results are kept)"
                            )
                        }
                        let leave = try db.cachedStatement(sql: "UPDATE cells SET in_sweep = 0 WHERE key = ?")
                        for key in dropped { try leave.execute(arguments: [key]) }
                        try Self.record(
                            db,
                            "spec_changed",
                            "--force: sweep '\(name)' replaced by '\(spec.name)': \(dropped.count) cells dropped, \(preparation.newCells) new"
                        )
                    } else if preparation.newCells > 0 {
                        try Self.record(
                            db,
                            "extended",
                            "sweep '\(spec.name)' extended by \(preparation.newCells) cells"
                        )
                    }
                    try db.execute(
                        sql: "UPDATE sweep SET name = ?, source = ?, loaded = NULL WHERE id = 1",
                        arguments: [spec.name, spec.source]
                    )
                } else {
                    preparation.newCells = wanted.count
                    try db.execute(
                        sql: "INSERT INTO sweep (id, name, source, science_version, created_at) VALUES (1, ?, ?, ?, ?)",
                        arguments: [spec.name, spec.source, scienceVersion, Date().timeIntervalSince1970]
                    )
                }
                try insert(cells, db)
                if retryFailed {
                    try db.execute(
                        sql: "UPDATE cells SET state = 'queued', attempts = 0 WHERE state = 'failed' AND in_sweep = 1"
                    )
                }
                preparation.seeds = try seeds(db)
                return preparation
            }
        } catch let error as IsosweepError {
            throw error
        } catch {
            throw IsosweepError(.store, "cannot record the sweep in \(path)", remedy: Self.explain(error))
        }
    }

    /// Records cells with no sweep file of their own (diagnostic cells, given cells).
    public func prepare(name: String, cells: [CellWork]) throws(IsosweepError) -> [Scheduler.CellSeed] {
        do {
            return try database.write { db in
                try db.execute(
                    sql:
                        "INSERT OR IGNORE INTO sweep (id, name, source, science_version, created_at) VALUES (1, ?, '', ?, ?)",
                    arguments: [name, scienceVersion, Date().timeIntervalSince1970]
                )
                try insert(cells, db)
                return try seeds(db)
            }
        } catch let error as IsosweepError {
            throw error  // already says what is wrong (an unknown cell state)
        } catch {
            throw IsosweepError(.store, "cannot record the cells in \(path)", remedy: Self.explain(error))
        }
    }

    /// The rounds of `refine:` recorded so far, and the cells each added.
    public func refineRounds() throws(IsosweepError) -> [Int] {
        try read("refine rounds") { db in try Int.fetchAll(db, sql: "SELECT cells FROM refine_rounds ORDER BY round") }
    }

    /// Records refine round `round` with the cells it adds to the sweep (none: the refinement
    /// is over), and returns them as the scheduler takes them.
    public func addRefinedCells(round: Int, cells: [CellWork]) throws(IsosweepError) -> [Scheduler.CellSeed] {
        do {
            return try database.write { db in
                try db.execute(
                    sql: "INSERT INTO refine_rounds (round, cells, at) VALUES (?, ?, ?)",
                    arguments: [round, cells.count, Date().timeIntervalSince1970]
                )
                try insert(cells, db)
                try Self.record(db, "refine", "round \(round): \(cells.count) cells added")
                return cells.map {
                    Scheduler.CellSeed(
                        key: $0.key,
                        work: $0.json,
                        cost: $0.estimatedCost,
                        state: .queued,
                        attempts: 0,
                        lastError: nil
                    )
                }
            }
        } catch {
            throw IsosweepError(.store, "cannot record refine round \(round) in \(path)", remedy: Self.explain(error))
        }
    }

    static func record(_ db: Database, _ kind: String, _ detail: String) throws {
        try db.execute(
            sql: "INSERT INTO events (at, kind, detail) VALUES (?, ?, ?)",
            arguments: [Date().timeIntervalSince1970, kind, detail]
        )
    }

    private func insert(_ cells: [CellWork], _ db: Database) throws {
        // A cell that left the sweep (--force) and comes back is a member again, with its result.
        let statement = try db.cachedStatement(
            sql: """
                INSERT INTO cells (key, work, cost, state, attempts, in_sweep) VALUES (?, ?, ?, 'queued', 0, 1)
                ON CONFLICT(key) DO UPDATE SET in_sweep = 1
                """
        )
        // In key order: the table's B-tree grows at its end instead of at a million random places.
        // (Sorted by the key's first 16 hex digits as a number, which orders hex keys like the
        // strings do at a fraction of the cost; ties, practically never, by the whole key.)
        let keys = cells.map(\.key)
        let prefixes = keys.map { UInt64($0.prefix(16), radix: 16) ?? 0 }
        let order = keys.indices.sorted { (prefixes[$0], keys[$0]) < (prefixes[$1], keys[$1]) }
        for i in order {
            try statement.execute(arguments: [
                keys[i], String(decoding: cells[i].json, as: UTF8.self), cells[i].estimatedCost,
            ])
        }
    }

    private func seeds(_ db: Database) throws -> [Scheduler.CellSeed] {
        // A cursor, not fetchAll: rows are read one at a time instead of a million held at once.
        let rows = try Row.fetchCursor(
            db,
            sql: "SELECT key, work, cost, state, attempts, last_error, worker FROM cells WHERE in_sweep = 1"
        )
        var seeds: [Scheduler.CellSeed] = []
        while let row = try rows.next() { seeds.append(try SweepLoad.seed(row)) }
        return seeds
    }

    // MARK: - Recording progress

    /// Writes state changes, results and worker records in one transaction (a group commit).
    /// A result already present is never overwritten; each new one counts for its worker.
    public func apply(
        updates: [Scheduler.CellUpdate],
        commits: [Scheduler.Commit],
        workers: [Scheduler.WorkerRecord]
    ) throws(IsosweepError) {
        if updates.isEmpty && commits.isEmpty && workers.isEmpty { return }
        let now = Date().timeIntervalSince1970
        do {
            try database.write { db in
                let update = try db.cachedStatement(
                    sql:
                        "UPDATE cells SET state = ?, attempts = ?, lease = ?, worker = ?, last_error = ?, updated_at = ? WHERE key = ? AND state != 'done'"
                )
                for u in updates {
                    try update.run(
                        .text(u.state.rawValue),
                        .integer(Int64(u.attempts)),
                        u.lease.map { .integer(Int64(bitPattern: $0)) } ?? .null,
                        u.worker.map { .text($0) } ?? .null,
                        u.lastError.map { .text($0) } ?? .null,
                        .real(now),
                        .text(u.key)
                    )
                }
                let insert = try db.cachedStatement(
                    sql:
                        "INSERT INTO results (key, result, worker, attempt, committed_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT(key) DO NOTHING"
                )
                let done = try db.cachedStatement(
                    sql: "UPDATE cells SET state = 'done', lease = NULL, worker = ?, updated_at = ? WHERE key = ?"
                )
                let worker = try db.cachedStatement(
                    sql: """
                        INSERT INTO workers (id, host, build, slots, cells_done, alive, first_seen, last_seen) VALUES (?, ?, ?, ?, 0, ?, ?, ?)
                        ON CONFLICT(id) DO UPDATE SET host = excluded.host, build = excluded.build, slots = excluded.slots,
                            alive = excluded.alive, last_seen = excluded.last_seen
                        """
                )
                for w in workers {
                    try worker.execute(arguments: [w.id, w.host, w.build, w.slots, w.alive, now, now])
                }
                let counted = try db.cachedStatement(
                    sql: "UPDATE workers SET cells_done = cells_done + ?, last_seen = ? WHERE id = ?"
                )
                // New results per worker: one counter update per worker, not per result.
                var newResults: [String: Int] = [:]
                for c in commits {
                    try insert.run(
                        .text(c.key),
                        .utf8(c.payload),
                        .text(c.worker),
                        .integer(Int64(c.attempt)),
                        .real(now)
                    )
                    guard db.changesCount > 0 else { continue }  // already committed: counted once
                    try done.run(.text(c.worker), .real(now), .text(c.key))
                    newResults[c.worker, default: 0] += 1
                }
                for (id, count) in newResults.sorted(by: { $0.key < $1.key }) {
                    try counted.execute(arguments: [count, now, id])
                }
            }
        } catch {
            throw IsosweepError(.store, "cannot commit to \(path)", remedy: Self.explain(error))
        }
    }

    // MARK: - Reading

    /// A committed result with where it came from.
    public struct StoredResult: Sendable {
        public var key: String
        public var json: String
        public var worker: String
        public var attempt: Int
    }

    /// Every committed result.
    public func results() throws(IsosweepError) -> [StoredResult] {
        try read("results") { db in
            try Row.fetchAll(db, sql: "SELECT key, result, worker, attempt FROM results ORDER BY key").map {
                StoredResult(key: $0["key"], json: $0["result"], worker: $0["worker"], attempt: $0["attempt"])
            }
        }
    }

    /// The result of one cell, if it has one.
    public func result(key: String) throws(IsosweepError) -> StoredResult? {
        try read("a result") { db in
            try Row.fetchOne(
                db,
                sql: "SELECT key, result, worker, attempt FROM results WHERE key = ?",
                arguments: [key]
            ).map { StoredResult(key: $0["key"], json: $0["result"], worker: $0["worker"], attempt: $0["attempt"]) }
        }
    }

    /// Calls `body` with each committed result that carries metrics (diagnostic cells' results
    /// are empty and skipped by SQLite), in key order, reading one row at a time: a million
    /// results are never held at once.
    public func forEachResult(_ body: (StoredResult) throws -> Void) throws(IsosweepError) {
        try read("results") { db in
            let rows = try Row.fetchCursor(
                db,
                sql: "SELECT key, result, worker, attempt FROM results WHERE result != '' ORDER BY key"
            )
            while let row = try rows.next() {
                try body(StoredResult(key: row[0], json: row[1], worker: row[2], attempt: row[3]))
            }
        }
    }

    /// How many results are stored, and for how many distinct cells (without reading them).
    public func resultCount() throws(IsosweepError) -> (rows: Int, distinctKeys: Int) {
        try read("results") { db in
            let row = try Row.fetchOne(db, sql: "SELECT COUNT(*) AS n, COUNT(DISTINCT key) AS k FROM results")
            return (row?["n"] ?? 0, row?["k"] ?? 0)
        }
    }

    /// A cell's durable state.
    public struct StoredCell: Sendable {
        public var key: String
        public var work: String
        public var state: Scheduler.CellState
        public var attempts: Int
        public var worker: String?
        public var lastError: String?
        /// Whether it belongs to the sweep's current file (false: left out by a `--force` switch).
        public var inSweep: Bool
    }

    /// Every cell of the sweep's current file, or every cell ever recorded (`includingDropped`:
    /// also those a `--force` switch left out).
    public func cells(
        includingDropped: Bool = false,
        state: Scheduler.CellState? = nil
    ) throws(IsosweepError) -> [StoredCell] {
        var conditions = includingDropped ? [] : ["in_sweep = 1"]
        if let state { conditions.append("state = '\(state.rawValue)'") }
        let filter = conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ")
        return try read("cells") { db in
            try Row.fetchAll(
                db,
                sql: "SELECT key, work, state, attempts, worker, last_error, in_sweep FROM cells \(filter) ORDER BY key"
            ).map { try StoredCell(row: $0) }
        }
    }

    /// The sweep's cells by state, from the counts the triggers keep (`cellCountsSchema`),
    /// without reading the cells.
    public func stateCounts() throws(IsosweepError) -> [Scheduler.CellState: Int] {
        try read("cells") { db in
            var counts: [Scheduler.CellState: Int] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT state, n FROM cell_counts WHERE in_sweep = 1 AND n != 0") {
                counts[try CellState(stored: row["state"], of: "the cell counts"), default: 0] += row["n"] as Int
            }
            return counts
        }
    }

    /// The sweep's cells that FAILED, or that wait for another attempt after an error.
    public func troubledCells() throws(IsosweepError) -> [StoredCell] {
        try read("cells") { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT key, work, state, attempts, worker, last_error, in_sweep FROM cells
                    WHERE (last_error IS NOT NULL OR state = 'failed') AND in_sweep = 1 AND state != 'done'
                    ORDER BY key
                    """
            ).map { try StoredCell(row: $0) }
        }
    }

    /// The sweep's name, its file as the user wrote it, and its science version.
    public func sweep() throws(IsosweepError) -> (name: String, source: String, scienceVersion: Int)? {
        try read("the sweep") { db in
            try Row.fetchOne(db, sql: "SELECT name, source, science_version FROM sweep WHERE id = 1").map {
                ($0["name"], $0["source"], $0["science_version"])
            }
        }
    }

    /// Recorded events (spec changes, merge conflicts), oldest first.
    public func events() throws(IsosweepError) -> [(kind: String, detail: String)] {
        try read("events") { db in
            try Row.fetchAll(db, sql: "SELECT kind, detail FROM events ORDER BY id").map {
                ($0["kind"], $0["detail"])
            }
        }
    }

    /// A worker as the store knows it.
    public struct StoredWorker: Sendable {
        public var id: String
        public var host: String
        public var slots: Int
        /// Results of this worker committed.
        public var cellsDone: Int
        /// Registered when last recorded (false once it left, died, or the coordinator stopped).
        public var alive: Bool
        /// When it was last heard of (registration, a committed result, leaving).
        public var lastSeen: Date
    }

    /// Every worker seen.
    public func workers() throws(IsosweepError) -> [StoredWorker] {
        try read("workers") { db in
            try Row.fetchAll(
                db,
                sql: "SELECT id, host, slots, cells_done, alive, last_seen FROM workers ORDER BY first_seen, id"
            ).map {
                StoredWorker(
                    id: $0["id"],
                    host: $0["host"],
                    slots: $0["slots"],
                    cellsDone: $0["cells_done"],
                    alive: $0["alive"],
                    lastSeen: Date(timeIntervalSince1970: $0["last_seen"])
                )
            }
        }
    }

    /// Runs a read transaction; a failure names what was being read.
    func read<T>(_ what: String, _ body: (Database) throws -> T) throws(IsosweepError) -> T {
        do {
            return try database.read(body)
        } catch let error as IsosweepError {
            throw error  // already says what is wrong (an unknown cell state)
        } catch {
            throw IsosweepError(.store, "cannot read \(what) from \(path)", remedy: Self.explain(error))
        }
    }
}

extension CellState {
    /// A state as the store holds it. One this build does not know (a newer isosweep's, or a
    /// database edited by hand) is an error: taking it for another state would run, or skip, a
    /// cell wrongly.
    /// `what` names the row in the error ("cell 1a2b...", "the cell counts").
    init(stored text: String, of what: String) throws(IsosweepError) {
        guard let state = CellState(rawValue: text) else {
            throw IsosweepError(
                .store,
                "\(what) has the unknown state '\(text)'",
                remedy:
                    "states are \(CellState.allCases.map(\.rawValue).joined(separator: ", ")); read the database with the isosweep build that wrote it, or correct the row by hand"
            )
        }
        self = state
    }
}

extension ResultStore.StoredCell {
    /// A cell from a row of `SELECT key, work, state, attempts, worker, last_error, in_sweep`.
    init(row: Row) throws(IsosweepError) {
        let key: String = row["key"]
        self.init(
            key: key,
            work: row["work"],
            state: try CellState(stored: row["state"], of: "cell \(key.prefix(16))"),
            attempts: row["attempts"],
            worker: row["worker"],
            lastError: row["last_error"],
            inSweep: row["in_sweep"]
        )
    }
}
