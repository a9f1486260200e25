import ArgumentParser

/// isosweep: tests the law of robustness (Bubeck & Sellke) by training two-layer networks over
/// grids of (n, d, width) and measuring how their Lipschitz constants scale.
@main
struct Isosweep: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "isosweep",
        abstract: "Measure the law of robustness: Lipschitz constants of networks that fit noisy data.",
        version: "0.1.0",
        subcommands: [
            Run.self, CoordinatorCommand.self, WorkerCommand.self, Table.self, Fit.self, Report.self, Merge.self, Status.self, Keygen.self,
            Train.self,
            Lipschitz.self, Bench.self,
        ]
    )
}
