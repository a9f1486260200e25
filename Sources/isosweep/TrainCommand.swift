import ArgumentParser
import Diagnostics
import Foundation
import TrainingCore

/// `isosweep train`: one cell, printed as one JSON object with every metric.
struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train one cell and print its metrics as JSON.",
        discussion: "Keys follow DESIGN.md's metrics table; metrics that do not exist for the cell are null."
    )

    @OptionGroup var cell: CellOptions
    @Option(help: "Save the trained network as a .safetensors file.") var saveModel: String?
    @Flag(help: "With --save-model, also save the training data (X, y).") var saveData = false

    func validate() throws {
        if saveData && saveModel == nil { throw ValidationError("--save-data needs --save-model FILE") }
    }

    func run() throws {
        BLAS.setThreads(cell.threads)
        let run = try Cell.run(cell.parameters)
        if let saveModel {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            let metadata = [
                "result": String(decoding: try encoder.encode(run.result), as: UTF8.self),
                "parameters": String(decoding: try encoder.encode(run.result.parameters), as: UTF8.self),
                "seed": String(run.result.parameters.seed),
                "data": run.result.parameters.data.rawValue,
                "science_version": String(scienceVersion),
            ]
            let file = try SavedNetwork.encode(
                run.network,
                trainingData: saveData ? run.trainingData : nil,
                metadata: metadata
            )
            do {
                try file.write(to: URL(fileURLWithPath: saveModel), options: .atomic)
            } catch {
                throw IsosweepError(.badFile, "cannot write \(saveModel): \(error.localizedDescription)")
            }
        }
        try Output.json(run.result)
    }
}
