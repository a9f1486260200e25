import Logging
public import ServiceLifecycle
import Synchronization

/// The coordinator as a long-running service: SIGTERM/SIGINT stop dispatching, commit what
/// arrives and return cleanly.
public final class CoordinatorService: Service, Sendable {
    /// The engine it runs.
    public let engine: CoordinatorEngine
    private let progress: @Sendable (CoordinatorProgress) -> Void
    private let result = Mutex<CoordinatorOutcome?>(nil)

    public init(engine: CoordinatorEngine, progress: @escaping @Sendable (CoordinatorProgress) -> Void) {
        self.engine = engine
        self.progress = progress
    }

    /// How the run ended, once it has.
    public var outcome: CoordinatorOutcome? { result.withLock { $0 } }

    public func run() async throws {
        let engine = self.engine
        let outcome = try await withGracefulShutdownHandler {
            try await engine.run(progress: progress)
        } onGracefulShutdown: {
            engine.requestStop()
        }
        result.withLock { $0 = outcome }
    }
}
