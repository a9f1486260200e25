import Foundation
public import Hummingbird
public import Logging
import NIOCore
import SweepAnalysis
import SweepCore
import SweepStore
import Synchronization

/// `isosweep serve`: a read-only results server for a finished or running sweep, from its
/// database alone. `/` is the report (regenerated at most every ten seconds), `/cells` the
/// sortable, filterable cell table, `/cell/KEY` one cell, `/failed` the failed cells with their
/// errors, `/status` the counts as the coordinator's endpoint reports them (so that
/// `isosweep status --connect` works against it).
public enum ResultsServer {
    /// An application serving `database` on host:port (port 0: any free port, reported to `onBound`).
    public static func application(
        database: String,
        host: String,
        port: Int,
        logger: Logger,
        onBound: @escaping @Sendable (Int) -> Void
    ) -> some ApplicationProtocol {
        let router = Router()
        let report = ReportCache(database: database)
        @Sendable func html(_ text: String, status: HTTPResponse.Status = .ok) -> Response {
            Response(
                status: status,
                headers: [.contentType: "text/html; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(string: text))
            )
        }
        @Sendable func store() throws -> ResultStore { try ResultStore(path: database, readOnly: true) }
        @Sendable func failure(_ error: any Error) -> Response {
            html("<p>cannot read \(database): \(error)</p>", status: .internalServerError)
        }
        router.get("/") { _, _ -> Response in
            do { return html(try report.index()) } catch { return failure(error) }
        }
        router.get("/cells") { request, _ -> Response in
            var query: [String: String] = [:]
            for (key, value) in request.uri.queryParameters {
                query[String(key)] = String(value).removingPercentEncoding
            }
            do { return html(try ResultsPages.cellTable(try store(), query: query)) } catch { return failure(error) }
        }
        router.get("/cell/:key") { _, context -> Response in
            let key = context.parameters.get("key") ?? ""
            do {
                guard let page = try ResultsPages.cellPage(try store(), key: key) else {
                    return html("<p>no cell \(key.prefix(64)) in this sweep</p>", status: .notFound)
                }
                return html(page)
            } catch { return failure(error) }
        }
        router.get("/failed") { _, _ -> Response in
            do { return html(try ResultsPages.failedPage(try store())) } catch { return failure(error) }
        }
        router.get("/status") { _, _ -> Response in
            do {
                let data = try JSONEncoder().encode(try status(try store(), database: database))
                return Response(
                    status: .ok,
                    headers: [.contentType: "application/json"],
                    body: .init(byteBuffer: ByteBuffer(bytes: data))
                )
            } catch { return failure(error) }
        }
        // The report's figures and files, next to index.html.
        router.get("/:file") { _, context -> Response in
            let name = context.parameters.get("file") ?? ""
            guard let (data, type) = try? report.file(name) else {
                return html("<p>no such page</p>", status: .notFound)
            }
            return Response(
                status: .ok,
                headers: [.contentType: type],
                body: .init(byteBuffer: ByteBuffer(bytes: data))
            )
        }
        return Application(
            router: router,
            configuration: .init(address: .hostname(host, port: port), serverName: "isosweep"),
            onServerRunning: { channel in
                let bound = channel.localAddress?.port ?? port
                logger.info("serving results", metadata: ["url": "http://\(host):\(bound)/", "db": "\(database)"])
                onBound(bound)
            },
            logger: logger
        )
    }

    /// The counts as `/status` of a coordinator reports them; `finished` when nothing is queued
    /// or running.
    static func status(_ store: ResultStore, database: String) throws -> StatusSnapshot {
        let counts = try store.stateCounts()
        let failures = try store.troubledCells().filter { $0.state == .failed }.prefix(100).map {
            StatusSnapshot.Failure(key: $0.key, attempts: $0.attempts, error: $0.lastError ?? "")
        }
        return StatusSnapshot(
            sweep: try store.sweep()?.name ?? "?",
            database: database,
            total: counts.values.reduce(0, +),
            counts: Dictionary(uniqueKeysWithValues: counts.map { ($0.key.rawValue, $0.value) }),
            cellsPerSecond: 0,
            etaSeconds: nil,
            elapsedSeconds: 0,
            workers: [],
            failures: Array(failures),
            finished: (counts[.queued] ?? 0) + (counts[.leased] ?? 0) == 0
        )
    }
}

/// The report of the database, written to a private folder and rewritten at most every ten
/// seconds when asked for.
final class ReportCache: Sendable {
    let database: String
    let directory: String
    private let written = Mutex<ContinuousClock.Instant?>(nil)

    init(database: String) {
        self.database = database
        directory =
            FileManager.default.temporaryDirectory.appendingPathComponent("isosweep-serve-\(UUID().uuidString)")
            .path
    }

    deinit { try? FileManager.default.removeItem(atPath: directory) }

    func refresh() throws {
        try written.withLock { last in
            if let last, ContinuousClock.now - last < .seconds(10) { return }
            try ReportWriter.write(store: try ResultStore(path: database, readOnly: true), directory: directory)
            last = .now
        }
    }

    /// index.html with the navigation bar.
    func index() throws -> String {
        try refresh()
        let page = try String(contentsOfFile: directory + "/index.html", encoding: .utf8)
        return page.replacingOccurrences(of: "<body>", with: "<body>\n" + ResultsPages.navigation)
    }

    /// A file of the report (figures, report.md, analysis.json), by name only.
    func file(_ name: String) throws -> (Data, String)? {
        let types = ["svg": "image/svg+xml", "png": "image/png", "json": "application/json", "md": "text/markdown"]
        guard !name.contains("/"), !name.hasPrefix("."), let type = types[(name as NSString).pathExtension] else {
            return nil
        }
        try refresh()
        return (try Data(contentsOf: URL(fileURLWithPath: directory + "/" + name)), type)
    }
}
