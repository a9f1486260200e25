import ArgumentParser
import CommandSupport
import Diagnostics
import Foundation
import SweepBench
import SweepCore

/// isosweep: tests the law of robustness (Bubeck & Sellke) by training two-layer networks over
/// grids of (n, d, width) and measuring how their Lipschitz constants scale.
@main
struct Isosweep: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "isosweep",
        abstract: "Measure the law of robustness: Lipschitz constants of networks that fit noisy data.",
        version: IsosweepBuild.version,
        subcommands: [
            Run.self, CoordinatorCommand.self, WorkerCommand.self, Table.self, Fit.self, Report.self, Merge.self,
            Status.self, Plan.self, Cells.self, Requeue.self, Cancel.self, Serve.self, Keygen.self,
            Train.self,
            Lipschitz.self, Bench.self, RunnerCommand.self,
        ]
    )

    /// Runs the chosen subcommand. Library errors are caught here, once: the message, what to do
    /// about it, and an exit status by kind (see `Output.exitStatus`).
    static func main() async {
        do {
            var command = try parseAsRoot()
            // Before anything runs BLAS: the kernels this CPU allows (this may run the process again).
            if let blasCommand = type(of: command) as? any RunsBLAS.Type {
                BLASSetup.prepare(cellRunner: blasCommand.isCellRunner)
            }
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch let error as IsosweepError {
            Output.error(error.description)
            Foundation.exit(Output.exitStatus(of: error))
        } catch {
            exit(withError: error)
        }
    }
}
