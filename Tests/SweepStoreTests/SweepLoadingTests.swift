import Foundation
import SweepCore
import SweepStore
import Testing
import TrainingCore

/// A sweep streaming into the store in chunks, reloaded after a restart, and the counts the
/// store's triggers keep.
@Suite struct SweepLoadingTests {
    func temporaryPath() throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("isosweep-load-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir.appendingPathComponent("s.db").path
    }

    func spec(seeds: String) throws -> SweepSpec {
        try SweepSpec.parse(
            "name: s\nparameters:\n  n: {value: 16}\n  d: {value: 3}\n  width: {values: [2, 4, 8]}\n  seed: {values: \(seeds)}\n",
            file: "s.yaml"
        )
    }

    func drain(_ load: SweepLoad, chunk: Int) throws -> [Scheduler.CellSeed] {
        var seeds: [Scheduler.CellSeed] = []
        while !load.isFinished { seeds += try load.next(limit: chunk) }
        return seeds
    }

    func commit(_ key: String) -> Scheduler.Commit {
        Scheduler.Commit(key: key, payload: Array("{}".utf8), worker: "w", attempt: 1, identity: [])
    }

    @Test func aNewSweepStreamsInChunksAndAReloadReadsItBackAsStored() throws {
        let path = try temporaryPath()
        let spec = try spec(seeds: "[0, 1, 2, 3, 4, 5, 6]")  // 21 cells
        var store = try ResultStore(path: path)
        let fresh = try store.load(spec: spec)
        #expect(fresh.summary == "new sweep: 21 cells" && fresh.expectedCount == 21)
        let first = try drain(fresh, chunk: 4)
        let expected = Set(try spec.cells().map(\.key))
        #expect(first.count == 21 && Set(first.map(\.key)) == expected)
        #expect(first.map(\.key) == first.map(\.key).sorted())  // in key order
        #expect(try store.stateCounts() == [.queued: 21])
        // Two cells done, one failed with its error, then a restart with the same file.
        try store.apply(updates: [], commits: [commit(first[0].key), commit(first[1].key)], workers: [])
        try store.apply(
            updates: [
                Scheduler.CellUpdate(
                    key: first[2].key,
                    state: .failed,
                    attempts: 3,
                    lease: nil,
                    worker: "w",
                    lastError: "boom"
                )
            ],
            commits: [],
            workers: []
        )
        store = try ResultStore(path: path)
        let again = try store.load(spec: spec)
        #expect(again.summary == "reloaded" && again.expectedCount == 21)
        let reloaded = try drain(again, chunk: 5)
        #expect(reloaded.map(\.key) == first.map(\.key))
        #expect(reloaded.filter { $0.state == .done }.count == 2 && reloaded[2].state == .failed)
        #expect(reloaded[2].lastError == "boom")
        #expect(try store.stateCounts() == [.queued: 18, .done: 2, .failed: 1])
        #expect(try store.troubledCells().map(\.key) == [first[2].key])
        // --retry-failed on a reload puts it back in the queue.
        let retried = try drain(try store.load(spec: spec, retryFailed: true), chunk: 100)
        #expect(retried[2].state == .queued && retried[2].attempts == 0)
        #expect(try store.stateCounts() == [.queued: 19, .done: 2])
    }

    @Test func aLoadCutShortResumesAfterTheLargestRecordedKey() throws {
        let path = try temporaryPath()
        let spec = try spec(seeds: "[0, 1, 2, 3, 4, 5, 6]")  // 21 cells
        let cut = try ResultStore(path: path).load(spec: spec)
        let recorded = try cut.next(limit: 4) + cut.next(limit: 4)  // then the coordinator is killed
        try ResultStore(path: path).apply(updates: [], commits: [commit(recorded[0].key)], workers: [])
        let store = try ResultStore(path: path)
        let resumed = try store.load(spec: spec)
        #expect(resumed.summary == "resumed loading: 8 cells recorded, 13 to record")
        let all = try drain(resumed, chunk: 3)
        #expect(all.map(\.key) == all.map(\.key).sorted() && Set(all.map(\.key)).count == 21)
        #expect(all[0].state == .done && all.dropFirst().allSatisfy { $0.state == .queued })
        #expect(try store.stateCounts() == [.queued: 20, .done: 1])
        #expect(try store.load(spec: spec).summary == "reloaded")
    }

    @Test func anotherFileGoesThroughTheFullComparisonAndTheCountsFollowMembership() throws {
        let path = try temporaryPath()
        let store = try ResultStore(path: path)
        _ = try drain(try store.load(spec: try spec(seeds: "[0, 1]")), chunk: 3)
        // Extended: all of the old cells and three new ones.
        let extended = try store.load(spec: try spec(seeds: "[0, 1, 2]"))
        #expect(extended.summary.contains("extended by 3 new cells"))
        #expect(try drain(extended, chunk: 2).count == 9)
        #expect(try store.stateCounts() == [.queued: 9])
        // Dropping cells needs --force; the dropped ones leave the counts of the sweep.
        #expect(throws: (any Error).self) { try store.load(spec: try spec(seeds: "[0]")) }
        let forced = try store.load(spec: try spec(seeds: "[0]"), force: true)
        #expect(try drain(forced, chunk: 10).count == 3)
        #expect(try store.stateCounts() == [.queued: 3])
        // A reload of the forced file is a plain reload.
        #expect(try store.load(spec: try spec(seeds: "[0]")).summary == "reloaded")
    }

    @Test func noopCellsAreMadeAsTheyLoadAndRecognisedOnReload() throws {
        let path = try temporaryPath()
        let store = try ResultStore(path: path)
        let seeds = try drain(try store.load(name: "bench", diagnosticCells: 1000), chunk: 128)
        #expect(seeds.count == 1000)
        #expect(Set(seeds.map(\.key)) == Set((0..<1000).map { CellWork.noop(index: $0, fail: false).key }))
        #expect(try store.load(name: "bench", diagnosticCells: 1000).summary == "reloaded")
        // Another count is another set of cells: compared in full.
        #expect(try store.load(name: "bench", diagnosticCells: 1001).summary != "reloaded")
    }
}
