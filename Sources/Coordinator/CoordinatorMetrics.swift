import CoreMetrics
import SweepCore
import Synchronization

/// The coordinator's metrics through swift-metrics (Prometheus when the status endpoint is on).
public final class CoordinatorMetrics: Sendable {
    private let cells: [String: Gauge]
    private let workers = Gauge(label: "isosweep_workers_alive")
    private let rate = Gauge(label: "isosweep_cells_per_second")
    private let malformed = Counter(label: "isosweep_malformed_messages_total")
    private let refused = Counter(label: "isosweep_refused_connections_total")
    private let seen = Mutex((malformed: 0, refused: 0))

    init() {
        var cells: [String: Gauge] = [:]
        for state in Scheduler.CellState.allCases.map(\.rawValue) {
            cells[state] = Gauge(label: "isosweep_cells", dimensions: [("state", state)])
        }
        self.cells = cells
    }

    func update(
        counts: [String: Int],
        workers alive: Int,
        rate perSecond: Double,
        malformed totalMalformed: Int,
        refusals totalRefused: Int
    ) {
        for (state, gauge) in cells { gauge.record(counts[state] ?? 0) }
        workers.record(alive)
        rate.record(perSecond)
        let (newMalformed, newRefused) = seen.withLock { seen -> (Int, Int) in
            defer { seen = (totalMalformed, totalRefused) }
            return (totalMalformed - seen.malformed, totalRefused - seen.refused)
        }
        if newMalformed > 0 { malformed.increment(by: newMalformed) }
        if newRefused > 0 { refused.increment(by: newRefused) }
    }
}

extension CoordinatorMetrics {
    /// HELP text of every metric the coordinator exports (Prometheus lint requires it).
    public static let help: [String: String] = [
        "isosweep_cells": "Cells of the sweep by state (queued, leased, done, failed, cancelled).",
        "isosweep_workers_alive": "Workers registered and heard from within the liveness window.",
        "isosweep_cells_per_second": "Cells committed per second in this run.",
        "isosweep_malformed_messages_total": "Malformed or unauthorised messages dropped.",
        "isosweep_refused_connections_total": "Connections refused at the CURVE/ZAP handshake.",
    ]
}
