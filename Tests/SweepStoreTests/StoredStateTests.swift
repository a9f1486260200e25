import Diagnostics
import Foundation
import GRDB
import SweepCore
import SweepStore
import Testing
import TrainingCore

/// What the store reads back is what it holds, or an error: an unknown cell state is never taken
/// for another, and a result that cannot be decoded is counted, never dropped in silence.
@Suite struct StoredStateTests {
    func store() throws -> (ResultStore, [CellWork], String, SweepSpec) {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("isosweep-state-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let path = directory.appendingPathComponent("s.db").path
        let spec = try SweepSpec.parse(
            "name: s\nparameters:\n  n: {value: 16}\n  d: {value: 3}\n  width: {values: [2, 4]}\n  max_steps: {value: 20}\n",
            file: "s.yaml"
        )
        let cells = try spec.cells()
        let store = try ResultStore(path: path)
        _ = try store.prepare(spec: spec, cells: cells)
        return (store, cells, path, spec)
    }

    @Test func anUnknownCellStateIsAnErrorNotQueued() throws {
        let (store, cells, path, spec) = try store()
        #expect(try store.cells().allSatisfy { $0.state == .queued })
        try DatabaseQueue(path: path).write { db in
            try db.execute(sql: "UPDATE cells SET state = 'paused' WHERE key = ?", arguments: [cells[0].key])
        }
        do {
            _ = try store.cells()
            Issue.record("a cell in the unknown state 'paused' was read")
        } catch {
            #expect(error.code == .store && error.message.contains("unknown state 'paused'"), "\(error)")
            #expect(error.remedy?.contains("queued, leased, done, failed, cancelled") == true)
        }
        // The coordinator's reload of the same sweep refuses it too, before scheduling anything.
        #expect(throws: IsosweepError.self) { _ = try ResultStore(path: path).prepare(spec: spec, cells: cells) }
    }

    @Test func undecodableResultsAreCountedByEveryReader() throws {
        let (store, cells, _, _) = try store()
        let good = try Cell.run(cells[0].parameters!).result
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let commits = [
            Scheduler.Commit(
                key: cells[0].key,
                payload: Array(try encoder.encode(good)),
                worker: "w",
                attempt: 1,
                identity: []
            ),
            Scheduler.Commit(
                key: cells[1].key,
                payload: Array(#"{"not": "metrics"}"#.utf8),
                worker: "w",
                attempt: 1,
                identity: []
            ),
        ]
        try store.apply(updates: [], commits: commits, workers: [])
        let decoded = try store.cellResults()
        #expect(decoded.results.map(\.key) == [cells[0].key])
        #expect(decoded.results.first?.result == good)
        #expect(decoded.undecodable == [cells[1].key])
        #expect(decoded.warning?.contains("1 committed results could not be decoded") == true)
        #expect(decoded.warning?.contains(String(cells[1].key.prefix(12))) == true)
    }
}
