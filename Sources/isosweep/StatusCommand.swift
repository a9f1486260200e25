import ArgumentParser
import CommandSupport
import Coordinator
import Foundation
import SweepAnalysis
import SweepCore
import SweepStore
import Synchronization

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// `isosweep status`: what a sweep database says.
struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Counts by state, workers seen, and failures with their errors."
    )

    @Option(help: "A sweep database.") var db: String?
    @Option(help: "A running coordinator's status endpoint, e.g. http://127.0.0.1:8080.") var connect: String?

    func validate() throws {
        guard (db == nil) != (connect == nil) else {
            throw ValidationError("give either --db DATABASE or --connect http://HOST:PORT")
        }
    }

    /// Most results `status --db` decodes to count the unreadable ones.
    static let decodeLimit = 10_000

    func run() throws {
        if let connect { return try live(connect) }
        guard let db else { return }
        let store = try ResultStore(path: db, readOnly: true)
        let counts = try store.stateCounts()
        let name = try store.sweep()?.name ?? "?"
        print("sweep \(name): \(counts.values.reduce(0, +)) cells")
        for state in Scheduler.CellState.allCases { print("  \(state.rawValue): \(counts[state] ?? 0)") }
        // Decoding every result to find the unreadable ones is the table's job on big databases.
        let results = counts[.done] ?? 0  // a done cell has its result (counting them would read them)
        var undecodableWarning: String?
        if results <= Self.decodeLimit {
            let table = try SweepTable(store: store)
            if !table.undecodable.isEmpty { print("  undecodable results: \(table.undecodable.count)") }
            undecodableWarning = table.undecodableWarning
        } else {
            print("  undecodable results: not checked for \(results) results (`isosweep table` reports them)")
        }
        let workers = try store.workers()
        print("workers seen: \(workers.count)")
        let now = Date()
        for worker in workers {
            let seen = Units.formatDuration(max(0, now.timeIntervalSince(worker.lastSeen)))
            let state = worker.alive ? "registered, last seen \(seen) ago" : "gone, last seen \(seen) ago"
            print("  \(worker.id) on \(worker.host): \(worker.slots) slots, \(worker.cellsDone) cells done, \(state)")
        }
        let troubled = try store.troubledCells()
        let failures = troubled.filter { $0.state == .failed }
        print("failures: \(failures.count)")
        for cell in failures {
            print("  \(cell.key.prefix(12)) after \(cell.attempts) attempts: \(cell.lastError ?? "no error recorded")")
        }
        let retrying = troubled.filter { $0.state != .failed }
        for cell in retrying {
            print("  retrying \(cell.key.prefix(12)) (\(cell.attempts) attempts): \(cell.lastError!)")
        }
        if let warning = undecodableWarning { Output.warning(warning) }
        if !failures.isEmpty { throw ExitCode.failure }
    }

    /// Reads /status from a running coordinator.
    func live(_ base: String) throws {
        guard let url = URL(string: base.hasSuffix("/") ? base + "status" : base + "/status"),
            url.scheme?.hasPrefix("http") == true
        else {
            throw ValidationError("--connect takes an http URL such as http://127.0.0.1:8080 (got \(base))")
        }
        let (data, code, failure) = httpGet(url, timeout: 10)
        guard let data, code == 200 else {
            Output.error(
                "cannot read \(url): \(failure ?? "HTTP status \(code.map(String.init) ?? "none")"); is the coordinator running with --status-port?"
            )
            throw ExitCode.failure
        }
        let status = try JSONDecoder().decode(StatusSnapshot.self, from: data)
        print("sweep \(status.sweep): \(status.total) cells\(status.finished ? " (finished)" : "")")
        for state in Scheduler.CellState.allCases {
            print("  \(state.rawValue): \(status.counts[state.rawValue] ?? 0)")
        }
        print(
            String(
                format: "rate: %.2f cells/s, ETA: %@",
                status.cellsPerSecond,
                status.etaSeconds.map { String(format: "%.0f s", $0) } ?? "-"
            )
        )
        print("workers alive: \(status.workersTotal)")
        if !status.workerStates.isEmpty {
            print(
                "  "
                    + status.workerStates.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(
                        separator: ", "
                    )
            )
        }
        for worker in status.workers {
            print(
                "  \(worker.id) on \(worker.host): \(worker.slots) slots, \(worker.leased) running, \(worker.done) done, cores \(worker.threadsInUse)/\(worker.cores), memory \(Units.formatSize(worker.memoryInUse))/\(worker.memoryBytes == .max ? "unstated" : Units.formatSize(worker.memoryBytes)), BLAS \(worker.blasCore), last heartbeat \(worker.silentMilliseconds) ms ago"
            )
        }
        if status.workersTotal > status.workers.count {
            print("  ... and \(status.workersTotal - status.workers.count) more (the live page pages through them)")
        }
        print("running cells: \(status.running.count)")
        for cell in status.running {
            let shape = [("n", cell.n), ("d", cell.d), ("width", cell.width), ("seed", cell.seed)].compactMap {
                name,
                value in
                value.map { "\(name)=\($0)" }
            }
            let step = cell.step.map { " step \($0)/\(cell.maxSteps ?? 0)" } ?? ""
            let mse = cell.trainMSE.map { String(format: " train_mse %.3g", $0) } ?? ""
            let resumed = cell.resumedFromStep.map { ", resumed from step \($0)" } ?? ""
            print(
                "  \(cell.key.prefix(12)) on \(cell.worker) (\(shape.joined(separator: " ")), \(cell.threads) threads): \(cell.phase)\(step)\(mse), \(String(format: "%.1f", cell.seconds)) s\(resumed)"
            )
        }
        print("waiting for a worker that can hold them: \(status.waitingCount)")
        for cell in status.waiting { print("  \(cell.key.prefix(12)): \(cell.reason)") }
        print("failures: \(status.failures.count)")
        for failure in status.failures {
            print("  \(failure.key.prefix(12)) after \(failure.attempts) attempts: \(failure.error)")
        }
    }
}
