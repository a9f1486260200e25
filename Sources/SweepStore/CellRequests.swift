public import Diagnostics
import Foundation
import GRDB
import SweepCore

/// Users steer a sweep through its database (`isosweep requeue`, `isosweep cancel`): the change is
/// made to the cells table at once, so that a coordinator started later loads it, and recorded in
/// `cell_requests`, which a running coordinator reads about once a second and applies to its
/// scheduler (which holds the live states).
extension ResultStore {
    /// What a request does.
    public enum CellRequest: String, Sendable {
        /// FAILED or cancelled cells back to the queue, attempts from 0.
        case requeue
        /// Queued or FAILED cells out of the sweep: skipped, shown as cancelled, can be requeued.
        case cancel
    }

    /// A request not yet applied by a coordinator.
    public struct PendingRequest: Sendable, Equatable {
        public var id: Int64
        public var key: String
        public var action: CellRequest
    }

    /// Schema v5: the requests table, and the counts of cancelled cells.
    static let cellRequestsSchema = """
        CREATE TABLE cell_requests (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            key TEXT NOT NULL,
            action TEXT NOT NULL CHECK (action IN ('requeue', 'cancel')),
            requested_at REAL NOT NULL,
            applied_at REAL
        );
        CREATE INDEX cell_requests_pending ON cell_requests(id) WHERE applied_at IS NULL;
        INSERT OR IGNORE INTO cell_counts (in_sweep, state, n)
            SELECT m.in_sweep, 'cancelled', 0 FROM (SELECT 0 AS in_sweep UNION SELECT 1) AS m;
        """

    /// Applies `action` to the sweep's cells named by `keys` (full keys or unique prefixes of at
    /// least 8 hex digits), or with `failed` to every FAILED cell (requeue), in one transaction.
    /// Returns the keys changed and, for each key left as it was, why.
    public func request(
        _ action: CellRequest,
        keys: [String],
        failed: Bool = false
    ) throws(IsosweepError) -> (changed: [String], refused: [(key: String, reason: String)]) {
        let now = Date().timeIntervalSince1970
        do {
            return try database.write { db in
                var targets: [(key: String, state: String)] = []
                var refused: [(key: String, reason: String)] = []
                if failed {
                    targets += try Row.fetchAll(
                        db,
                        sql: "SELECT key, state FROM cells WHERE state = 'failed' AND in_sweep = 1 ORDER BY key"
                    ).map { ($0["key"], $0["state"]) }
                }
                for key in keys {
                    let prefix = key.lowercased()
                    guard prefix.count >= 8, prefix.allSatisfy(\.isHexDigit) else {
                        refused.append((key, "not a cell key (64 hex digits, or a unique prefix of at least 8)"))
                        continue
                    }
                    let rows = try Row.fetchAll(
                        db,
                        sql: "SELECT key, state FROM cells WHERE key >= ? AND key < ? AND in_sweep = 1 LIMIT 2",
                        arguments: [prefix, prefix + "g"]
                    )
                    guard rows.count == 1 else {
                        refused.append(
                            (
                                key,
                                rows.isEmpty ? "no cell of this sweep has this key" : "the prefix names several cells"
                            )
                        )
                        continue
                    }
                    targets.append((rows[0]["key"], rows[0]["state"]))
                }
                var changed: [String] = []
                var seen = Set<String>()
                let insert = try db.makeStatement(
                    sql: "INSERT INTO cell_requests (key, action, requested_at) VALUES (?, ?, ?)"
                )
                for target in targets where seen.insert(target.key).inserted {
                    switch (action, target.state) {
                    case (.requeue, "failed"), (.requeue, "cancelled"):
                        try db.execute(
                            sql:
                                "UPDATE cells SET state = 'queued', attempts = 0, last_error = NULL, lease = NULL, worker = NULL, updated_at = ? WHERE key = ?",
                            arguments: [now, target.key]
                        )
                    case (.cancel, "queued"), (.cancel, "failed"):
                        try db.execute(
                            sql: "UPDATE cells SET state = 'cancelled', updated_at = ? WHERE key = ?",
                            arguments: [now, target.key]
                        )
                    case (.requeue, let state):
                        refused.append((target.key, "is \(state): only FAILED or cancelled cells are requeued"))
                        continue
                    case (.cancel, let state):
                        refused.append(
                            (
                                target.key,
                                state == "leased"
                                    ? "is running: it finishes first"
                                    : "is \(state): only queued or FAILED cells are cancelled"
                            )
                        )
                        continue
                    }
                    try insert.execute(arguments: [target.key, action.rawValue, now])
                    changed.append(target.key)
                }
                return (changed, refused)
            }
        } catch let error as IsosweepError {
            throw error
        } catch {
            throw IsosweepError(.store, "cannot \(action.rawValue) cells in \(path)", remedy: Self.explain(error))
        }
    }

    /// Requests no coordinator has applied yet, oldest first.
    public func pendingRequests(limit: Int = 100_000) throws(IsosweepError) -> [PendingRequest] {
        try read("cell requests") { db in
            try Row.fetchAll(
                db,
                sql: "SELECT id, key, action FROM cell_requests WHERE applied_at IS NULL ORDER BY id LIMIT ?",
                arguments: [limit]
            ).compactMap { row in
                CellRequest(rawValue: row["action"]).map { PendingRequest(id: row["id"], key: row["key"], action: $0) }
            }
        }
    }

    /// Marks requests applied (nil: every pending one, as a coordinator does when it starts: the
    /// cells table it loads already says what they asked for).
    public func markApplied(_ ids: [Int64]? = nil) throws(IsosweepError) {
        let now = Date().timeIntervalSince1970
        do {
            try database.write { db in
                if let ids {
                    let statement = try db.makeStatement(sql: "UPDATE cell_requests SET applied_at = ? WHERE id = ?")
                    for id in ids { try statement.execute(arguments: [now, id]) }
                } else {
                    try db.execute(
                        sql: "UPDATE cell_requests SET applied_at = ? WHERE applied_at IS NULL",
                        arguments: [now]
                    )
                }
            }
        } catch {
            throw IsosweepError(.store, "cannot record applied requests in \(path)", remedy: Self.explain(error))
        }
    }

    /// The work of each of `keys` (to requeue a cell that a coordinator loaded as FAILED).
    public func works(of keys: [String]) throws(IsosweepError) -> [String: [UInt8]] {
        try read("cell work") { db in
            var works: [String: [UInt8]] = [:]
            let statement = try db.makeStatement(sql: "SELECT work FROM cells WHERE key = ?")
            for key in keys {
                if let work = try String.fetchOne(statement, arguments: [key]) { works[key] = Array(work.utf8) }
            }
            return works
        }
    }
}
