import Diagnostics
import Foundation
import SweepAnalysis
import SweepCore
import SweepStore
import Testing
import TrainingCore

/// `isosweep plan`'s arithmetic: states from a real database, cluster shapes, the makespan.
@Suite struct PlanTests {
    let text = """
        name: planned
        method: grid
        parameters:
          n: {value: 256}
          d: {value: 16}
          width: {values: [8, 64, 40000]}
          seed: {values: [0, 1, 2, 3]}
        """

    @Test func countsComeFromTheDatabaseAndTheSmallClusterCannotHoldTheWideCells() throws {
        let spec = try SweepSpec.parse(text, file: "planned.yaml")
        let cells = try spec.cells()
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("isosweep-plan-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let store = try ResultStore(path: dir.appendingPathComponent("p.db").path)
        // The database knows the first 10 cells: 3 done, 2 failed, 5 queued; 2 cells are new.
        _ = try store.prepare(name: "planned", cells: Array(cells.prefix(10)))
        let done = cells.prefix(3).map(\.key)
        let failed = cells[3..<5].map(\.key)
        try store.apply(
            updates: failed.map {
                Scheduler.CellUpdate(key: $0, state: .failed, attempts: 3, lease: nil, worker: "w", lastError: "boom")
            },
            commits: done.map {
                Scheduler.Commit(key: $0, payload: Array("{}".utf8), worker: "w", attempt: 1, identity: [])
            },
            workers: []
        )
        var states: [String: Scheduler.CellState] = [:]
        for cell in try store.cells() { states[cell.key] = cell.state }
        let small = try SweepPlan.Cluster(parsing: "2x cores=4,memory=256MiB")
        let large = try SweepPlan.Cluster(parsing: "8x cores=32,memory=128GiB")
        let plan = try SweepPlan.make(spec: spec, states: states, clusters: [small, large], gflopsPerCore: 10)
        #expect(plan.cells == 12 && plan.newCells == 2 && plan.done == 3 && plan.failed == 2)
        #expect(plan.groups.count == 3 && plan.groups.map(\.cells) == [4, 4, 4])
        // Width 40000 at n = 256: ~400 MiB a cell, more than the small nodes have.
        let wide = try #require(plan.groups.first { $0.label.contains("width=40000") })
        #expect(
            wide.memoryBytes > 256 << 20
                && plan.groups.allSatisfy { $0.label == wide.label || $0.memoryBytes < 256 << 20 }
        )
        let wideLeft =
            4
            - states.filter { key, state in state == .done && cells.first { $0.key == key }?.parameters?.width == 40000
            }.count
        #expect(plan.clusters[0].unplaceable == wideLeft && plan.clusters[0].unplaceableGroups == [wide.label])
        #expect(plan.clusters[1].unplaceable == 0)
        // The large cluster runs everything; its makespan is at least the longest cell's.
        let longest = plan.groups.map { $0.flops / (10e9 * Double(min($0.threads, 32))) }.max()!
        #expect(plan.clusters[1].makespanSeconds >= longest * (1 - 1e-9))
        #expect(plan.render().contains("cells need more memory than a node has"))
    }

    @Test func theMakespanPacksCellsOntoCores() throws {
        // Four equal one-thread cells on one node of two cores: two rounds.
        let spec = try SweepSpec.parse(
            "name: m\nmethod: grid\nparameters: {n: {value: 64}, d: {value: 8}, width: {value: 8}, seed: {values: [0, 1, 2, 3]}}\n",
            file: "m.yaml"
        )
        let one = try SweepPlan.Cluster(parsing: "cores=2,memory=8GiB")
        #expect(one.nodes == 1)
        let plan = try SweepPlan.make(spec: spec, states: [:], clusters: [one], gflopsPerCore: 1)
        let cell = plan.groups[0].flops / 1e9
        #expect(abs(plan.clusters[0].makespanSeconds - 2 * cell) < 1e-9 * cell)
        for bad in ["8x cores=0,memory=1GiB", "cores=4", "8x cpus=4,memory=1GiB", "x cores=4,memory=2GiB"] {
            #expect(throws: IsosweepError.self) { try SweepPlan.Cluster(parsing: bad) }
        }
    }
}
