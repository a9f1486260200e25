import ArgumentParser
import CommandSupport
import Foundation
import SweepAnalysis
import SweepCore
import SweepStore
import TrainingCore

/// `isosweep cells`: the sweep's cells with their state, parameters, attempts, worker, error and
/// checkpoint (the step an unfinished cell's stored checkpoint is at, or the step a finished
/// cell's last attempt resumed from).
struct Cells: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract:
            "List a sweep's cells: state, parameters, attempts, worker, last error and checkpoint (the step a cell resumes or resumed from)."
    )

    @Argument(help: "A sweep database.") var db: String
    @Option(help: "Only cells in this state: queued, running, done, failed or cancelled.") var state: String?
    @Option(help: "table or json.") var format: String = "table"

    func validate() throws {
        guard ["table", "json"].contains(format) else { throw ValidationError("--format takes table or json") }
        if let state, Self.state(named: state) == nil {
            throw ValidationError("--state takes queued, running, done, failed or cancelled (got \(state))")
        }
    }

    /// "running" is how people say leased.
    static func state(named name: String) -> Scheduler.CellState? {
        name == "running" ? .leased : Scheduler.CellState(rawValue: name)
    }

    struct Row: Encodable {
        var key: String
        var state: String
        var attempts: Int
        var worker: String?
        var lastError: String?
        var parameters: [String: String]
        /// The step of the cell's stored checkpoint (unfinished cells).
        var checkpointStep: Int?
        /// The step its result's attempt resumed from (finished cells).
        var resumedFromStep: Int?

        enum CodingKeys: String, CodingKey {
            case key, state, attempts, worker, parameters
            case lastError = "last_error"
            case checkpointStep = "checkpoint_step"
            case resumedFromStep = "resumed_from_step"
        }

        /// The table's checkpoint column.
        var checkpoint: String {
            if let step = resumedFromStep { return "resumed from \(step)" }
            if let step = checkpointStep { return "at step \(step)" }
            return ""
        }
    }

    /// The finished cells that resumed from a checkpoint, and the step, read from their results
    /// one row at a time.
    static func resumedSteps(_ store: ResultStore) throws -> [String: Int] {
        var steps: [String: Int] = [:]
        let decoder = JSONDecoder()
        try store.forEachResult { stored in
            // Most results never resumed: only those that name the field are decoded.
            guard stored.json.contains("resumed_from_step"),
                let result = try? decoder.decode(CellResult.self, from: Data(stored.json.utf8)),
                let step = result.metrics.resumedFromStep
            else { return }
            steps[stored.key] = step
        }
        return steps
    }

    func run() throws {
        let store = try ResultStore(path: db, readOnly: true)
        let cells = try store.cells(state: state.flatMap(Self.state(named:)))
        let checkpoints = CheckpointFolder.steps(database: db)
        let resumed = try Self.resumedSteps(store)
        let rows = cells.map { cell -> Row in
            var parameters: [String: String] = [:]
            if let work = CellWork(json: Array(cell.work.utf8)), let p = work.parameters {
                for parameter in CellParameters.catalogue {
                    if let value = parameter.value(p) { parameters[parameter.name] = value.description }
                }
            }
            return Row(
                key: cell.key,
                state: cell.state == .leased ? "running" : cell.state.rawValue,
                attempts: cell.attempts,
                worker: cell.worker,
                lastError: cell.lastError,
                parameters: parameters,
                checkpointStep: cell.state == .done ? nil : checkpoints[cell.key].map { Int($0) },
                resumedFromStep: cell.state == .done ? resumed[cell.key] : nil
            )
        }
        if format == "json" {
            try Output.json(rows)
            return
        }
        // The parameters that vary among the listed cells, then the rest of the row.
        let varying = CellParameters.catalogue.map(\.name).filter { name in
            Set(rows.map { $0.parameters[name] ?? "-" }).count > 1 || ["n", "d", "width", "seed"].contains(name)
        }
        let header = ["key", "state"] + varying + ["attempts", "worker", "checkpoint", "last error"]
        let table = rows.map { row in
            [String(row.key.prefix(12)), row.state] + varying.map { row.parameters[$0] ?? "-" }
                + [
                    "\(row.attempts)", row.worker ?? "", row.checkpoint,
                    row.lastError.map { String($0.prefix(120)) } ?? "",
                ]
        }
        print(TextTable.markdown(header: header, rows: table))
        print("\(rows.count) cells")
    }
}

/// `isosweep requeue`: FAILED or cancelled cells back to the queue.
struct Requeue: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract:
            "Put FAILED or cancelled cells back in the queue, attempts from 0. A running coordinator picks them up within a second or two; otherwise the next run does."
    )

    @Argument(help: "A sweep database.") var db: String
    @Flag(help: "Every FAILED cell.") var failed = false
    @Option(
        name: .customLong("key"),
        parsing: .upToNextOption,
        help: "Cell keys (or unique prefixes of 8+ hex digits)."
    )
    var keys: [String] = []

    func validate() throws {
        guard failed || !keys.isEmpty else { throw ValidationError("say which cells: --failed, or --key K ...") }
    }

    func run() throws {
        try CellRequestCommand.apply(.requeue, db: db, keys: keys, failed: failed)
    }
}

/// `isosweep cancel`: queued or FAILED cells out of the sweep.
struct Cancel: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract:
            "Mark queued or FAILED cells cancelled: they are skipped and shown as such, and `requeue` puts them back."
    )

    @Argument(help: "A sweep database.") var db: String
    @Option(
        name: .customLong("key"),
        parsing: .upToNextOption,
        help: "Cell keys (or unique prefixes of 8+ hex digits)."
    )
    var keys: [String] = []

    func validate() throws {
        guard !keys.isEmpty else { throw ValidationError("say which cells: --key K ...") }
    }

    func run() throws {
        try CellRequestCommand.apply(.cancel, db: db, keys: keys, failed: false)
    }
}

enum CellRequestCommand {
    static func apply(_ action: ResultStore.CellRequest, db: String, keys: [String], failed: Bool) throws {
        guard FileManager.default.fileExists(atPath: db) else {
            throw ValidationError("no database at \(db): give the sweep's --db")
        }
        let store = try ResultStore(path: db)
        let (changed, refused) = try store.request(action, keys: keys, failed: failed)
        let verb = action == .requeue ? "requeued" : "cancelled"
        print("\(verb) \(changed.count) cells")
        for (key, reason) in refused { print("  \(key.prefix(12)): \(reason)") }
        if changed.isEmpty && !refused.isEmpty { throw ExitCode(1) }
    }
}
