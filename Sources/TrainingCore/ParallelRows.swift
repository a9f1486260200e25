import Glibc

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
    /// calling thread, each other on a thread of its own, joined before returning), in part
    /// order.
    ///
    /// Threads of its own, not `DispatchQueue.concurrentPerform`: measured on the 2-core machine,
    /// Dispatch ran both parts one after the other on the calling thread.
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
            var threads: [pthread_t] = []
            for p in 1..<parts {
                let task = Unmanaged.passRetained(Task { results[p] = body(p) })
                var thread = pthread_t()
                let status = pthread_create(
                    &thread,
                    nil,
                    { context in
                        let task = Unmanaged<Task>.fromOpaque(context!).takeRetainedValue()
                        task.run()
                        return nil
                    },
                    task.toOpaque()
                )
                if status == 0 {
                    threads.append(thread)
                } else {
                    // No thread to be had: the part runs here, with the same result.
                    task.takeRetainedValue().run()
                }
            }
            results[0] = body(0)
            for thread in threads { pthread_join(thread, nil) }
        }
        return (0..<parts).map { results[$0]! }
    }

    /// A part's work, handed to its thread.
    private final class Task {
        let run: () -> Void
        init(_ run: @escaping () -> Void) { self.run = run }
    }
}
