import Foundation
public import GRDB
import TrainingCore

/// The durable record of a sweep in SQLite (WAL, synchronous=FULL): its spec, every cell with
/// its state, attempts, lease, worker and last error, and every result. One thread uses a store.
public final class ResultStore {
    /// The database.
    public let database: DatabaseQueue
    /// Its path.
    public let path: String

    /// Opens (creating if needed) the store at `path`.
    public init(path: String, readOnly: Bool = false) throws(StoreError) {
        self.path = path
        if readOnly && !FileManager.default.fileExists(atPath: path) {
            throw StoreError("no database at \(path): check the path (the coordinator creates it with --db)")
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
            database = try DatabaseQueue(path: path, configuration: configuration)
            if !readOnly { try Self.migrator.migrate(database) }
            try database.read { db in
                guard try db.tableExists("cells") else {
                    throw StoreError("\(path) is not an isosweep database (no cells table)")
                }
            }
        } catch let error as StoreError {
            throw error
        } catch {
            throw StoreError("cannot open the database \(path): \(Self.explain(error))")
        }
    }

    /// A database error in words a user can act on.
    static func explain(_ error: any Error) -> String {
        guard let error = error as? DatabaseError else { return "\(error)" }
        switch error.resultCode {
        case .SQLITE_READONLY:
            return "it is read-only (\(error.message ?? "")): check the file system and the file's permissions, or copy it somewhere writable"
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

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.execute(sql: """
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
                """)
        }
        return migrator
    }

    // MARK: - Setting up a sweep

    /// Records the sweep and its cells (keeping every cell already there, finished or not) and
    /// returns the spec's cells for the scheduler. A database belongs to one sweep: another spec
    /// is refused unless `force`, which records the change and keeps every earlier result (the
    /// new spec's cells that were already done stay done). Cells FAILED in an earlier run are
    /// retried when `retryFailed`.
    public func prepare(spec: SweepSpec, cells: [CellWork], retryFailed: Bool = false, force: Bool = false) throws(StoreError) -> [Scheduler.CellSeed] {
        let specJSON = String(decoding: (try? Self.encoder.encode(spec)) ?? Data(), as: UTF8.self)
        do {
            return try database.write { db in
                if let row = try Row.fetchOne(db, sql: "SELECT name, spec_hash, science_version FROM sweep WHERE id = 1") {
                    let hash: String = row["spec_hash"]
                    let version: Int = row["science_version"]
                    guard version == scienceVersion else {
                        throw StoreError("\(path) holds results of science version \(version), this isosweep computes version \(scienceVersion): use a new --db")
                    }
                    if hash != spec.hash {
                        let name: String = row["name"]
                        guard force else {
                            throw StoreError("\(path) belongs to sweep '\(name)' with another spec: use a new --db for this sweep file, or --force to switch this database to it (earlier results are kept)")
                        }
                        try db.execute(
                            sql: "UPDATE sweep SET name = ?, spec = ?, spec_hash = ? WHERE id = 1",
                            arguments: [spec.name, specJSON, spec.hash]
                        )
                        try db.execute(
                            sql: "INSERT INTO events (at, kind, detail) VALUES (?, 'spec_changed', ?)",
                            arguments: [Date().timeIntervalSince1970, "--force: sweep '\(name)' (spec \(hash.prefix(12))) replaced by '\(spec.name)' (spec \(spec.hash.prefix(12)))"]
                        )
                    }
                } else {
                    try db.execute(
                        sql: "INSERT INTO sweep (id, name, spec, spec_hash, science_version, created_at) VALUES (1, ?, ?, ?, ?, ?)",
                        arguments: [spec.name, specJSON, spec.hash, scienceVersion, Date().timeIntervalSince1970]
                    )
                }
                try insert(cells, db)
                if retryFailed {
                    try db.execute(sql: "UPDATE cells SET state = 'queued', attempts = 0 WHERE state = 'failed'")
                }
                let wanted = Set(cells.map(\.key))
                return try seeds(db).filter { wanted.contains($0.key) }
            }
        } catch let error as StoreError {
            throw error
        } catch {
            throw StoreError("cannot record the sweep in \(path): \(Self.explain(error))")
        }
    }

    /// Records cells with no spec of their own (the dispatch benchmark).
    public func prepare(name: String, cells: [CellWork]) throws(StoreError) -> [Scheduler.CellSeed] {
        do {
            return try database.write { db in
                try db.execute(
                    sql: "INSERT OR IGNORE INTO sweep (id, name, spec, spec_hash, science_version, created_at) VALUES (1, ?, '{}', '', ?, ?)",
                    arguments: [name, scienceVersion, Date().timeIntervalSince1970]
                )
                try insert(cells, db)
                return try seeds(db)
            }
        } catch {
            throw StoreError("cannot record the cells in \(path): \(error)")
        }
    }

    private func insert(_ cells: [CellWork], _ db: Database) throws {
        let statement = try db.cachedStatement(sql: "INSERT OR IGNORE INTO cells (key, work, cost, state, attempts) VALUES (?, ?, ?, 'queued', 0)")
        for cell in cells {
            let work = String(decoding: try Self.encoder.encode(cell), as: UTF8.self)
            try statement.execute(arguments: [cell.key, work, cell.estimatedCost])
        }
    }

    private func seeds(_ db: Database) throws -> [Scheduler.CellSeed] {
        try Row.fetchAll(db, sql: "SELECT key, work, cost, state, attempts, last_error, worker FROM cells").map { row in
            let state: String = row["state"]
            let work: String = row["work"]
            return Scheduler.CellSeed(
                key: row["key"], work: Array(work.utf8), cost: row["cost"],
                state: Scheduler.CellState(rawValue: state) ?? .queued, attempts: row["attempts"], lastError: row["last_error"],
                leasedTo: row["worker"]
            )
        }
    }

    // MARK: - Recording progress

    /// Writes state changes, results and worker records in one transaction (a group commit).
    /// A result already present is never overwritten.
    public func apply(updates: [Scheduler.CellUpdate], commits: [Scheduler.Commit], workers: [Scheduler.WorkerRecord]) throws(StoreError) {
        if updates.isEmpty && commits.isEmpty && workers.isEmpty { return }
        let now = Date().timeIntervalSince1970
        do {
            try database.write { db in
                let update = try db.cachedStatement(
                    sql: "UPDATE cells SET state = ?, attempts = ?, lease = ?, worker = ?, last_error = ?, updated_at = ? WHERE key = ? AND state != 'done'"
                )
                for u in updates {
                    try update.execute(arguments: [u.state.rawValue, u.attempts, u.lease.map { Int64(bitPattern: $0) }, u.worker, u.lastError, now, u.key])
                }
                let insert = try db.cachedStatement(
                    sql: "INSERT INTO results (key, result, worker, attempt, committed_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT(key) DO NOTHING"
                )
                let done = try db.cachedStatement(sql: "UPDATE cells SET state = 'done', lease = NULL, worker = ?, updated_at = ? WHERE key = ?")
                for c in commits {
                    try insert.execute(arguments: [c.key, String(decoding: c.payload, as: UTF8.self), c.worker, c.attempt, now])
                    try done.execute(arguments: [c.worker, now, c.key])
                }
                let worker = try db.cachedStatement(sql: """
                    INSERT INTO workers (id, host, build, slots, cells_done, alive, first_seen, last_seen) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                    ON CONFLICT(id) DO UPDATE SET host = excluded.host, build = excluded.build, slots = excluded.slots,
                        cells_done = max(cells_done, excluded.cells_done), alive = excluded.alive, last_seen = excluded.last_seen
                    """)
                for w in workers {
                    try worker.execute(arguments: [w.id, w.host, w.build, w.slots, w.cellsDone, w.alive, now, now])
                }
            }
        } catch {
            throw StoreError("cannot commit to \(path): \(Self.explain(error))")
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
    public func results() throws(StoreError) -> [StoredResult] {
        do {
            return try database.read { db in
                try Row.fetchAll(db, sql: "SELECT key, result, worker, attempt FROM results ORDER BY key").map {
                    StoredResult(key: $0["key"], json: $0["result"], worker: $0["worker"], attempt: $0["attempt"])
                }
            }
        } catch {
            throw StoreError("cannot read results from \(path): \(error)")
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
    }

    /// Every cell.
    public func cells() throws(StoreError) -> [StoredCell] {
        do {
            return try database.read { db in
                try Row.fetchAll(db, sql: "SELECT key, work, state, attempts, worker, last_error FROM cells ORDER BY key").map {
                    let state: String = $0["state"]
                    return StoredCell(
                        key: $0["key"], work: $0["work"], state: Scheduler.CellState(rawValue: state) ?? .queued,
                        attempts: $0["attempts"], worker: $0["worker"], lastError: $0["last_error"]
                    )
                }
            }
        } catch {
            throw StoreError("cannot read cells from \(path): \(error)")
        }
    }

    /// The sweep's name, spec JSON and science version.
    public func sweep() throws(StoreError) -> (name: String, spec: String, specHash: String, scienceVersion: Int)? {
        do {
            return try database.read { db in
                try Row.fetchOne(db, sql: "SELECT name, spec, spec_hash, science_version FROM sweep WHERE id = 1").map {
                    ($0["name"], $0["spec"], $0["spec_hash"], $0["science_version"])
                }
            }
        } catch {
            throw StoreError("cannot read the sweep from \(path): \(error)")
        }
    }

    /// Recorded events (spec changes, merge conflicts), oldest first.
    public func events() throws(StoreError) -> [(kind: String, detail: String)] {
        do {
            return try database.read { db in
                try Row.fetchAll(db, sql: "SELECT kind, detail FROM events ORDER BY id").map { ($0["kind"], $0["detail"]) }
            }
        } catch {
            throw StoreError("cannot read events from \(path): \(error)")
        }
    }

    /// Every worker seen.
    public func workers() throws(StoreError) -> [Scheduler.WorkerRecord] {
        do {
            return try database.read { db in
                try Row.fetchAll(db, sql: "SELECT id, host, build, slots, cells_done, alive FROM workers ORDER BY first_seen, id").map {
                    Scheduler.WorkerRecord(id: $0["id"], host: $0["host"], build: $0["build"], slots: $0["slots"], cellsDone: $0["cells_done"], alive: $0["alive"])
                }
            }
        } catch {
            throw StoreError("cannot read workers from \(path): \(error)")
        }
    }

    static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }()
}

/// The store cannot be opened, read or written; the message says why and what to do.
public struct StoreError: Error, Sendable, Equatable, CustomStringConvertible {
    public var message: String

    public init(_ message: String) { self.message = message }

    public var description: String { message }
}
