import Diagnostics
import Foundation
import SweepCore
import SweepStore
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
        try SweepSpec.parse(
            "name: s\nparameters:\n  n: {value: 16}\n  d: {value: 3}\n  width: {values: [2, 4]}\n  seed: {values: \(seeds)}\n  max_steps: {value: 20}\n",
            file: "s.yaml"
        )
    }

    /// Trains `work` for real and returns its result as the worker would send it.
    func commit(
        _ work: CellWork,
        attempt: Int = 1,
        mutate: ((inout CellResult) -> Void)? = nil
    ) throws -> Scheduler.Commit {
        var result = try Cell.run(work.parameters!).result
        mutate?(&result)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return Scheduler.Commit(
            key: work.key,
            payload: Array(try encoder.encode(result)),
            worker: "w",
            attempt: attempt,
            identity: [1]
        )
    }

    @Test func resumeKeepsResultsAndRefusesAFileThatDropsCells() throws {
        let path = try temporaryPath("a.db")
        let spec = try spec()
        let cells = try spec.cells()
        var store = try ResultStore(path: path)
        var preparation = try store.prepare(spec: spec, cells: cells)
        #expect(!preparation.existed && preparation.newCells == 4)
        #expect(preparation.seeds.count == 4 && preparation.seeds.allSatisfy { $0.state == .queued })
        try store.apply(updates: [], commits: [try commit(cells[0])], workers: [])
        store = try ResultStore(path: path)
        preparation = try store.prepare(spec: spec, cells: cells)
        #expect(preparation.existed && preparation.newCells == 0 && preparation.reusedCells == 4)
        #expect(preparation.seeds.first { $0.key == cells[0].key }?.state == .done)
        #expect(try store.results().count == 1)
        let other = try self.spec(seeds: "[5]")
        do {
            _ = try store.prepare(spec: other, cells: try other.cells())
            Issue.record("a file that drops cells was accepted")
        } catch {
            #expect(
                error.code == .store && error.message.contains("belongs to sweep 's'")
                    && error.message.contains("drops 4 of its 4 cells")
            )
            #expect(error.remedy?.contains("--force") == true)
        }
        #expect(try store.cells().count == 4)
    }

    @Test func theSameCellsInAnotherFileAreTheSameSweepAndASupersetExtendsIt() throws {
        let path = try temporaryPath("x.db")
        let store = try ResultStore(path: path)
        let text =
            "name: s\nparameters:\n  n: {value: 16}\n  d: {value: 3}\n  width: {values: [2, 4]}\n  max_steps: {value: 20}\n"
        let first = try SweepSpec.parse(text, file: "s.yaml")
        _ = try store.prepare(spec: first, cells: try first.cells())
        try store.apply(updates: [], commits: [try commit(try first.cells()[0])], workers: [])
        // Keys reordered, a comment, a description, another name: the same cells, the same sweep.
        let reordered = try SweepSpec.parse(
            "# the same grid\ndescription: now described\nparameters:\n  max_steps: {value: 20}\n  width: {values: [4, 2]}\n  d: {value: 3}\n  n: {value: 16}\nname: renamed\n",
            file: "r.yaml"
        )
        let same = try store.prepare(spec: reordered, cells: try reordered.cells())
        #expect(same.newCells == 0 && same.reusedCells == 2 && same.droppedCells == 0)
        #expect(same.seeds.filter { $0.state == .queued }.count == 1)
        #expect(try store.sweep()?.source == reordered.source && store.sweep()?.name == "renamed")
        // One more width: an extension, without --force; only the new cell is queued.
        let wider = try SweepSpec.parse(text.replacingOccurrences(of: "[2, 4]", with: "[2, 4, 8]"), file: "w.yaml")
        let extended = try store.prepare(spec: wider, cells: try wider.cells())
        #expect(
            extended.newCells == 1 && extended.reusedCells == 2 && extended.summary.contains("extended by 1 new cells")
        )
        #expect(extended.seeds.count == 3 && extended.seeds.filter { $0.state == .done }.count == 1)
        #expect(try store.events().contains { $0.kind == "extended" })
        // Dropping a width needs --force; forced, the dropped cell leaves the sweep, its result stays.
        #expect(throws: IsosweepError.self) { try store.prepare(spec: first, cells: try first.cells()) }
        let narrowed = try SweepSpec.parse(text.replacingOccurrences(of: "[2, 4]", with: "[4, 8]"), file: "n.yaml")
        let forced = try store.prepare(spec: narrowed, cells: try narrowed.cells(), force: true)
        #expect(forced.droppedCells == 1 && forced.seeds.count == 2)
        #expect(try store.cells().count == 2 && store.cells(includingDropped: true).count == 3)
        #expect(try store.results().count == 1)
        #expect(try store.events().contains { $0.kind == "spec_changed" && $0.detail.contains("1 cells dropped") })
    }

    @Test func aMergeKeepsCellsThatLeftTheSweepOutOfIt() throws {
        let path = try temporaryPath("f.db")
        let store = try ResultStore(path: path)
        let before = try spec(seeds: "[0, 1]")
        _ = try store.prepare(spec: before, cells: try before.cells())
        try store.apply(updates: [], commits: [try commit(try before.cells()[0])], workers: [])
        let after = try spec(seeds: "[1, 2]")
        _ = try store.prepare(spec: after, cells: try after.cells(), force: true)
        let merged = try temporaryPath("fm.db")
        _ = try Merge.run(inputs: [path], output: merged, preference: .refuse)
        let out = try ResultStore(path: merged, readOnly: true)
        #expect(try out.cells().count == 4 && out.cells(includingDropped: true).count == 6)
        #expect(try out.results().count == 1)
    }

    @Test func workersAreCreditedWithEachCommittedResultOnce() throws {
        let path = try temporaryPath("w.db")
        let spec = try spec()
        let cells = try spec.cells()
        let store = try ResultStore(path: path)
        _ = try store.prepare(spec: spec, cells: cells)
        let worker = Scheduler.WorkerRecord(id: "w", host: "h", build: "b", slots: 2, alive: true)
        let result = try commit(cells[0])
        try store.apply(updates: [], commits: [result, try commit(cells[1])], workers: [worker])
        try store.apply(updates: [], commits: [result], workers: [])  // a duplicate counts nothing
        var gone = worker
        gone.alive = false
        try store.apply(updates: [], commits: [], workers: [gone])
        let recorded = try #require(try store.workers().first)
        #expect(recorded.cellsDone == 2 && !recorded.alive)
        #expect(abs(recorded.lastSeen.timeIntervalSinceNow) < 60)
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
            updates: [
                Scheduler.CellUpdate(
                    key: cells[1].key,
                    state: .queued,
                    attempts: 9,
                    lease: nil,
                    worker: nil,
                    lastError: "x"
                )
            ],
            commits: [second],
            workers: []
        )
        #expect(try store.results().first?.json == String(decoding: first.payload, as: UTF8.self))
        #expect(try store.cells().first { $0.key == cells[1].key }?.state == .done)
    }

    @Test func readOnlyOpenOfAMissingOrForeignFileFails() throws {
        let missing = try temporaryPath("missing.db")
        #expect(throws: IsosweepError.self) { try ResultStore(path: missing, readOnly: true) }
        let foreign = try temporaryPath("foreign.db")
        try Data("not a database at all, just text".utf8).write(to: URL(fileURLWithPath: foreign))
        #expect(throws: IsosweepError.self) { try ResultStore(path: foreign) }
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
        #expect(throws: IsosweepError.self) { try Merge.run(inputs: [a], output: lastWins, preference: .first) }
    }
}
