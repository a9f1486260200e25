import Dispatch

/// Runs blocking work (SQLite reads, writing the report) on `queue`'s threads and suspends the
/// caller until it is done: the request handlers run on Swift's cooperative pool, which has one
/// thread per core, and a handler that blocked there would stall every other request.
///
/// A serial `queue` also makes the work one at a time: callers that arrive while it runs wait
/// their turn without holding a thread.
func blockingWork<T: Sendable>(
    on queue: DispatchQueue = .global(),
    _ work: @escaping @Sendable () throws -> T
) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        queue.async { continuation.resume(with: Result { try work() }) }
    }
}
