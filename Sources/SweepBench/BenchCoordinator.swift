import ArgumentParser
import CommandSupport
import Coordinator
import Foundation
import Logging
import SweepCore
import Worker

/// `bench coordinator`: the coordinator of `bench swarm`, in a process of its own as in
/// production: a sweep of NAME's no-op cells, no report, and its figures appended as one JSON
/// line to --figures.
struct BenchCoordinator: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "coordinator",
        abstract: "bench swarm's coordinator: no-op cells over ZeroMQ, its figures as a JSON line.",
        shouldDisplay: false
    )

    @Argument(help: "The sweep's name (its database is NAME.db unless --db says otherwise).") var name: String
    @Option(help: "No-op cells in the sweep.") var cells: Int
    @Option(help: "File the figures are appended to, one JSON line a run.") var figures: String?
    @Option(help: "Endpoint to listen on (loopback).") var bind = "tcp://127.0.0.1:5555"
    @OptionGroup var coordinator: CoordinatorArguments
    @OptionGroup var log: LogOptions

    func validate() throws {
        guard (1...100_000_000).contains(cells) else {
            throw ValidationError("--cells must be between 1 and 100000000")
        }
    }

    func run() async throws {
        let logger = log.bootstrap(label: "isosweep.bench.coordinator")
        let database = coordinator.db ?? "\(name).db"
        let options = coordinator.options(bind: bind, database: database)
        let registry = coordinator.metricsRegistry()
        let engine = CoordinatorEngine(options: options, work: .diagnostic(name: name, count: cells), logger: logger)
        let status = coordinator.statusServices(engine: engine, registry: registry, logger: logger)
        let outcome = try await runCoordinator(engine, with: status, logger: logger)
        let sorted = outcome.latencyMilliseconds.map(Double.init).sorted()
        func percentile(_ q: Double) -> Double {
            sorted.isEmpty ? 0 : sorted[min(sorted.count - 1, Int(q * Double(sorted.count)))]
        }
        let measured = CoordinatorBenchmarkFigures(
            committed: sorted.count,
            done: outcome.done,
            total: outcome.total,
            firstDispatchSeconds: outcome.firstDispatchSeconds,
            dispatchSeconds: outcome.dispatchSeconds,
            p50Milliseconds: percentile(0.5),
            p99Milliseconds: percentile(0.99),
            peakRSSBytes: ProcessMemory.peakBytes ?? 0
        )
        guard let figures else { return }
        let line = try JSONEncoder().encode(measured) + Data("\n".utf8)
        if let handle = FileHandle(forWritingAtPath: figures) {
            handle.seekToEndOfFile()
            handle.write(line)
            try handle.close()
        } else {
            try line.write(to: URL(fileURLWithPath: figures))
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
