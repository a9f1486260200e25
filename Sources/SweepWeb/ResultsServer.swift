import Coordinator
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
            html(ResultsPages.failure(database: database, error: error), status: .internalServerError)
        }
        /// `page` built off the cooperative pool (it reads SQLite), or the error as a page.
        @Sendable func respond(_ page: @escaping @Sendable () throws -> Response) async -> Response {
            do { return try await blockingWork(page) } catch { return failure(error) }
        }
        router.get("/") { _, _ -> Response in
            await respond { html(try report.index()) }
        }
        router.get("/cells") { request, _ -> Response in
            var query: [String: String] = [:]
            for (key, value) in request.uri.queryParameters {
                query[String(key)] = String(value).removingPercentEncoding
            }
            return await respond { [query] in html(try ResultsPages.cellTable(try store(), query: query)) }
        }
        router.get("/cell/:key") { _, context -> Response in
            let key = context.parameters.get("key") ?? ""
            return await respond {
                guard let page = try ResultsPages.cellPage(try store(), key: key) else {
                    return html(ResultsPages.noCell(key: key), status: .notFound)
                }
                return html(page)
            }
        }
        router.get("/failed") { _, _ -> Response in
            await respond { html(try ResultsPages.failedPage(try store())) }
        }
        router.get("/status") { _, _ -> Response in
            await respond {
                let data = try JSONEncoder().encode(try status(try store(), database: database))
                return Response(
                    status: .ok,
                    headers: [.contentType: "application/json"],
                    body: .init(byteBuffer: ByteBuffer(bytes: data))
                )
            }
        }
        // The report's figures and files, next to index.html.
        router.get("/:file") { _, context -> Response in
            let name = context.parameters.get("file") ?? ""
            return await respond {
                guard let (data, type) = try? report.file(name) else {
                    return html("<p>no such page</p>", status: .notFound)
                }
                return Response(
                    status: .ok,
                    headers: [.contentType: type],
                    body: .init(byteBuffer: ByteBuffer(bytes: data))
                )
            }
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
/// seconds when asked for. Its methods block (they read SQLite and write files): call them off the
/// cooperative pool (`blockingWork`). One refresh runs at a time; a caller that comes during one
/// waits for it on its own thread, and requests for the other pages never wait for it.
final class ReportCache: Sendable {
    let database: String
    let directory: String
    /// When the report was last written; held for a refresh and a read, so they take turns.
    private let written = Mutex<ContinuousClock.Instant?>(nil)

    init(database: String) {
        self.database = database
        directory =
            FileManager.default.temporaryDirectory.appendingPathComponent("isosweep-serve-\(UUID().uuidString)")
            .path
    }

    deinit { try? FileManager.default.removeItem(atPath: directory) }

    /// `read` of the report folder, after rewriting it if it is older than ten seconds; under the
    /// lock, so no read sees a report half rewritten.
    func withFreshReport<T>(_ read: () throws -> T) throws -> T {
        try written.withLock { last in
            if last == nil || ContinuousClock.now - last! >= .seconds(10) {
                try ReportWriter.write(store: try ResultStore(path: database, readOnly: true), directory: directory)
                last = .now
            }
            return try read()
        }
    }

    /// index.html with the navigation bar.
    func index() throws -> String {
        let page = try withFreshReport { try String(contentsOfFile: directory + "/index.html", encoding: .utf8) }
        return page.replacingOccurrences(of: "<body>", with: "<body>\n" + ResultsPages.navigation)
    }

    /// A file of the report (figures, report.md, analysis.json), by name only.
    func file(_ name: String) throws -> (Data, String)? {
        let types = ["svg": "image/svg+xml", "png": "image/png", "json": "application/json", "md": "text/markdown"]
        guard !name.contains("/"), !name.hasPrefix("."), let type = types[(name as NSString).pathExtension] else {
            return nil
        }
        return (try withFreshReport { try Data(contentsOf: URL(fileURLWithPath: directory + "/" + name)) }, type)
    }
}
