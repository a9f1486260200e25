import Foundation
public import SweepCore

extension SweepPlan {
    /// The plan as text: totals, the configurations, then each cluster.
    public func render() -> String {
        var lines = [
            "sweep \(sweep): \(cells) cells, \(newCells) new, \(done) done, \(failed) failed"
                + (cells - newCells - done - failed > 0
                    ? ", \(cells - newCells - done - failed) queued or running" : "")
        ]
        lines.append("")
        let header = ["configuration", "cells", "new", "done", "failed", "memory/cell", "GFLOP/cell", "threads"]
        let rows = groups.map { group in
            [
                group.label, "\(group.cells)", "\(group.newCells)", "\(group.done)", "\(group.failed)",
                Units.formatSize(group.memoryBytes), String(format: "%.3g", group.flops / 1e9), "\(group.threads)",
            ]
        }
        lines.append(TextTable.markdown(header: header, rows: rows))
        lines.append("")
        lines.append(
            String(
                format:
                    "Estimates assume %.1f GFLOP/s per core (SGEMM measured on this machine) and the cells' training flops; the Lipschitz phase and imperfect thread scaling come on top.",
                gflopsPerCore
            )
        )
        for fit in clusters {
            lines.append("")
            lines.append(
                "cluster \(fit.cluster.text) (\(fit.cluster.nodes) nodes of \(fit.cluster.cores) cores, \(Units.formatSize(fit.cluster.memoryBytes))):"
            )
            if fit.unplaceable > 0 {
                lines.append(
                    "  \(fit.unplaceable) cells need more memory than a node has and would never run: "
                        + fit.unplaceableGroups.joined(separator: "; ")
                )
            } else {
                lines.append("  every cell fits a node")
            }
            lines.append("  estimated makespan of the cells it can run: \(Self.duration(fit.makespanSeconds))")
        }
        return lines.joined(separator: "\n")
    }

    static func duration(_ seconds: Double) -> String {
        if seconds < 120 { return String(format: "%.0f s", seconds) }
        if seconds < 7200 { return String(format: "%.0f min", seconds / 60) }
        if seconds < 172_800 { return String(format: "%.1f h", seconds / 3600) }
        return String(format: "%.1f days", seconds / 86400)
    }
}
