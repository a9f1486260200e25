import CPosix
import Diagnostics
import Foundation
import Glibc
import Synchronization

/// A cell-runner child process of this worker (`isosweep runner`): the same executable, with the
/// channel's pipes on its fds 3 and 4. Spawned with posix_spawn and reaped with waitpid here, so
/// that its end and its cause (exit status or signal) are known exactly.
final class RunnerProcess {
    let pid: pid_t
    /// Where jobs go (the runner's fd 3).
    let input: Int32
    /// Where outcomes come from (the runner's fd 4).
    let output: Int32
    /// Frames read from `output`.
    var outcomes: RunnerChannel.Reader
    private var reaped = false

    /// Starts a runner of `executable` (default: this process's own executable).
    init(executable: String = RunnerProcess.ownExecutable) throws(IsosweepError) {
        // One spawn at a time: the pipes are made close-on-exec before any other runner starts,
        // so only this runner's dup2'd copies (3, 4) cross its exec, no other runner holds them
        // open, and this runner's death is seen as end-of-file.
        let spawned = Self.spawning.withLock { _ in Self.spawn(executable) }
        switch spawned {
        case .success(let (child, input, output)):
            pid = child
            self.input = input
            self.output = output
            outcomes = RunnerChannel.Reader(output)
        case .failure(let error):
            throw error
        }
    }

    private static let spawning = Mutex(())

    private static func spawn(_ executable: String) -> Result<(pid_t, Int32, Int32), IsosweepError> {
        var toRunner: [Int32] = [0, 0]
        var fromRunner: [Int32] = [0, 0]
        // Close-on-exec from the start (pipe2): a process that another thread spawns between
        // pipe() and fcntl() would otherwise inherit these ends and hold the channel open.
        guard isosweep_pipe_cloexec(&toRunner) == 0 else { return .failure(failure("pipe2")) }
        guard isosweep_pipe_cloexec(&fromRunner) == 0 else {
            close(toRunner[0])
            close(toRunner[1])
            return .failure(failure("pipe2"))
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, toRunner[0], RunnerChannel.runnerInput)
        posix_spawn_file_actions_adddup2(&actions, fromRunner[1], RunnerChannel.runnerOutput)
        let arguments = [executable, "runner"]
        var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        var child: pid_t = 0
        let status = posix_spawn(&child, executable, &actions, nil, &argv, environ)
        close(toRunner[0])
        close(fromRunner[1])
        guard status == 0 else {
            close(toRunner[1])
            close(fromRunner[0])
            return .failure(
                IsosweepError(
                    .worker,
                    "cannot start a cell runner (\(executable) runner): \(String(cString: strerror(status)))"
                )
            )
        }
        return .success((child, toRunner[1], fromRunner[0]))
    }

    /// This process's executable, for runners of the same build.
    static var ownExecutable: String { OwnExecutable.path }

    private static func failure(_ call: String) -> IsosweepError {
        IsosweepError(.worker, "cannot start a cell runner: \(call): \(String(cString: strerror(errno)))")
    }

    /// Kills the runner (SIGKILL) and reaps it.
    func kill() {
        guard !reaped else { return }
        _ = Glibc.kill(pid, SIGKILL)
        _ = waitForExit()
    }

    /// Waits for the runner to end and says how: "exited with status 3", "killed by SIGSEGV".
    func waitForExit() -> String {
        guard !reaped else { return "already ended" }
        reaped = true
        close(input)
        close(output)
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 {
            if errno != EINTR { return "ended (waitpid: \(String(cString: strerror(errno))))" }
        }
        // WIFEXITED / WTERMSIG, which Swift does not import as functions.
        let signal = status & 0x7f
        if signal == 0 { return "exited with status \((status >> 8) & 0xff)" }
        if signal == SIGKILL {
            return "killed by SIGKILL, not by its worker: killed by the kernel (likely out of memory), or kill -9"
        }
        return "killed by \(Self.name(ofSignal: signal))"
    }

    /// The runner's resident memory in bytes (from /proc/PID/statm), nil once it is gone.
    var residentBytes: UInt64? {
        let fd = open("/proc/\(pid)/statm", O_RDONLY)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 128)
        let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        guard count > 0 else { return nil }
        let fields = String(decoding: buffer[0..<count], as: UTF8.self).split(separator: " ")
        guard fields.count >= 2, let pages = UInt64(fields[1]) else { return nil }
        return pages * UInt64(sysconf(Int32(_SC_PAGESIZE)))
    }

    /// SIGKILL, SIGSEGV, ... (or "signal N").
    static func name(ofSignal signal: Int32) -> String {
        let names: [Int32: String] = [
            SIGKILL: "SIGKILL", SIGSEGV: "SIGSEGV", SIGABRT: "SIGABRT", SIGBUS: "SIGBUS", SIGILL: "SIGILL",
            SIGFPE: "SIGFPE", SIGTERM: "SIGTERM", SIGINT: "SIGINT", SIGPIPE: "SIGPIPE", SIGTRAP: "SIGTRAP",
        ]
        return names[signal] ?? "signal \(signal)"
    }

    deinit {
        kill()
    }
}

/// This process's executable file, to start more processes of the same build.
public enum OwnExecutable {
    public static var path: String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    }
}
