public import ArgumentParser
import Coordinator
import Foundation
public import Logging
import SweepCore
import Synchronization

extension Logger.Level: @retroactive ExpressibleByArgument {}

/// Logging options shared by the long-running commands.
public struct LogOptions: ParsableArguments {
    /// The options at their defaults (ArgumentParser fills them in).
    public init() {}

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.") public var logLevel:
        Logger.Level = .info

    /// Sends logs to standard error at the chosen level, once per process.
    public func bootstrap(label: String) -> Logger {
        let level = logLevel
        LoggingSystem.bootstrap { name in
            var handler = StreamLogHandler.standardError(label: name)
            handler.logLevel = level
            return handler
        }
        return Logger(label: label)
    }
}

/// Shows a sweep's progress: one updating line on a terminal, plain log lines otherwise.
final class ProgressPrinter: Sendable {
    let terminal = isatty(STDERR_FILENO) == 1
    let lastLine = Mutex<ContinuousClock.Instant?>(nil)

    func show(_ p: CoordinatorProgress) {
        let eta = p.eta.map { Units.formatDuration($0) } ?? "-"
        let line =
            "cells \(p.done)/\(p.total) done, \(p.failed) failed, \(p.leased) running, \(String(format: "%.1f", p.rate))/s, ETA \(eta), workers \(p.workers)"
        if terminal {
            FileHandle.standardError.write(Data("\r\u{1B}[K\(line)".utf8))
        } else {
            let now = ContinuousClock.now
            let due = lastLine.withLock { last -> Bool in
                if let last, now - last < .seconds(10), p.done + p.failed < p.total { return false }
                last = now
                return true
            }
            if due { FileHandle.standardError.write(Data("progress: \(line)\n".utf8)) }
        }
    }

    func finish() {
        if terminal { FileHandle.standardError.write(Data("\n".utf8)) }
    }
}
