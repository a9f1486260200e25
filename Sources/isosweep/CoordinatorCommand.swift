import ArgumentParser
import Coordinator
import Diagnostics
import Foundation
import Logging
import Metrics
import Prometheus
import ServiceLifecycle
import SweepAnalysis
import SweepCore
import SweepStore
import UnixSignals
import Worker
import ZeroMQ

/// Options shared by `coordinator` and `run`.
struct CoordinatorArguments: ParsableArguments {
    @Option(help: "SQLite database of the sweep (created if missing; reopened to resume).") var db: String?
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

    func validate() throws {
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
    func metricsRegistry() -> PrometheusCollectorRegistry? {
        guard statusPort != nil else { return nil }
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(DocumentedPrometheusFactory(registry: registry))
        return registry
    }

    /// The status endpoint's service, when --status-port is given.
    func statusServices(
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

    func options(
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
func runCoordinator(
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

/// `isosweep coordinator`: serve a sweep's cells to workers.
struct CoordinatorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "coordinator",
        abstract: "Serve a sweep's cells to workers over ZeroMQ and record their results.",
        discussion: "Exits 0 when every cell is done, 1 if any FAILED, 130 if stopped by a signal first."
    )

    @Argument(help: "The sweep file (sweeps/*.yaml).") var spec: String
    @Option(help: "Endpoint to listen on; anything but loopback needs CURVE (or --insecure).") var bind =
        "tcp://127.0.0.1:5555"
    @Option(help: "The coordinator's CURVE secret key file (isosweep keygen).") var curveSecret: String?
    @Option(help: "Folder of allowed workers' public keys (*.pub); re-read on SIGHUP.") var allow: String?
    @Flag(help: "Allow plain TCP off loopback: anyone who reaches the port can take cells and send results.")
    var insecure = false
    @OptionGroup var coordinator: CoordinatorArguments
    @OptionGroup var log: LogOptions
    @Option(help: .hidden) var benchNoopCells: Int?
    @Option(help: .hidden) var benchFigures: String?

    func validate() throws {
        if let benchNoopCells, !(1...100_000_000).contains(benchNoopCells) {
            throw ValidationError("--bench-noop-cells must be between 1 and 100000000")
        }
        if (curveSecret == nil) != (allow == nil) {
            throw ValidationError(
                "--curve-secret and --allow go together: the coordinator's key pair and the folder of allowed worker keys"
            )
        }
        if curveSecret != nil && insecure {
            throw ValidationError("--insecure makes no sense with CURVE keys: drop it")
        }
        if curveSecret == nil && !insecure && !Endpoint.isLocal(bind) {
            throw ValidationError(CoordinatorEngine.plaintextRefusal(bind).description)
        }
    }

    func security() throws -> CoordinatorOptions.Security {
        guard let curveSecret, let allow else { return .plaintext(insecure: insecure) }
        return .curve(try KeyFiles.readSecret(curveSecret), allowDirectory: allow)
    }

    func run() async throws {
        let logger = log.bootstrap(label: "isosweep.coordinator")
        if let benchNoopCells { return try await runBenchmark(cells: benchNoopCells, logger: logger) }
        let sweep = try SweepSpec.load(path: spec)
        let database = coordinator.db ?? "\(sweep.name).db"
        let options = coordinator.options(bind: bind, database: database, security: try security())
        let registry = coordinator.metricsRegistry()
        let engine = CoordinatorEngine(options: options, work: .sweep(sweep), logger: logger)
        let status = coordinator.statusServices(engine: engine, registry: registry, logger: logger)
        let outcome = try await runCoordinator(engine, with: status, logger: logger)
        try finish(outcome, database: database)
    }
}

extension CoordinatorCommand {
    /// `bench swarm`'s coordinator: no-op cells named SPEC, no report, and its figures appended
    /// as a JSON line to --bench-figures.
    func runBenchmark(cells: Int, logger: Logger) async throws {
        let database = coordinator.db ?? "\(spec).db"
        let options = coordinator.options(bind: bind, database: database, security: try security())
        let registry = coordinator.metricsRegistry()
        let engine = CoordinatorEngine(options: options, work: .noop(name: spec, count: cells), logger: logger)
        let status = coordinator.statusServices(engine: engine, registry: registry, logger: logger)
        let outcome = try await runCoordinator(engine, with: status, logger: logger)
        let sorted = outcome.latencyMilliseconds.map(Double.init).sorted()
        func percentile(_ q: Double) -> Double {
            sorted.isEmpty ? 0 : sorted[min(sorted.count - 1, Int(q * Double(sorted.count)))]
        }
        let figures = CoordinatorBenchmarkFigures(
            committed: sorted.count,
            done: outcome.done,
            total: outcome.total,
            firstDispatchSeconds: outcome.firstDispatchSeconds,
            dispatchSeconds: outcome.dispatchSeconds,
            p50Milliseconds: percentile(0.5),
            p99Milliseconds: percentile(0.99),
            peakRSSBytes: ProcessMemory.peakBytes ?? 0
        )
        if let benchFigures {
            let line = try JSONEncoder().encode(figures) + Data("\n".utf8)
            if let handle = FileHandle(forWritingAtPath: benchFigures) {
                handle.seekToEndOfFile()
                handle.write(line)
                try handle.close()
            } else {
                try line.write(to: URL(fileURLWithPath: benchFigures))
            }
        }
    }
}

/// What a benchmark coordinator run measured (one JSON line).
struct CoordinatorBenchmarkFigures: Codable {
    /// Cells committed in this run, and done in all (with earlier runs on the database).
    var committed: Int
    var done: Int
    var total: Int
    var firstDispatchSeconds: Double
    var dispatchSeconds: Double
    var p50Milliseconds: Double
    var p99Milliseconds: Double
    var peakRSSBytes: Int

    enum CodingKeys: String, CodingKey {
        case committed, done, total
        case firstDispatchSeconds = "first_dispatch_seconds"
        case dispatchSeconds = "dispatch_seconds"
        case p50Milliseconds = "p50_ms"
        case p99Milliseconds = "p99_ms"
        case peakRSSBytes = "peak_rss_bytes"
    }
}

/// Prints the ending and exits with the sweep's status.
func finish(_ outcome: CoordinatorOutcome, database: String) throws {
    fflush(nil)  // the table first, then the summary on stderr
    let summary = "\(outcome.done)/\(outcome.total) cells done, \(outcome.failed) failed (database: \(database))"
    FileHandle.standardError.write(Data("isosweep: \(summary)\n".utf8))
    if !outcome.interrupted && outcome.done > 0 {
        do {
            let path = try ReportWriter.write(
                store: try ResultStore(path: database, readOnly: true),
                directory: defaultReportDirectory(for: database)
            )
            FileHandle.standardError.write(Data("isosweep: report: \(path)\n".utf8))
        } catch {
            FileHandle.standardError.write(Data("isosweep: warning: could not write the report: \(error)\n".utf8))
        }
    }
    if outcome.interrupted { throw ExitCode(130) }
    if outcome.failed > 0 {
        FileHandle.standardError.write(Data("isosweep: see the failures with: isosweep status --db \(database)\n".utf8))
        throw ExitCode.failure
    }
}
