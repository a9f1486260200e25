import Foundation
import SweepCore
import SweepStore
import Testing

/// A `method: random` sweep run end to end: exactly run_cap distinct cells, the same ones for the
/// same sweep seed.
@Suite struct RandomSweepTests {
    func text(seed: Int) -> String {
        """
        name: drawn
        method: random
        run_cap: 50
        seed: \(seed)
        parameters:
          n: {value: 24}
          d: {distribution: categorical, values: [2, 3, 4]}
          width: {distribution: q_log_uniform_values, min: 2, max: 32, q: 1}
          lr: {distribution: log_uniform_values, min: 0.001, max: 0.05}
          seed: {distribution: int_uniform, min: 0, max: 5}
          max_steps: {value: 30}
        """
    }

    @Test func aRandomSweepRunsExactlyRunCapDistinctCellsTheSameForTheSameSeed() throws {
        let box = try Sandbox()
        let file = box.path("drawn.yaml")
        try text(seed: 3).write(toFile: file, atomically: true, encoding: .utf8)
        let run = try runIsosweep(["run", file, "--db", box.path("drawn.db")], timeout: 600)
        #expect(run.status == 0, "\(run.stderr)")
        let store = try ResultStore(path: box.path("drawn.db"), readOnly: true)
        let stored = try store.cells()
        #expect(stored.count == 50 && stored.allSatisfy { $0.state == .done })
        #expect(try store.results().count == 50)
        let expected = try SweepSpec.parse(text(seed: 3), file: file).cells().map(\.key)
        #expect(Set(stored.map(\.key)) == Set(expected) && Set(expected).count == 50)
        // Running the same file again trains nothing: the same 50 cells are already done.
        let again = try runIsosweep(["run", file, "--db", box.path("drawn.db")], timeout: 300)
        #expect(try again.status == 0 && store.results().count == 50, "\(again.stderr)")
        // Another seed is another draw.
        let other = try SweepSpec.parse(text(seed: 4), file: file).cells().map(\.key)
        #expect(Set(other) != Set(expected))
    }
}
