import Foundation
import Testing

/// A process of the isosweep executable, its output in files so a test can read it at any time.
final class Spawned: @unchecked Sendable {
    // @unchecked: used from one test at a time; Process is thread-safe for these calls.
    let process = Process()
    let stdoutPath: String
    let stderrPath: String
    let name: String

    /// Runs `isosweep arguments...`, or `launcher... isosweep arguments...` (e.g. ip netns exec NS);
    /// with `isosweep: false`, runs `launcher...` alone (another program).
    init(_ arguments: [String], name: String, directory: URL, launcher: [String] = [], isosweep: Bool = true) throws {
        self.name = name
        stdoutPath = directory.appendingPathComponent("\(name).out").path
        stderrPath = directory.appendingPathComponent("\(name).err").path
        _ = FileManager.default.createFile(atPath: stdoutPath, contents: nil)
        _ = FileManager.default.createFile(atPath: stderrPath, contents: nil)
        if launcher.isEmpty {
            process.executableURL = try isosweepExecutable()
            process.arguments = arguments
        } else {
            process.executableURL = URL(fileURLWithPath: launcher[0])
            process.arguments =
                Array(launcher.dropFirst()) + (isosweep ? [try isosweepExecutable().path] : []) + arguments
        }
        process.currentDirectoryURL = directory
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: stdoutPath))
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: stderrPath))
        try process.run()
    }

    var stdout: String { (try? String(contentsOfFile: stdoutPath, encoding: .utf8)) ?? "" }
    var stderr: String { (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? "" }
    var isRunning: Bool { process.isRunning }
    var pid: Int32 { process.processIdentifier }

    /// kill -9.
    func kill9() {
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    /// SIGTERM.
    func terminate() { process.terminate() }

    /// Waits for the exit status, failing the test after `timeout` seconds.
    @discardableResult
    func wait(timeout: TimeInterval) throws -> Int32 {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        if process.isRunning {
            kill9()
            throw CLIError(message: "\(name) did not exit within \(timeout) s; its log:\n\(stderr.suffix(3000))")
        }
        return process.terminationStatus
    }

    deinit {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    }
}

/// Waits until `condition` holds, failing after `timeout` seconds.
func waitUntil(_ what: String, timeout: TimeInterval, _ condition: () throws -> Bool) throws {
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
        if try condition() { return }
        usleep(20_000)
    }
    throw CLIError(message: "timed out after \(timeout) s waiting for \(what)")
}

/// A scratch directory with a sweep file, and helpers to start a coordinator and workers in it.
struct Sandbox {
    let directory: URL

    init() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("isosweep-it-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    func path(_ name: String) -> String { directory.appendingPathComponent(name).path }

    /// Writes a sweep file of small cells (each well under a second in a debug build).
    @discardableResult
    func sweep(
        _ name: String,
        n: Int = 48,
        seeds: [Int] = [0, 1, 2],
        widths: [Int] = [4, 8, 16, 32],
        steps: Int = 1500,
        extra: String = ""
    ) throws -> String {
        let text = """
            name: \(name)
            method: grid
            parameters:
              n: {value: \(n)}
              d: {value: 6}
              width: {values: [\(widths.map(String.init).joined(separator: ", "))]}
              seed: {values: [\(seeds.map(String.init).joined(separator: ", "))]}
              max_steps: {value: \(steps)}
              target_mse: {value: 0}
            \(extra)
            """
        let file = path("\(name).yaml")
        try text.write(toFile: file, atomically: true, encoding: .utf8)
        return file
    }

    func coordinator(
        _ spec: String,
        db: String,
        bind: String = "tcp://127.0.0.1:0",
        name: String = "coordinator",
        extra: [String] = []
    ) throws -> Spawned {
        try Spawned(
            ["coordinator", spec, "--bind", bind, "--db", path(db), "--heartbeat", "0.2", "--liveness", "3"] + extra,
            name: name,
            directory: directory
        )
    }

    func worker(_ endpoint: String, name: String, slots: Int = 1, extra: [String] = []) throws -> Spawned {
        // Debug logs (HELLO attempts, dropped results) make a failure in CI explainable.
        try Spawned(
            [
                "worker", "--connect", endpoint, "--slots", "\(slots)", "--prefetch", "0", "--grace", "1",
                "--log-level", "debug",
            ] + extra,
            name: name,
            directory: directory
        )
    }

    /// The endpoint a coordinator logged once it listens.
    func endpoint(of coordinator: Spawned, pattern: String = #"endpoint=tcp://127\.0\.0\.1:\d+"#) throws -> String {
        var found: String?
        try waitUntil("the coordinator to listen", timeout: 30) {
            guard let range = coordinator.stderr.range(of: pattern, options: .regularExpression) else { return false }
            found = String(coordinator.stderr[range].dropFirst("endpoint=".count))
            return true
        }
        return found!
    }
}

/// Cells a worker log says it started training, in order (key, attempt).
func trainings(in log: String) -> [(key: String, attempt: Int)] {
    log.split(separator: "\n").compactMap { line in
        guard line.contains("training cell"),
            let keyRange = line.range(of: #"key=[0-9a-f]{64}"#, options: .regularExpression),
            let attemptRange = line.range(of: #"attempt=\d+"#, options: .regularExpression)
        else { return nil }
        return (String(line[keyRange].dropFirst(4)), Int(line[attemptRange].dropFirst(8)) ?? 0)
    }
}
