import Foundation
public import Logging
public import ServiceLifecycle

/// Worker processes of this same executable on this machine (the embedded default of
/// `isosweep run`): the same code path as a cluster, over loopback TCP.
public final class LocalWorkers: Service, Sendable {
    let count: Int
    let arguments: @Sendable (String) -> [String]
    let endpoint: @Sendable () -> String?
    let logger: Logger

    /// `count` processes started with `arguments(endpoint)` once `endpoint()` is known.
    public init(
        count: Int,
        logger: Logger,
        endpoint: @escaping @Sendable () -> String?,
        arguments: @escaping @Sendable (String) -> [String]
    ) {
        self.count = count
        self.logger = logger
        self.endpoint = endpoint
        self.arguments = arguments
    }

    /// Starts the processes once the endpoint is known, and stops them when the service ends.
    public func run() async throws {
        var bound: String?
        while bound == nil {
            bound = endpoint()
            if bound == nil { try await Task.sleep(for: .milliseconds(10)) }
        }
        let executable = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        let processes = try (0..<count).map { _ in
            let process = Process()
            process.executableURL = executable
            process.arguments = arguments(bound!)
            process.standardInput = FileHandle.nullDevice
            try process.run()
            return process
        }
        logger.info("started \(count) local workers", metadata: ["endpoint": "\(bound!)"])
        await withGracefulShutdownHandler {
            while processes.contains(where: \.isRunning) && !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(100))
            }
        } onGracefulShutdown: {
            for process in processes where process.isRunning { process.terminate() }
        }
        // Cancelled or shut down: SIGTERM, then SIGKILL whatever has not exited within 15 s.
        for process in processes where process.isRunning { process.terminate() }
        let deadline = ContinuousClock.now + .seconds(15)
        while processes.contains(where: \.isRunning) && ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(50))
        }
        for process in processes where process.isRunning { kill(process.processIdentifier, SIGKILL) }
    }
}
