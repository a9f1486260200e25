import Diagnostics
import Foundation
import SweepCore
import SweepStore
import Testing
import TrainingCore

/// `requeue` and `cancel` through the database: the cells table changes at once, and the
/// requests wait for a coordinator.
@Suite struct CellRequestTests {
    @Test func requestsChangeTheCellsAndWaitForACoordinator() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("isosweep-req-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let store = try ResultStore(path: dir.appendingPathComponent("r.db").path)
        let cells = (0..<4).map { CellWork.train(CellParameters(n: 16, d: 2, width: 2 + $0)) }
        _ = try store.prepare(name: "r", cells: cells)
        let keys = cells.map(\.key)
        try store.apply(
            updates: [
                Scheduler.CellUpdate(key: keys[0], state: .failed, attempts: 3, lease: nil, worker: "w", lastError: "x")
            ],
            commits: [Scheduler.Commit(key: keys[1], payload: Array("{}".utf8), worker: "w", attempt: 1, identity: [])],
            workers: []
        )
        // Cancel: the queued cell by a prefix; the done one is refused; nonsense is refused.
        var outcome = try store.request(.cancel, keys: [String(keys[2].prefix(10)), keys[1], "zz"])
        #expect(outcome.changed == [keys[2]])
        #expect(outcome.refused.map(\.reason).contains { $0.contains("is done") })
        #expect(outcome.refused.map(\.reason).contains { $0.contains("not a cell key") })
        #expect(try store.stateCounts()[.cancelled] == 1)
        // Requeue --failed: the FAILED cell, attempts and error cleared.
        outcome = try store.request(.requeue, keys: [], failed: true)
        #expect(outcome.changed == [keys[0]])
        let requeued = try #require(try store.cells().first { $0.key == keys[0] })
        #expect(requeued.state == .queued && requeued.attempts == 0 && requeued.lastError == nil)
        // Requeue the cancelled one by its key.
        #expect(try store.request(.requeue, keys: [keys[2]]).changed == [keys[2]])
        // Three requests wait, in order, until a coordinator marks them applied.
        let pending = try store.pendingRequests()
        #expect(
            pending.map(\.action) == [.cancel, .requeue, .requeue] && pending.map(\.key) == [keys[2], keys[0], keys[2]]
        )
        #expect(try store.works(of: [keys[0]])[keys[0]] == Array(cells[0].json))
        try store.markApplied(pending.prefix(1).map(\.id))
        #expect(try store.pendingRequests().count == 2)
        try store.markApplied()
        #expect(try store.pendingRequests().isEmpty)
        #expect(try store.stateCounts()[.queued] == 3 && store.stateCounts()[.cancelled, default: 0] == 0)
    }
}
