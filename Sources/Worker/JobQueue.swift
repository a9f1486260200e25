import Dispatch
import Synchronization

/// A cell handed to a slot thread.
struct Job: Sendable {
    var session: UInt64
    var lease: UInt64
    var key: String
    var attempt: UInt16
    var work: [UInt8]
}

/// Jobs waiting for a free slot: the network thread adds, slot threads take (blocking).
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

    /// Drops every waiting job (their leases ended) and returns them.
    @discardableResult
    func removeAll() -> [Job] {
        jobs.withLock { queue in
            defer { queue.removeAll() }
            return queue
        }
    }

    /// Keys of the waiting jobs.
    var keys: Set<String> { jobs.withLock { Set($0.map(\.key)) } }

    var count: Int { jobs.withLock { $0.count } }
}
