import ArgumentParser
import CommandSupport
import Foundation
import SweepCore
import SweepStore
import Worker

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// `isosweep bench soak`: kills (SIGKILL) and restarts the coordinator again and again during a
/// sweep with real worker processes, and reports how long each restart took until every worker
/// was registered again, and that no cell was lost or recorded twice.
struct BenchSoak: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "soak",
        abstract: "Kill -9 and restart the coordinator many times during a sweep; time the workers' return."
    )

    @Option(help: "Coordinator restarts.") var restarts = 100
    @Option(help: "Worker processes.") var workers = 3
    @Option(help: "Cells of the sweep (small training cells, ~50 ms each).") var cells = 20000
    @Option(help: "Seconds each coordinator runs after its workers are back, before the kill: from 0.5 to this.")
    var upTo = 1.5
    @Option(help: "Longest wait for the workers after a restart, in seconds.") var patience = 120.0
    @Option(help: "Keep the logs and database in this folder (default: a temporary one, removed).") var keep: String?
    @Option(
        help:
            "The coordinator's port (default: one the kernel picks, which is odd; an even port in the ephemeral range lets workers' sockets connect to themselves while it is down)."
    )
    var port: Int?

    func validate() throws {
        guard (1...10_000).contains(restarts), (1...64).contains(workers), (10...1_000_000).contains(cells) else {
            throw ValidationError("--restarts 1-10000, --workers 1-64 and --cells 10-1000000")
        }
        guard upTo >= 0.5, patience > 0 else {
            throw ValidationError("--up-to must be at least 0.5, --patience positive")
        }
        if let port, !(1...65535).contains(port) { throw ValidationError("--port must be between 1 and 65535") }
    }

    func run() throws {
        let folder =
            keep.map { URL(fileURLWithPath: $0) }
            ?? FileManager.default.temporaryDirectory.appendingPathComponent("isosweep-soak-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { if keep == nil { try? FileManager.default.removeItem(at: folder) } }
        let spec = folder.appendingPathComponent("soak.yaml").path
        try writeSpec(to: spec)
        let db = folder.appendingPathComponent("soak.db").path
        let port = try self.port ?? freeLoopbackPort()
        let statusPort = try freeLoopbackPort()
        let endpoint = "tcp://127.0.0.1:\(port)"
        let status = URL(string: "http://127.0.0.1:\(statusPort)/status")!
        func start(_ arguments: [String], log name: String) throws -> Process {
            try startOwnProcess(arguments, output: folder.appendingPathComponent(name))
        }
        let coordinatorArguments = [
            "coordinator", spec, "--bind", endpoint, "--db", db, "--status-port", "\(statusPort)", "--log-level",
            "info",
        ]
        let pool = try (0..<workers).map {
            try start(
                ["worker", "--connect", endpoint, "--slots", "1", "--cores", "1", "--log-level", "info"],
                log: "worker-\($0).log"
            )
        }
        defer {
            for worker in pool where worker.isRunning { kill(worker.processIdentifier, SIGKILL) }
        }
        var back: [Double] = []
        let began = Date()
        for restart in 0...restarts {
            let started = Date()
            let coordinator = try start(coordinatorArguments, log: "coordinator-\(restart).log")
            let (registered, finished) = awaitWorkers(coordinator, startedAt: started, status: status)
            if finished || !coordinator.isRunning {
                // The sweep ended before the restarts did: this coordinator finishes it.
                coordinator.waitUntilExit()
                FileHandle.standardError.write(
                    Data("the sweep finished after \(restart) restarts: give it more --cells\n".utf8)
                )
                break
            }
            if registered {
                back.append(Date().timeIntervalSince(started))
            } else {
                FileHandle.standardError.write(
                    Data("restart \(restart): the workers were not all back within \(patience) s\n".utf8)
                )
                back.append(patience)
            }
            if restart == restarts {
                coordinator.waitUntilExit()  // the last one runs the sweep to its end
                break
            }
            Thread.sleep(forTimeInterval: Double.random(in: 0.5...upTo))
            kill(coordinator.processIdentifier, SIGKILL)
            coordinator.waitUntilExit()
        }
        try finishAndReport(
            db: db,
            coordinatorArguments: coordinatorArguments,
            folder: folder,
            back: back,
            began: began
        )
    }

    /// Writes the soak sweep's spec to `path`: small training cells, four widths and as many
    /// seeds as make at least `cells` cells.
    private func writeSpec(to path: String) throws {
        let seeds = (cells + 3) / 4
        try """
        name: soak
        parameters:
          n: {value: 128}
          d: {value: 8}
          width: {values: [2, 4, 6, 8]}
          seed: {values: [\((0..<seeds).map(String.init).joined(separator: ", "))]}
          max_steps: {value: 3000}
          target_mse: {value: 0}
        """.write(toFile: path, atomically: true, encoding: .utf8)
    }

    /// Polls `status` every 20 ms until all the workers are registered with `coordinator`, the
    /// sweep has finished, the coordinator has exited or `patience` seconds have passed since
    /// `started`.
    private func awaitWorkers(
        _ coordinator: Process,
        startedAt started: Date,
        status: URL
    ) -> (registered: Bool, finished: Bool) {
        var registered = false
        var finished = false
        while Date().timeIntervalSince(started) < patience && coordinator.isRunning {
            let (data, code, _) = httpGet(status, timeout: 2)
            if code == 200, let data, let snapshot = try? JSONDecoder().decode(Snapshot.self, from: data) {
                finished = snapshot.finished
                if finished { break }
                if snapshot.workers.count == workers {
                    registered = true
                    break
                }
            }
            Thread.sleep(forTimeInterval: 0.02)
        }
        return (registered, finished)
    }

    /// Makes sure a coordinator finished the sweep (the sweep may have finished early: then runs
    /// one more, logging to `coordinator-final.log` in `folder`), then prints the report from the
    /// database `db` and the restart times `back`.
    private func finishAndReport(
        db: String,
        coordinatorArguments: [String],
        folder: URL,
        back: [Double],
        began: Date
    ) throws {
        let store = try ResultStore(path: db, readOnly: true)
        var stored = try store.cells()
        if stored.contains(where: { $0.state != .done && $0.inSweep }) {
            let last = try startOwnProcess(
                coordinatorArguments,
                output: folder.appendingPathComponent("coordinator-final.log")
            )
            last.waitUntilExit()
            stored = try ResultStore(path: db, readOnly: true).cells()
        }
        let results = try ResultStore(path: db, readOnly: true).results()
        let sorted = back.sorted()
        try Output.json(
            SoakReport(
                restarts: back.count,
                workers: workers,
                cells: stored.filter(\.inSweep).count,
                done: stored.filter { $0.inSweep && $0.state == .done }.count,
                results: results.count,
                distinctResults: Set(results.map(\.key)).count,
                secondsUntilWorkersBack: back,
                maximumSeconds: sorted.last ?? 0,
                medianSeconds: sorted.isEmpty ? 0 : sorted[sorted.count / 2],
                seconds: Date().timeIntervalSince(began)
            )
        )
    }

    /// The part of /status this benchmark reads.
    struct Snapshot: Decodable {
        struct Worker: Decodable { var id: String }
        var workers: [Worker]
        var finished: Bool
    }
}

/// The figures of `isosweep bench soak`.
struct SoakReport: Encodable {
    var restarts: Int
    var workers: Int
    var cells: Int
    var done: Int
    var results: Int
    var distinctResults: Int
    var secondsUntilWorkersBack: [Double]
    var maximumSeconds: Double
    var medianSeconds: Double
    var seconds: Double

    enum CodingKeys: String, CodingKey {
        case restarts, workers, cells, done, results, seconds
        case distinctResults = "distinct_results"
        case secondsUntilWorkersBack = "seconds_until_workers_back"
        case maximumSeconds = "max_seconds_until_workers_back"
        case medianSeconds = "median_seconds_until_workers_back"
    }
}

/// A TCP port nothing listens on now (the kernel's choice for port 0).
func freeLoopbackPort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw ValidationError("cannot open a socket to find a free port") }
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = 0
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0
        }
    }
    guard bound else { throw ValidationError("cannot find a free port") }
    return Int(UInt16(bigEndian: address.sin_port))
}

/// Starts this executable with `arguments`, its standard output and error going to `output`
/// (created or emptied).
func startOwnProcess(_ arguments: [String], output: URL) throws -> Process {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: OwnExecutable.path)
    process.arguments = arguments
    _ = FileManager.default.createFile(atPath: output.path, contents: nil)
    let handle = try FileHandle(forWritingTo: output)
    process.standardOutput = handle
    process.standardError = handle
    try process.run()
    return process
}
