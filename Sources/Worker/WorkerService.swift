import Diagnostics
public import ServiceLifecycle

/// The worker daemon as a service: SIGTERM/SIGINT finish or hand back its cells, then BYE.
public final class WorkerService: Service, Sendable {
    public let engine: WorkerEngine

    public init(engine: WorkerEngine) {
        self.engine = engine
    }

    public func run() async throws {
        let engine = self.engine
        let exit = try await withGracefulShutdownHandler {
            try await engine.run()
        } onGracefulShutdown: {
            engine.requestStop()
        }
        if case .refused(let reason) = exit {
            throw IsosweepError(.refused, "the coordinator refused this worker: \(reason)")
        }
    }
}
