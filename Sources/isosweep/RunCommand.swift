import ArgumentParser
import Coordinator
import Foundation
import Logging
import SweepAnalysis
import SweepCore
import SweepStore

/// `isosweep run`: coordinator plus local worker processes on this machine.
struct Run: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract:
            "Run a sweep on this machine: a coordinator and local worker processes over loopback, then print the table."
    )

    @Argument(help: "The sweep file.") var spec = "sweeps/quick.yaml"
    @Option(help: "Local worker processes (default: one per core).") var workers: Int?
    @Option(help: "Table format printed at the end: markdown, csv, json.") var format: SweepTable.Format = .markdown
    @OptionGroup var coordinator: CoordinatorArguments
    @OptionGroup var log: LogOptions

    func validate() throws {
        if let workers, !(1...256).contains(workers) { throw ValidationError("--workers must be between 1 and 256") }
    }

    func run() async throws {
        let logger = log.bootstrap(label: "isosweep.run")
        let sweep = try SweepSpec.load(path: spec)
        let database = coordinator.db ?? "\(sweep.name).db"
        let registry = coordinator.metricsRegistry()
        let engine = CoordinatorEngine(
            options: coordinator.options(bind: "tcp://127.0.0.1:0", database: database),
            work: .sweep(sweep),
            logger: logger
        )
        let count = workers ?? ProcessInfo.processInfo.activeProcessorCount
        // Workers stay quiet at the default level; asked for more (debug) or less, they follow.
        let childLevel = log.logLevel == .info ? "warning" : log.logLevel.rawValue
        let local = LocalWorkers(
            count: count,
            logger: logger,
            endpoint: { engine.endpoint },
            arguments: { endpoint in ["worker", "--connect", endpoint, "--slots", "1", "--log-level", childLevel] }
        )
        let outcome = try await runCoordinator(
            engine,
            with: [local] + coordinator.statusServices(engine: engine, registry: registry, logger: logger),
            logger: logger
        )
        let store = try ResultStore(path: database, readOnly: true)
        print(try SweepTable(store: store).render(format))
        try finish(outcome, database: database)
    }
}
