import Foundation
import Logging
import SweepCore
import SweepStore
import TrainingCore

/// Runs a sweep's `refine:` rounds: when every cell is finished, the next round's cells (from the
/// results in the database) join the sweep, recorded as a round; when a round finds none, or the
/// rounds or `max_new_cells` are used up, the sweep is over. A coordinator restarted on the
/// database goes on from the rounds it recorded, so a finished sweep gains nothing.
struct RefineDriver {
    let refinement: Refinement
    let store: ResultStore
    let logger: Logger

    /// The cells of the next round (none: the refinement is over), recorded in the database.
    func nextRound() throws -> [Scheduler.CellSeed] {
        let recorded = try store.refineRounds()
        let budget = refinement.maxNewCells - recorded.reduce(0, +)
        guard recorded.count < refinement.rounds, budget > 0 else { return [] }
        let reader = try ResultStore(path: store.path, readOnly: true)
        let decoded = try reader.cellResults()
        if let warning = decoded.warning { logger.warning("refine: \(warning)") }
        let results = decoded.results.map(\.result)
        let existing = Set(try reader.cells(includingDropped: true).map(\.key))
        let cells = refinement.round(results: results, existing: existing, budget: budget)
        guard !cells.isEmpty else {
            logger.info("refine: no more cells where the condition holds after \(recorded.count) rounds")
            return []
        }
        let round = recorded.count + 1
        let axisValues = Set(
            cells.compactMap {
                $0.parameters.flatMap { CellParameters.parameter(named: refinement.axis)?.value($0)?.description }
            }
        )
        logger.info(
            "refine round \(round) of \(refinement.rounds): \(cells.count) cells at \(refinement.axis) = \(axisValues.sorted().joined(separator: ", "))"
        )
        return try store.addRefinedCells(round: round, cells: cells)
    }
}
