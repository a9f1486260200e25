import ArgumentParser
import CommandSupport
import Foundation
import Worker

/// `isosweep runner`: a worker's cell-runner process. Workers start it; it is not for users.
struct RunnerCommand: ParsableCommand, RunsBLAS {
    static let isCellRunner = true

    static let configuration = CommandConfiguration(
        commandName: "runner",
        abstract: "Run cells for the worker that started this process (internal).",
        shouldDisplay: false
    )

    func run() throws {
        let status = CellRunner.serve()
        if status != 0 { throw ExitCode(status) }
    }
}
