import ArgumentParser
import SweepKit

/// `isosweep status`: what a sweep database says.
struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Counts by state, workers seen, and failures with their errors.")

    @Option(help: "A sweep database.") var db: String

    func run() throws {
        do {
            let store = try ResultStore(path: db, readOnly: true)
            let cells = try store.cells()
            let name = try store.sweep()?.name ?? "?"
            var counts: [Scheduler.CellState: Int] = [:]
            for cell in cells { counts[cell.state, default: 0] += 1 }
            print("sweep \(name): \(cells.count) cells")
            for state in Scheduler.CellState.allCases { print("  \(state.rawValue): \(counts[state] ?? 0)") }
            let workers = try store.workers()
            print("workers seen: \(workers.count)")
            for worker in workers {
                print("  \(worker.id) on \(worker.host): \(worker.slots) slots, \(worker.cellsDone) cells done, \(worker.alive ? "alive" : "gone")")
            }
            let failures = cells.filter { $0.state == .failed }
            print("failures: \(failures.count)")
            for cell in failures {
                print("  \(cell.key.prefix(12)) after \(cell.attempts) attempts: \(cell.lastError ?? "no error recorded")")
            }
            let retrying = cells.filter { $0.state != .failed && $0.state != .done && $0.lastError != nil }
            for cell in retrying { print("  retrying \(cell.key.prefix(12)) (\(cell.attempts) attempts): \(cell.lastError!)") }
            if !failures.isEmpty { throw ExitCode.failure }
        } catch let error as StoreError {
            Output.error(error.message)
            throw ExitCode.failure
        }
    }
}
