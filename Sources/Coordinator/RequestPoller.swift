import Logging
import SweepCore
import SweepStore

/// Picks up users' requests from the database (`isosweep requeue`, `isosweep cancel`) about
/// once a second and turns them into scheduler events. Reads go through a read-only connection
/// of their own, so that the loop never waits behind the writer's transaction; marking requests
/// applied (rare) goes through the store.
struct RequestPoller {
    let store: ResultStore
    let logger: Logger
    var reader: ResultStore?
    var last = ContinuousClock.now
    static let interval = Duration.seconds(1)

    init(store: ResultStore, logger: Logger) {
        self.store = store
        self.logger = logger
    }

    mutating func poll(_ scheduler: inout Scheduler, now: ContinuousClock.Instant) -> [Scheduler.Directive] {
        guard now - last >= Self.interval else { return [] }
        last = now
        do {
            if reader == nil { reader = try ResultStore(path: store.path, readOnly: true) }
            guard let reader else { return [] }
            let requests = try reader.pendingRequests()
            guard !requests.isEmpty else { return [] }
            var directives: [Scheduler.Directive] = []
            let requeue = requests.filter { $0.action == .requeue }.map(\.key)
            let cancel = requests.filter { $0.action == .cancel }.map(\.key)
            // In the order they were made: a requeue after a cancel of the same cell wins.
            if !cancel.isEmpty { directives += scheduler.on(.cancel(cancel), now: now) }
            if !requeue.isEmpty {
                let works = try reader.works(of: requeue)
                let limits = scheduler.configuration.limits
                let cells = requeue.map { key in
                    let work = works[key] ?? []
                    let requirements = (try? CellWork(json: work)?.requirements(resources: limits)) ?? nil
                    return (key, work, requirements ?? CellRequirements.none)
                }
                directives += scheduler.on(.requeue(cells), now: now)
            }
            try store.markApplied(requests.map(\.id))
            logger.info(
                "applied \(requests.count) requests from the database (\(requeue.count) requeue, \(cancel.count) cancel)"
            )
            return directives
        } catch {
            logger.warning("cannot read requests from the database: \(error)")
            return []
        }
    }
}
