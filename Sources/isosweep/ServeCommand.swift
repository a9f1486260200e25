import ArgumentParser
import CommandSupport
import Coordinator
import Foundation
import ServiceLifecycle
import SweepWeb
import UnixSignals

/// `isosweep serve`: browse a sweep's results after (or while) it runs.
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract:
            "Serve a sweep's results read-only from its database: the report, a sortable cell table, a page per cell, the failed cells."
    )

    @Argument(help: "A sweep database.") var db: String
    @Option(help: "Port (0: any free port).") var port = 8080
    @Option(help: "Address to listen on; anything but loopback shows the results to whoever reaches it.")
    var host = "127.0.0.1"
    @OptionGroup var log: LogOptions

    func validate() throws {
        guard (0...65535).contains(port) else { throw ValidationError("--port must be from 0 to 65535") }
    }

    func run() async throws {
        guard FileManager.default.fileExists(atPath: db) else {
            throw ValidationError("no database at \(db): give the sweep's --db")
        }
        let logger = log.bootstrap(label: "isosweep.serve")
        let app = ResultsServer.application(database: db, host: host, port: port, logger: logger) { _ in }
        let group = ServiceGroup(
            configuration: ServiceGroupConfiguration(
                services: [.init(service: app)],
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger
            )
        )
        try await group.run()
    }
}
