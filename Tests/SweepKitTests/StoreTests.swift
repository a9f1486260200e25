import Foundation
import SweepKit
import Testing
import TrainingCore

/// The SQLite store and merges, on real files.
@Suite struct StoreTests {
    func temporaryPath(_ name: String) throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("isosweep-store-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir.appendingPathComponent(name).path
    }

    func spec(seeds: String = "[0, 1]") throws -> SweepSpec {
        try SweepSpec.parse("name: s\nparameters:\n  n: {value: 16}\n  d: {value: 3}\n  width: {values: [2, 4]}\n  seed: {values: \(seeds)}\n  max_steps: {value: 20}\n", file: "s.yaml")
    }

    /// Trains `work` for real and returns its result as the worker would send it.
    func commit(_ work: CellWork, attempt: Int = 1, mutate: ((inout CellResult) -> Void)? = nil) throws -> Scheduler.Commit {
        var result = try Cell.run(work.parameters!).result
        mutate?(&result)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return Scheduler.Commit(key: work.key, payload: Array(try encoder.encode(result)), worker: "w", attempt: attempt, identity: [1])
    }

    @Test func resumeKeepsResultsAndRefusesAnotherSpec() throws {
        let path = try temporaryPath("a.db")
        let spec = try spec()
        let cells = try spec.cells()
        var store = try ResultStore(path: path)
        var seeds = try store.prepare(spec: spec, cells: cells)
        #expect(seeds.count == 4 && seeds.allSatisfy { $0.state == .queued })
        try store.apply(updates: [], commits: [try commit(cells[0])], workers: [])
        store = try ResultStore(path: path)
        seeds = try store.prepare(spec: spec, cells: cells)
        #expect(seeds.first { $0.key == cells[0].key }?.state == .done)
        #expect(try store.results().count == 1)
        let other = try self.spec(seeds: "[5]")
        do {
            _ = try store.prepare(spec: other, cells: [])
            Issue.record("another spec was accepted")
        } catch {
            #expect(error.message.contains("belongs to sweep 's'"))
        }
    }

    @Test func aCommittedResultIsNeverOverwritten() throws {
        let path = try temporaryPath("b.db")
        let spec = try spec()
        let cells = try spec.cells()
        let store = try ResultStore(path: path)
        _ = try store.prepare(spec: spec, cells: cells)
        let first = try commit(cells[1])
        try store.apply(updates: [], commits: [first], workers: [])
        var second = first
        second.payload = Array("{\"forged\": true}".utf8)
        try store.apply(
            updates: [Scheduler.CellUpdate(key: cells[1].key, state: .queued, attempts: 9, lease: nil, worker: nil, lastError: "x")],
            commits: [second], workers: []
        )
        #expect(try store.results().first?.json == String(decoding: first.payload, as: UTF8.self))
        #expect(try store.cells().first { $0.key == cells[1].key }?.state == .done)
    }

    @Test func readOnlyOpenOfAMissingOrForeignFileFails() throws {
        let missing = try temporaryPath("missing.db")
        #expect(throws: StoreError.self) { try ResultStore(path: missing, readOnly: true) }
        let foreign = try temporaryPath("foreign.db")
        try Data("not a database at all, just text".utf8).write(to: URL(fileURLWithPath: foreign))
        #expect(throws: StoreError.self) { try ResultStore(path: foreign) }
    }

    @Test func mergeUnionsByKeyAndReportsConflicts() throws {
        let spec = try spec()
        let cells = try spec.cells()
        let a = try temporaryPath("a.db")
        let b = try temporaryPath("b.db")
        let storeA = try ResultStore(path: a)
        _ = try storeA.prepare(spec: spec, cells: cells)
        try storeA.apply(updates: [], commits: [try commit(cells[0]), try commit(cells[1])], workers: [])
        let storeB = try ResultStore(path: b)
        _ = try storeB.prepare(spec: spec, cells: cells)
        // Same result for cell 1 (timings aside), a different one for... none yet.
        try storeB.apply(updates: [], commits: [try commit(cells[1]), try commit(cells[2])], workers: [])
        let out = try temporaryPath("m.db")
        let report = try Merge.run(inputs: [a, b], output: out, preference: .refuse)
        #expect(report.results == 3 && report.duplicates == 1 && report.conflicts.isEmpty && report.cells == 4)
        #expect(try ResultStore(path: out, readOnly: true).results().count == 3)
        // Now a conflict: cell 0 with a different train_mse in C.
        let c = try temporaryPath("c.db")
        let storeC = try ResultStore(path: c)
        _ = try storeC.prepare(spec: spec, cells: cells)
        let forged = try commit(cells[0]) { $0.metrics.trainMSE = 0.123 }
        try storeC.apply(updates: [], commits: [forged], workers: [])
        let refused = try Merge.run(inputs: [a, c], output: try temporaryPath("r.db"), preference: .refuse)
        #expect(refused.conflicts.count == 1 && refused.conflicts[0].differences == ["train_mse"])
        let lastWins = try temporaryPath("l.db")
        _ = try Merge.run(inputs: [a, c], output: lastWins, preference: .last)
        let kept = try ResultStore(path: lastWins, readOnly: true).results().first { $0.key == cells[0].key }
        #expect(kept?.json.contains("0.123") == true)
        #expect(throws: StoreError.self) { try Merge.run(inputs: [a], output: lastWins, preference: .first) }
    }
}
