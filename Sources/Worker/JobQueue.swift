import Dispatch
import Synchronization

/// Jobs on their way to slot threads: the network thread pushes every job the worker core hands
/// out; slot threads take them in order (blocking); a recall takes back those not yet taken.
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

    /// Takes back every job no slot has taken yet.
    func removeAll() -> [Job] {
        jobs.withLock { queue in
            defer { queue.removeAll() }
            return queue
        }
    }
}
