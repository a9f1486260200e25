import Foundation
import Testing

/// The built `isosweep` executable, next to the test bundle (or named by ISOSWEEP_BIN).
func isosweepExecutable() throws -> URL {
    if let path = ProcessInfo.processInfo.environment["ISOSWEEP_BIN"] { return URL(fileURLWithPath: path) }
    var directory = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
    for _ in 0..<4 {
        let candidate = directory.appendingPathComponent("isosweep")
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: candidate.path, isDirectory: &isDirectory), !isDirectory.boolValue {
            return candidate
        }
        directory.deleteLastPathComponent()
    }
    throw CLIError(
        message: "isosweep executable not found next to \(CommandLine.arguments[0]): run `swift build` first"
    )
}

struct CLIError: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}

/// What a finished process printed and how it ended.
struct Finished {
    var status: Int32
    var stdout: String
    var stderr: String

    /// Standard output as one JSON object.
    func json() throws -> [String: Any] {
        let object = try JSONSerialization.jsonObject(with: Data(stdout.utf8))
        return try #require(object as? [String: Any], "not a JSON object: \(stdout)")
    }
}

/// Runs isosweep with `arguments` to completion, killing it after `timeout` seconds; `environment`
/// changes this process's environment for it (nil values remove a variable).
func runIsosweep(
    _ arguments: [String],
    timeout: TimeInterval = 120,
    environment: [String: String?] = [:]
) throws -> Finished {
    let process = Process()
    process.executableURL = try isosweepExecutable()
    process.arguments = arguments
    if !environment.isEmpty {
        var merged = ProcessInfo.processInfo.environment
        for (name, value) in environment { merged[name] = value }
        process.environment = merged
    }
    let out = Pipe()
    let err = Pipe()
    process.standardOutput = out
    process.standardError = err
    process.standardInput = FileHandle.nullDevice
    try process.run()
    // Read both pipes while the process runs, so a chatty process cannot fill a pipe and stall.
    let group = DispatchGroup()
    nonisolated(unsafe) var stdoutData = Data()
    nonisolated(unsafe) var stderrData = Data()
    group.enter()
    DispatchQueue.global().async {
        stdoutData = out.fileHandleForReading.readDataToEndOfFile()
        group.leave()
    }
    group.enter()
    DispatchQueue.global().async {
        stderrData = err.fileHandleForReading.readDataToEndOfFile()
        group.leave()
    }
    let deadline = Date().addingTimeInterval(timeout)
    while process.isRunning && Date() < deadline { usleep(10_000) }
    if process.isRunning {
        process.terminate()
        process.waitUntilExit()
        throw CLIError(message: "isosweep \(arguments.joined(separator: " ")) did not finish within \(timeout) s")
    }
    process.waitUntilExit()
    group.wait()
    return Finished(
        status: process.terminationStatus,
        stdout: String(decoding: stdoutData, as: UTF8.self),
        stderr: String(decoding: stderrData, as: UTF8.self)
    )
}
