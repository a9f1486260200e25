import Dispatch
import Synchronization

/// Jobs on their way to slot threads: the network thread pushes one only when the worker core
/// has a free slot for it; slot threads take them (blocking).
final class JobQueue: Sendable {
    private let jobs = Mutex<[Job]>([])
    private let available = DispatchSemaphore(value: 0)

    func push(_ job: Job) {
        jobs.withLock { $0.append(job) }
        available.signal()
    }

    /// The oldest job, or nil after `timeout` (so slots can notice a stop).
    func pop(timeout: DispatchTime) -> Job? {
        guard available.wait(timeout: timeout) == .success else { return nil }
        return jobs.withLock { $0.isEmpty ? nil : $0.removeFirst() }
    }
}
