import ArgumentParser
import CommandSupport
import Diagnostics
import Foundation
import TrainingCore
import Worker

/// `isosweep train`: one cell, printed as one JSON object with every metric.
struct Train: ParsableCommand, RunsBLAS {
    static let configuration = CommandConfiguration(
        abstract: "Train one cell and print its metrics as JSON.",
        discussion: """
            Keys follow docs/science.md's metrics table; metrics that do not exist for the cell are null.

            The cell's parameters, the same as in sweep files (with dashes), e.g. \
            isosweep train --n 256 --d 32 --width 64 --seed 0:

            \(CellParameters.argumentsHelp)
            """
    )

    // The cell's options come from `CellParameters.catalogue`, not from declarations here, so that
    // a parameter added there is at once a sweep-file key, an option of `train` and a table column.
    @Argument(parsing: .allUnrecognized, help: "The cell's parameters, --name value (listed above).")
    var parameters: [String] = []
    @Option(help: "Save the trained network as a .safetensors file.") var saveModel: String?
    @Flag(help: "With --save-model, also save the training data (X, y).") var saveData = false
    @Option(help: "OpenBLAS threads for this cell.") var threads: Int = 1
    @Option(
        help:
            "Resume from this checkpoint of the cell (a coordinator keeps them in DB.checkpoints/ while the cell is unfinished): the result is the uninterrupted run's at the same threads and BLAS kernels."
    )
    var resume: String?
    @OptionGroup var search: SearchOptions

    func validate() throws {
        if saveData && saveModel == nil { throw ValidationError("--save-data needs --save-model FILE") }
        guard threads >= 1 && threads <= 256 else {
            throw ValidationError("--threads must be between 1 and 256 (got \(threads))")
        }
        do {
            _ = try CellParameters(arguments: parameters)
        } catch {
            throw ValidationError(error.description)
        }
    }

    func run() throws {
        BLAS.setThreads(threads)
        var checkpoint: TrainingCheckpoint?
        if let resume {
            guard let data = FileManager.default.contents(atPath: resume) else {
                throw IsosweepError(.badFile, "cannot read the checkpoint \(resume)", remedy: "check the path")
            }
            checkpoint = try TrainingCheckpoint(decoding: [UInt8](data), name: resume)
        }
        var run = try Cell.run(
            try CellParameters(arguments: parameters),
            lipschitz: search.lipschitz,
            threads: threads,
            resume: checkpoint
        )
        // This process ran just this cell: its peak is the cell's.
        run.result.metrics.peakRSSBytes = ProcessMemory.peakBytes
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
