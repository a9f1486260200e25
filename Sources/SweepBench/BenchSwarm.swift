import ArgumentParser
import CommandSupport
import Foundation
import SweepCore
import SweepStore
import Synchronization
import Worker

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// `isosweep bench swarm`: a real coordinator process and many simulated workers (a few
/// `swarm-load` processes, each holding many DEALER sockets and running the worker's protocol
/// core) over TCP loopback, with no-op cells; optionally with churn and a kill -9 and restart of
/// the coordinator mid-run. Prints JSON figures and checks that every cell was committed once.
struct BenchSwarm: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "swarm",
        abstract:
            "Many simulated workers against a real coordinator process: registration, throughput, latency, memory."
    )

    @Option(help: "Simulated workers.") var workers = 1000
    @Option(help: "Slots of each simulated worker.") var slots = 4
    @Option(help: "No-op cells.") var cells = 1_000_000
    @Option(help: "Processes that hold the simulated workers.") var loads = 4
    @Option(help: "Fraction of the workers that leave (BYE) and come back, per second.") var churn = 0.0
    @Option(help: "Kill -9 the coordinator once this many cells are done, and restart it.")
    var restartCoordinatorAfter: Int?
    @Option(help: "Longest run, in seconds.") var timeout = 600.0

    func validate() throws {
        guard (1...100_000).contains(workers), (1...4096).contains(slots), (1...100_000_000).contains(cells),
            (1...64).contains(loads), loads <= workers, churn >= 0, churn <= 10
        else {
            throw ValidationError(
                "--workers 1-100000, --slots 1-4096, --cells 1-1e8, --loads 1-64 (at most --workers), --churn 0-10"
            )
        }
    }

    func run() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent(
            "isosweep-swarm-\(UUID().uuidString)"
        )
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        var keepLogs = true
        defer { if !keepLogs { try? FileManager.default.removeItem(at: folder) } }
        let db = folder.appendingPathComponent("swarm.db").path
        let figuresFile = folder.appendingPathComponent("coordinator-figures.jsonl").path
        let endpoint = "tcp://127.0.0.1:\(try freeLoopbackPort())"
        let statusPort = try freeLoopbackPort()
        let status = URL(string: "http://127.0.0.1:\(statusPort)/status")!
        let coordinatorArguments = [
            "bench", "coordinator", "bench-swarm", "--cells", "\(cells)", "--figures", figuresFile, "--bind",
            endpoint, "--db", db, "--status-port", "\(statusPort)", "--log-level", "warning",
        ]
        let began = Date()
        var coordinator = try startOwnProcess(
            coordinatorArguments,
            output: folder.appendingPathComponent("coordinator-0.log")
        )
        let loadProcesses = try startLoads(endpoint: endpoint, folder: folder)
        defer {
            for process in [coordinator] + loadProcesses.map(\.process) where process.isRunning {
                kill(process.processIdentifier, SIGKILL)
            }
        }
        let (statusMilliseconds, restarts) = try watchCoordinator(
            &coordinator,
            arguments: coordinatorArguments,
            status: status,
            folder: folder,
            began: began
        )
        let seconds = Date().timeIntervalSince(began)
        guard !coordinator.isRunning else {
            for process in [coordinator] + loadProcesses.map(\.process) { kill(process.processIdentifier, SIGKILL) }
            Output.error("the sweep did not finish within \(timeout) s; logs in \(folder.path)")
            throw ExitCode.failure
        }
        let loadsSaw = stopLoads(loadProcesses)
        let runs = ((try? String(contentsOfFile: figuresFile, encoding: .utf8)) ?? "").split(separator: "\n")
            .compactMap { try? JSONDecoder().decode(CoordinatorBenchmarkFigures.self, from: Data($0.utf8)) }
        let store = try ResultStore(path: db, readOnly: true)
        let stored = try store.resultCount()
        try Output.json(
            figures(
                loadsSaw: loadsSaw,
                runs: runs,
                stored: stored,
                statusMilliseconds: statusMilliseconds,
                restarts: restarts,
                seconds: seconds
            )
        )
        guard stored.rows == cells && stored.distinctKeys == cells else {
            Output.error("\(stored.rows) results stored for \(cells) cells; logs in \(folder.path)")
            throw ExitCode.failure
        }
        keepLogs = false
    }

    /// Starts the `swarm-load` processes, which share the workers out between them, each writing
    /// to its own `load-i.json` in `folder`.
    private func startLoads(endpoint: String, folder: URL) throws -> [(process: Process, output: URL)] {
        var loadProcesses: [(process: Process, output: URL)] = []
        for load in 0..<loads {
            let count = workers / loads + (load < workers % loads ? 1 : 0)
            let output = folder.appendingPathComponent("load-\(load).json")
            let process = try startOwnProcess(
                [
                    "bench", "swarm-load", "--connect", endpoint, "--workers", "\(count)", "--slots", "\(slots)",
                    "--prefix",
                    "\(load)", "--churn", "\(churn)",
                ],
                output: output
            )
            loadProcesses.append((process, output))
        }
        return loadProcesses
    }

    /// GETs /status every 100 ms while the run lasts (until `timeout` seconds after `began`, or
    /// until the coordinator exits with status 0), restarting the coordinator once when asked;
    /// returns the times /status took and the number of restarts. Throws if the coordinator fails.
    private func watchCoordinator(
        _ coordinator: inout Process,
        arguments coordinatorArguments: [String],
        status: URL,
        folder: URL,
        began: Date
    ) throws -> (statusMilliseconds: [Double], restarts: Int) {
        var statusMilliseconds: [Double] = []
        var restarted = false
        var restarts = 0
        while Date().timeIntervalSince(began) < timeout {
            if !coordinator.isRunning {
                if coordinator.terminationStatus == 0 { break }
                Output.error("the coordinator exited with status \(coordinator.terminationStatus)")
                throw ExitCode.failure
            }
            let asked = Date()
            let (data, code, _) = httpGet(status, timeout: 5)
            if code == 200, let data {
                statusMilliseconds.append(Date().timeIntervalSince(asked) * 1000)
                let done = (try? JSONDecoder().decode(Counts.self, from: data))?.counts["done"] ?? 0
                if let after = restartCoordinatorAfter, !restarted, done >= after {
                    kill(coordinator.processIdentifier, SIGKILL)
                    coordinator.waitUntilExit()
                    restarted = true
                    restarts += 1
                    coordinator = try startOwnProcess(
                        coordinatorArguments,
                        output: folder.appendingPathComponent("coordinator-\(restarts).log")
                    )
                }
            }
            Thread.sleep(forTimeInterval: max(0, 0.1 - Date().timeIntervalSince(asked)))
        }
        return (statusMilliseconds, restarts)
    }

    /// Stops the `swarm-load` processes (SIGTERM), waits for them and reads the figures each
    /// printed last.
    private func stopLoads(_ loadProcesses: [(process: Process, output: URL)]) -> [SwarmLoadFigures] {
        for load in loadProcesses { kill(load.process.processIdentifier, SIGTERM) }
        var loadsSaw: [SwarmLoadFigures] = []
        for load in loadProcesses {
            load.process.waitUntilExit()
            let text = (try? String(contentsOf: load.output, encoding: .utf8)) ?? ""
            if let line = text.split(separator: "\n").last(where: { $0.hasPrefix("{") }),
                let figures = try? JSONDecoder().decode(SwarmLoadFigures.self, from: Data(line.utf8))
            {
                loadsSaw.append(figures)
            }
        }
        return loadsSaw
    }

    /// The run's figures, from what the loads saw, the coordinator runs' figures, the stored
    /// results, the times /status took, the restarts and the run's length.
    private func figures(
        loadsSaw: [SwarmLoadFigures],
        runs: [CoordinatorBenchmarkFigures],
        stored: (rows: Int, distinctKeys: Int),
        statusMilliseconds: [Double],
        restarts: Int,
        seconds: Double
    ) -> SwarmFigures {
        let last = runs.last
        let statusSorted = statusMilliseconds.sorted()
        let firstHello = loadsSaw.map(\.firstHello).filter { $0 > 0 }.min() ?? 0
        let lastWelcome = loadsSaw.map(\.lastFirstWelcome).max() ?? 0
        return SwarmFigures(
            workers: workers,
            welcomed: loadsSaw.reduce(0) { $0 + $1.welcomed },
            cells: cells,
            committedOnce: stored.rows == cells && stored.distinctKeys == cells,
            resultRows: stored.rows,
            registeredSeconds: max(0, lastWelcome - firstHello),
            cellsPerSecond: (last?.dispatchSeconds ?? 0) > 0 ? Double(last!.committed) / last!.dispatchSeconds : 0,
            p50Milliseconds: last?.p50Milliseconds ?? 0,
            p99Milliseconds: runs.map(\.p99Milliseconds).max() ?? 0,
            coordinatorPeakRSSBytes: runs.map(\.peakRSSBytes).max() ?? 0,
            statusP99Milliseconds: statusSorted.isEmpty
                ? 0 : statusSorted[min(statusSorted.count - 1, Int(0.99 * Double(statusSorted.count)))],
            firstDispatchSeconds: runs.first?.firstDispatchSeconds ?? 0,
            restarts: restarts,
            leaves: loadsSaw.reduce(0) { $0 + $1.leaves },
            seconds: seconds
        )
    }

    struct Counts: Decodable { var counts: [String: Int] }
}

/// The figures of `isosweep bench swarm`.
struct SwarmFigures: Encodable {
    var workers: Int
    var welcomed: Int
    var cells: Int
    /// Every cell has exactly one stored result.
    var committedOnce: Bool
    var resultRows: Int
    /// From the first HELLO to the last worker's first WELCOME.
    var registeredSeconds: Double
    /// Of the last coordinator run, from its first dispatch to its last commit.
    var cellsPerSecond: Double
    var p50Milliseconds: Double
    var p99Milliseconds: Double
    var coordinatorPeakRSSBytes: Int
    var statusP99Milliseconds: Double
    var firstDispatchSeconds: Double
    var restarts: Int
    var leaves: Int
    var seconds: Double

    enum CodingKeys: String, CodingKey {
        case workers, welcomed, cells, restarts, leaves, seconds
        case committedOnce = "committed_exactly_once"
        case resultRows = "result_rows"
        case registeredSeconds = "registered_seconds"
        case cellsPerSecond = "cells_per_second"
        case p50Milliseconds = "p50_dispatch_to_commit_ms"
        case p99Milliseconds = "p99_dispatch_to_commit_ms"
        case coordinatorPeakRSSBytes = "coordinator_peak_rss_bytes"
        case statusP99Milliseconds = "status_p99_ms"
        case firstDispatchSeconds = "first_dispatch_seconds"
    }
}
