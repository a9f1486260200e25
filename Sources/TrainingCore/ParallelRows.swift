import Glibc
import Synchronization

/// Splits the row passes of the Lipschitz search (the ones that are not GEMMs, which OpenBLAS
/// threads itself) over the cell's threads: contiguous parts, each on its own thread, each row
/// computed exactly as on one thread, so that what a search finds never depends on the split.
enum ParallelRows {
    /// Rows below which a part is not worth a thread.
    static let minimumRows = 8
    /// Rows below which a part of the ascent's batch is not worth a thread (its GEMMs would be too
    /// thin): the float64 polish's 16 + 16 rows still split in two.
    static let minimumAscentRows = 16

    /// How many parts a pass over `rows` rows takes: one a BLAS thread (the cell's threads), as
    /// long as each has `minimumRows`. Only the time depends on it: every row is computed alike.
    static func parts(_ rows: Int) -> Int { max(1, min(BLAS.threads, rows / minimumRows)) }

    /// body(range) for every range of `ranges(count, parts:)`, concurrently when there are several.
    static func forEach(_ count: Int, parts: Int, _ body: (Range<Int>) -> Void) {
        let ranges = ranges(count, parts: parts)
        _ = map(ranges.count) { body(ranges[$0]) }
    }

    /// 0..<count in `parts` contiguous ranges whose sizes differ by at most one (at least one
    /// range, none empty unless `count` is 0).
    static func ranges(_ count: Int, parts: Int) -> [Range<Int>] {
        let parts = max(1, min(parts, count))
        return (0..<parts).map { p in (p * count / parts)..<((p + 1) * count / parts) }
    }

    /// body(p) for every p in 0..<parts, concurrently when there is more than one (part 0 on the
    /// calling thread, each other on a thread of `WorkerThreads`), in part order.
    ///
    /// Threads of its own, not `DispatchQueue.concurrentPerform`: measured on the 2-core machine,
    /// Dispatch ran both parts one after the other on the calling thread. They are kept between
    /// calls: a search splits every one of its steps, and a new thread each time cost ~5% of it.
    static func map<T>(_ parts: Int, _ body: (Int) -> T) -> [T] {
        guard parts > 1 else { return parts == 1 ? [body(0)] : [] }
        let results = UnsafeMutablePointer<T?>.allocate(capacity: parts)
        results.initialize(repeating: nil, count: parts)
        defer {
            results.deinitialize(count: parts)
            results.deallocate()
        }
        withoutActuallyEscaping(body) { body in
            // Each part writes only its own slot, and `body` only reads what the callers share
            // (they mutate nothing until `map` returns).
            let workers = (1..<parts).map { p in WorkerThreads.start { results[p] = body(p) } }
            results[0] = body(0)
            for worker in workers { worker.wait() }
        }
        return (0..<parts).map { results[$0]! }
    }
}

/// Threads that run one job at a time and wait for the next: idle ones are reused, and a new one
/// is started only when none is idle (so nested splits, as the search's inside the bounds' own,
/// never wait for each other).
final class WorkerThreads: @unchecked Sendable {
    // Allocated once: pthread objects must not move. A worker lives as long as the process.
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let condition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    // Guarded by `mutex`.
    private var job: (() -> Void)?
    private var finished = false

    private static let idle = Mutex<[WorkerThreads]>([])

    private init?() {
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(condition, nil)
        var thread = pthread_t()
        let context = Unmanaged.passRetained(self).toOpaque()
        let status = pthread_create(
            &thread,
            nil,
            { context in
                Unmanaged<WorkerThreads>.fromOpaque(context!).takeRetainedValue().serve()
                return nil
            },
            context
        )
        guard status == 0 else {
            Unmanaged<WorkerThreads>.fromOpaque(context).release()
            return nil
        }
        pthread_detach(thread)
    }

    /// Runs `job` on an idle thread (or a new one; or here, when no thread can be started).
    static func start(_ job: @escaping () -> Void) -> Handle {
        let reused = idle.withLock { $0.popLast() }
        guard let worker = reused ?? WorkerThreads() else {
            job()
            return Handle(worker: nil)
        }
        pthread_mutex_lock(worker.mutex)
        worker.job = job
        worker.finished = false
        pthread_cond_broadcast(worker.condition)
        pthread_mutex_unlock(worker.mutex)
        return Handle(worker: worker)
    }

    /// A started job, to wait for.
    struct Handle {
        fileprivate let worker: WorkerThreads?

        /// Returns once the job has run; its thread is then idle again.
        func wait() {
            guard let worker else { return }
            pthread_mutex_lock(worker.mutex)
            while !worker.finished { pthread_cond_wait(worker.condition, worker.mutex) }
            pthread_mutex_unlock(worker.mutex)
            WorkerThreads.idle.withLock { $0.append(worker) }
        }
    }

    private func serve() {
        while true {
            pthread_mutex_lock(mutex)
            while job == nil { pthread_cond_wait(condition, mutex) }
            var run = job
            job = nil
            pthread_mutex_unlock(mutex)
            run?()
            // Released before the caller hears of it: `map`'s body must not outlive the call.
            run = nil
            pthread_mutex_lock(mutex)
            finished = true
            pthread_cond_broadcast(condition)
            pthread_mutex_unlock(mutex)
        }
    }
}
