public import Diagnostics
import Foundation
import TrainingCore

/// What a sweep will cost before anything runs (`isosweep plan`): its cells by configuration
/// with their memory, flops and BLAS threads, the cells a cluster shape cannot hold, and an
/// estimated makespan on it.
public struct SweepPlan: Sendable, Encodable {
    /// A cluster shape: `8x cores=32,memory=128GiB`.
    public struct Cluster: Sendable, Encodable, Equatable {
        public var nodes: Int
        public var cores: Int
        public var memoryBytes: UInt64
        /// As the user wrote it.
        public var text: String

        /// Parses `NODESx cores=C,memory=SIZE` (the `NODESx ` part optional: one node).
        public init(parsing text: String) throws(IsosweepError) {
            let bad = IsosweepError(
                .invalidParameter,
                "--cluster \(text): expected NODESx cores=C,memory=SIZE, e.g. 8x cores=32,memory=128GiB"
            )
            var rest = Substring(text.trimmingCharacters(in: .whitespaces))
            var nodes = 1
            if let x = rest.firstIndex(of: "x"), let count = Int(rest[..<x].trimmingCharacters(in: .whitespaces)) {
                nodes = count
                rest = rest[rest.index(after: x)...]
            }
            var cores: Int?
            var memory: UInt64?
            for field in rest.split(separator: ",") {
                let pair = field.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
                guard pair.count == 2 else { throw bad }
                switch pair[0] {
                case "cores": cores = Int(pair[1])
                case "memory": memory = Units.parseSize(pair[1])
                default: throw bad
                }
            }
            guard nodes >= 1, let cores, cores >= 1, let memory, memory > 0 else { throw bad }
            self.nodes = nodes
            self.cores = cores
            self.memoryBytes = memory
            self.text = text
        }

        enum CodingKeys: String, CodingKey {
            case nodes, cores, text
            case memoryBytes = "memory_bytes"
        }
    }

    /// One configuration (every parameter but the seed) and its cells.
    public struct Group: Sendable, Encodable {
        /// "n=256 d=32 width=64 trainer=adam ..." (the parameters that vary in the sweep).
        public var label: String
        public var cells: Int
        public var newCells: Int
        public var done: Int
        public var failed: Int
        /// Per cell: estimated peak memory, flops, BLAS threads.
        public var memoryBytes: UInt64
        public var flops: Double
        public var threads: Int

        enum CodingKeys: String, CodingKey {
            case label, cells, done, failed, flops, threads
            case newCells = "new"
            case memoryBytes = "memory_bytes"
        }
    }

    /// What one cluster shape makes of the cells still to run.
    public struct Fit: Sendable, Encodable {
        public var cluster: Cluster
        /// Cells still to run whose memory no node has, with their configuration.
        public var unplaceable: Int
        public var unplaceableGroups: [String]
        /// Estimated seconds from start to the last cell, for the cells it can hold.
        public var makespanSeconds: Double

        enum CodingKeys: String, CodingKey {
            case cluster, unplaceable
            case unplaceableGroups = "unplaceable_configurations"
            case makespanSeconds = "estimated_makespan_seconds"
        }
    }

    public var sweep: String
    public var cells: Int
    public var newCells: Int
    public var done: Int
    public var failed: Int
    public var groups: [Group]
    /// The GFLOP/s per core the estimate assumes (measured on this machine).
    public var gflopsPerCore: Double
    public var clusters: [Fit]

    enum CodingKeys: String, CodingKey {
        case sweep, cells, done, failed, groups, clusters
        case newCells = "new"
        case gflopsPerCore = "gflops_per_core"
    }

    /// Plans `spec`'s cells; `states` gives the state of cells already in a database by key
    /// (absent: new). A cell's time is its flops (`CellWork.estimatedCost`) at `gflopsPerCore`
    /// times its threads (at most the node's cores); the makespan packs the cells still to run,
    /// longest first, onto each cluster's nodes by their cores (an estimate: it ignores the
    /// Lipschitz phase and how far a cell's threads really scale).
    public static func make(
        spec: SweepSpec,
        states: [String: Scheduler.CellState],
        clusters: [Cluster],
        gflopsPerCore: Double
    ) throws(IsosweepError) -> SweepPlan {
        let cells = try spec.cells()
        let varying = Set(spec.parameters.filter { $0.values.count > 1 || $0.distribution != nil }.map(\.name)).union(
            spec.variants.flatMap { $0.map(\.name) }
        )
        var groups: [String: Group] = [:]
        var order: [String] = []
        var pending: [(label: String, requirements: CellRequirements, flops: Double)] = []
        for cell in cells {
            guard let parameters = cell.parameters else { continue }
            let requirements = try cell.requirements(resources: spec.limits)
            let label = Self.label(parameters, varying: varying)
            let state = states[cell.key]
            if groups[label] == nil {
                order.append(label)
                groups[label] = Group(
                    label: label,
                    cells: 0,
                    newCells: 0,
                    done: 0,
                    failed: 0,
                    memoryBytes: requirements.memoryBytes,
                    flops: cell.estimatedCost,
                    threads: Int(requirements.threads)
                )
            }
            groups[label]!.cells += 1
            switch state {
            case nil: groups[label]!.newCells += 1
            case .done: groups[label]!.done += 1
            case .failed: groups[label]!.failed += 1
            default: break
            }
            if state != .done { pending.append((label, requirements, cell.estimatedCost)) }
        }
        let all = order.map { groups[$0]! }
        return SweepPlan(
            sweep: spec.name,
            cells: all.reduce(0) { $0 + $1.cells },
            newCells: all.reduce(0) { $0 + $1.newCells },
            done: all.reduce(0) { $0 + $1.done },
            failed: all.reduce(0) { $0 + $1.failed },
            groups: all,
            gflopsPerCore: gflopsPerCore,
            clusters: clusters.map { fit(pending, on: $0, gflopsPerCore: gflopsPerCore) }
        )
    }

    static func label(_ p: CellParameters, varying: Set<String>) -> String {
        var parts = ["n=\(p.n)", "d=\(p.d)", "width=\(p.width)"]
        for parameter in CellParameters.catalogue
        where varying.contains(parameter.name) && !["n", "d", "width", "seed"].contains(parameter.name) {
            parts.append("\(parameter.name)=\(parameter.value(p)?.description ?? "-")")
        }
        return parts.joined(separator: " ")
    }

    static func fit(
        _ pending: [(label: String, requirements: CellRequirements, flops: Double)],
        on cluster: Cluster,
        gflopsPerCore: Double
    ) -> Fit {
        var unplaceable: [String] = []
        var jobs: [(seconds: Double, cores: Int)] = []
        for cell in pending {
            if cell.requirements.memoryBytes > cluster.memoryBytes {
                if !unplaceable.contains(cell.label) { unplaceable.append(cell.label) }
                continue
            }
            let cores = max(1, min(Int(cell.requirements.threads), cluster.cores))
            jobs.append((cell.flops / (gflopsPerCore * 1e9 * Double(cores)), cores))
        }
        // Longest first onto the node whose cores free up first: each node is a pool of cores,
        // a job takes `cores` of them (the earliest-free ones) for its duration.
        var free = [[Double]](repeating: [Double](repeating: 0, count: cluster.cores), count: cluster.nodes)
        var makespan = 0.0
        for job in jobs.sorted(by: { $0.seconds > $1.seconds }) {
            var best = (node: 0, start: Double.infinity)
            for node in free.indices {
                free[node].sort()
                let start = free[node][job.cores - 1]
                if start < best.start { best = (node, start) }
            }
            for core in 0..<job.cores { free[best.node][core] = best.start + job.seconds }
            makespan = max(makespan, best.start + job.seconds)
        }
        return Fit(
            cluster: cluster,
            unplaceable: pending.filter { cell in cell.requirements.memoryBytes > cluster.memoryBytes }.count,
            unplaceableGroups: unplaceable,
            makespanSeconds: makespan
        )
    }
}
