import ArgumentParser
import CommandSupport
import Coordinator
import Foundation
import Logging
import SweepAnalysis
import SweepCore
import SweepStore
import Worker

/// `isosweep run`: coordinator plus local worker processes on this machine.
struct Run: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract:
            "Run a sweep on this machine: a coordinator and local worker processes over loopback, then print the table."
    )

    @Argument(help: "The sweep file.") var spec = "sweeps/quick.yaml"
    @Option(help: "Local worker processes; this machine's cores and memory are shared among them (default: 1).")
    var workers = 1
    @Option(help: "Table format printed at the end: markdown, csv, json.") var format: SweepTable.Format = .markdown
    @OptionGroup var coordinator: CoordinatorArguments
    @OptionGroup var log: LogOptions

    func validate() throws {
        guard (1...256).contains(workers) else { throw ValidationError("--workers must be between 1 and 256") }
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
        // One worker holds every core and the memory (a big cell can have them all); several
        // share them, so that together they never claim more than the machine has.
        let cores = max(1, MachineResources.cores() / workers)
        let memory = MachineResources.memory() / UInt64(workers)
        // Workers stay quiet at the default level; asked for more (debug) or less, they follow.
        let childLevel = log.logLevel == .info ? "warning" : log.logLevel.rawValue
        let local = LocalWorkers(
            count: workers,
            logger: logger,
            endpoint: { engine.endpoint },
            arguments: { endpoint in
                [
                    "worker", "--connect", endpoint, "--cores", "\(cores)", "--memory", "\(memory)", "--log-level",
                    childLevel,
                ]
            }
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
