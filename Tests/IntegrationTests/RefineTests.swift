import Foundation
import SweepAnalysis
import SweepCore
import SweepStore
import Testing
import TrainingCore

/// `refine:` end to end: a grid where fit_fraction crosses 0.99 between its two widths gets
/// cells at geometric midpoints, round after round, within max_new_cells; the coordinator run
/// again on the finished database adds nothing.
@Suite struct RefineTests {
    @Test func cellsAreAddedWhereFitFractionCrossesAndARerunAddsNothing() throws {
        let box = try Sandbox()
        let spec = box.path("refined.yaml")
        try """
        name: refined
        method: grid
        parameters:
          n: {value: 32}
          d: {value: 4}
          width: {values: [1, 64]}
          seed: {values: [0, 1]}
          max_steps: {value: 400}
        refine:
          axis: width
          where: fit_fraction crosses 0.99
          rounds: 3
          max_new_cells: 5
        """.write(toFile: spec, atomically: true, encoding: .utf8)
        let db = box.path("refined.db")
        let run = try runIsosweep(["run", spec, "--db", db], timeout: 600)
        #expect(run.status == 0, "\(run.stderr.suffix(1500))")
        #expect(run.stderr.contains("refine round 1 of 3"), "\(run.stderr.suffix(1500))")
        var store = try ResultStore(path: db, readOnly: true)
        let rounds = try store.refineRounds()
        let cells = try store.cells()
        #expect(rounds.count >= 2 && rounds.reduce(0, +) <= 5, "rounds \(rounds)")
        #expect(cells.count == 4 + rounds.reduce(0, +) && cells.allSatisfy { $0.state == .done })
        // Round 1 is what the grid's results say: the midpoint of 1 and 64, for both seeds.
        let results = try store.results().compactMap {
            try? JSONDecoder().decode(CellResult.self, from: Data($0.json.utf8))
        }
        let grid = results.filter { [1, 64].contains($0.parameters.width) }
        let parsed = try SweepSpec.load(path: spec)
        let refine = try #require(parsed.refine)
        let first = refine.round(results: grid, existing: Set(try parsed.cells().map(\.key)), budget: 5)
        #expect(first.compactMap(\.parameters?.width) == [8, 8])
        #expect(Set(first.map(\.key)).isSubset(of: Set(cells.map(\.key))))
        // Every added width is strictly between the grid's, at the rounded geometric midpoint of
        // two widths of the sweep (an arithmetic midpoint would not be).
        let widths = Set(results.map(\.parameters.width)).sorted()
        #expect(widths.first == 1 && widths.last == 64 && widths.count > 2)
        for w in widths where w != 1 && w != 64 {
            let midpoint = widths.contains { a in
                widths.contains { b in a < w && w < b && Double(w) == (Double(a * b)).squareRoot().rounded() }
            }
            #expect(midpoint, "width \(w) is no geometric midpoint of \(widths)")
        }
        // The analysis reads the refined points: a configuration per width.
        #expect(ScalingAnalysis(results: results).configurations.count == widths.count)
        // Run again on the finished database: nothing is added, nothing is trained.
        let again = try runIsosweep(["run", spec, "--db", db], timeout: 300)
        #expect(again.status == 0, "\(again.stderr.suffix(800))")
        store = try ResultStore(path: db, readOnly: true)
        #expect(try store.refineRounds() == rounds && store.cells().count == cells.count)
        #expect(try store.results().count == results.count)
    }
}
