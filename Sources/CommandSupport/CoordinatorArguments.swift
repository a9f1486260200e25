public import ArgumentParser
public import Coordinator
import Foundation
public import Logging
import Metrics
public import Prometheus
public import ServiceLifecycle
import SweepCore
import SweepWeb
import UnixSignals
import ZeroMQ

/// Options shared by `coordinator` and `run`.
public struct CoordinatorArguments: ParsableArguments {
    /// The options at their defaults (ArgumentParser fills them in).
    public init() {}

    @Option(help: "SQLite database of the sweep (created if missing; reopened to resume).") public var db: String?
    @Option(help: "Heartbeat interval in seconds.") var heartbeat: Double = 1
    @Option(help: "Missed heartbeats after which a worker is dead.") var liveness: Int = 3
    @Option(help: "Tries per cell before it is FAILED (the sweep file's max_attempts wins).") var maxAttempts: Int =
        SweepSpec.defaultMaxAttempts
    @Flag(help: "Retry cells that FAILED in an earlier run on this database.") var retryFailed = false
    @Flag(help: "Use a database made for another sweep file anyway (the change is recorded; results are kept).")
    var force = false
    @Option(help: "Serve live status on this HTTP port (/, /status, /metrics); 0 picks a free port.") var statusPort:
        Int?
    @Option(help: "Address of the status endpoint.") var statusHost = "127.0.0.1"

    /// Refuses values out of range, naming the option.
    public func validate() throws {
        guard heartbeat >= 0.01 && heartbeat <= 3600 else {
            throw ValidationError("--heartbeat must be between 0.01 and 3600 seconds")
        }
        guard liveness >= 1 && liveness <= 100 else { throw ValidationError("--liveness must be between 1 and 100") }
        guard maxAttempts >= 1 && maxAttempts <= 100 else {
            throw ValidationError("--max-attempts must be between 1 and 100")
        }
        if let statusPort, !(0...65535).contains(statusPort) {
            throw ValidationError("--status-port must be between 0 and 65535")
        }
    }

    /// With --status-port, routes swift-metrics to a Prometheus registry (call before making the engine,
    /// whose metrics bind to the factory in force when they are created).
    public func metricsRegistry() -> PrometheusCollectorRegistry? {
        guard statusPort != nil else { return nil }
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(DocumentedPrometheusFactory(registry: registry))
        return registry
    }

    /// The status endpoint's service, when --status-port is given.
    public func statusServices(
        engine: CoordinatorEngine,
        registry: PrometheusCollectorRegistry?,
        logger: Logger
    ) -> [any Service] {
        guard let statusPort, let registry else { return [] }
        if !Endpoint.isLocal("tcp://\(statusHost):\(statusPort)") {
            logger.warning(
                "the status endpoint listens on \(statusHost): anyone who reaches it can read the sweep's progress and results"
            )
        }
        return [
            StatusServer.application(
                engine: engine,
                registry: registry,
                host: statusHost,
                port: statusPort,
                logger: logger
            ) { _ in }
        ]
    }

    /// The coordinator's options from these arguments, listening on `bind` with `database`.
    public func options(
        bind: String,
        database: String,
        security: CoordinatorOptions.Security = .plaintext(insecure: false)
    ) -> CoordinatorOptions {
        var options = CoordinatorOptions(bind: bind, database: database)
        options.security = security
        options.force = force
        options.heartbeat = .milliseconds(Int64(heartbeat * 1000))
        options.liveness = liveness
        options.maxAttempts = maxAttempts
        options.retryFailed = retryFailed
        return options
    }
}

/// Re-reads the coordinator's allow list on every SIGHUP.
struct AllowListReloader: Service {
    let engine: CoordinatorEngine

    func run() async throws {
        for await _ in await UnixSignalsSequence(trapping: .sighup).cancelOnGracefulShutdown() {
            engine.reloadAllowList()
        }
    }
}

/// Runs a coordinator service (and any other services) until the sweep ends or a signal stops it.
public func runCoordinator(
    _ engine: CoordinatorEngine,
    with others: [any Service],
    logger: Logger
) async throws -> CoordinatorOutcome {
    let printer = ProgressPrinter()
    let service = CoordinatorService(engine: engine) { printer.show($0) }
    let others = others + [AllowListReloader(engine: engine)]
    let group = ServiceGroup(
        configuration: ServiceGroupConfiguration(
            services: [.init(service: service, successTerminationBehavior: .gracefullyShutdownGroup)]
                + others.map {
                    .init(service: $0, successTerminationBehavior: .ignore, failureTerminationBehavior: .ignore)
                },
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger
        )
    )
    do {
        try await group.run()
    } catch {
        printer.finish()
        throw error
    }
    printer.finish()
    guard let outcome = service.outcome else {
        Output.error("the coordinator stopped before the sweep ended")
        throw ExitCode(3)
    }
    return outcome
}
