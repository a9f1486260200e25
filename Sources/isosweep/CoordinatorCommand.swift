import ArgumentParser
import CommandSupport
import Coordinator
import Diagnostics
import Foundation
import Logging
import SweepAnalysis
import SweepCore
import SweepStore
import ZeroMQ

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

    func validate() throws {
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
