import Diagnostics
import Foundation
import Logging
import SweepCore
import SweepStore
import Synchronization

/// Streams a loading sweep into the scheduler: a thread of its own records the cells in the
/// store and computes what each needs, chunk by chunk; the loop adds the ready chunks to the
/// scheduler between messages. Workers register and get cells while a large sweep is still
/// loading, and the loop's thread spends almost nothing on it.
final class SweepFeed: Sendable {
    /// Cells per chunk: a few milliseconds of the store's time, which the loop's commits share.
    static let chunk = 5_000
    /// Cells loaded but not yet taken at most: the loader waits beyond (bounded memory).
    static let ahead = 20_000

    private struct Shared {
        var chunks: [[Scheduler.CellSeed]] = []
        var pending = 0
        var finished = false
        var failure: IsosweepError?
        /// The loop ended: the loader stops.
        var cancelled = false
    }

    /// Tries of a chunk the store refuses (a second apart) before the load fails.
    static let tries = 30

    private let shared = Mutex(Shared())
    let began: ContinuousClock.Instant
    /// The database, for the log.
    let database: String

    /// Starts loading `load` on a thread of its own.
    init(load: SweepLoad, limits: ResourceLimits, began: ContinuousClock.Instant, database: String) {
        self.began = began
        self.database = database
        // The load is used by the loader thread alone from here on.
        nonisolated(unsafe) let load = load
        let thread = Thread { [self] in
            do {
                while !load.isFinished {
                    while shared.withLock({ $0.pending >= Self.ahead && !$0.cancelled }) {
                        Thread.sleep(forTimeInterval: 0.002)
                    }
                    if shared.withLock({ $0.cancelled }) { return }
                    // A store that refuses a chunk for a moment (busy, a full disk being freed)
                    // is tried again, as the writer does; the chunk is not lost or doubled.
                    var attempt = 1
                    var seeds: [Scheduler.CellSeed]
                    while true {
                        do {
                            seeds = try load.next(limit: Self.chunk)
                            break
                        } catch  where attempt < Self.tries && !shared.withLock({ $0.cancelled }) {
                            attempt += 1
                            Thread.sleep(forTimeInterval: 1)
                        }
                    }
                    try CoordinatorEngine.addRequirements(to: &seeds, resources: limits)
                    shared.withLock {
                        $0.pending += seeds.count
                        $0.chunks.append(seeds)
                    }
                }
                shared.withLock { $0.finished = true }
            } catch {
                let failure = (error as? IsosweepError) ?? IsosweepError(.store, "loading the sweep failed: \(error)")
                shared.withLock { $0.failure = failure }
            }
        }
        thread.name = "isosweep-loader"
        thread.start()
    }

    /// Stops the loader (the loop ended before the sweep had loaded).
    func cancel() {
        shared.withLock { $0.cancelled = true }
    }

    /// Adds the chunks loaded since the last call to the scheduler (finishing its loading after
    /// the last) and returns what dispatching the new cells decided.
    func step(
        _ scheduler: inout Scheduler,
        logger: Logger,
        now: ContinuousClock.Instant
    ) throws(IsosweepError)
        -> [Scheduler.Directive]
    {
        let (chunks, finished, failure) = shared.withLock { shared in
            defer {
                shared.chunks = []
                shared.pending = 0
            }
            return (shared.chunks, shared.finished, shared.failure)
        }
        if let failure { throw failure }
        for seeds in chunks {
            let refused = scheduler.add(seeds)
            if !refused.isEmpty {
                logger.error(
                    "\(refused.count) stored cells have a malformed or repeated key and are skipped (first: \(refused[0].prefix(80)))"
                )
            }
        }
        if finished && scheduler.loading {
            scheduler.finishLoading()
            logger.info(
                "sweep loaded",
                metadata: [
                    "cells": "\(scheduler.cellCount)", "done": "\(scheduler.counts[.done] ?? 0)", "db": "\(database)",
                    "failed": "\(scheduler.counts[.failed] ?? 0)", "ms": "\((now - began).milliseconds)",
                ]
            )
        }
        return chunks.isEmpty ? [] : scheduler.dispatchNow(now: now)
    }
}
