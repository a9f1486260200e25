import ArgumentParser
import CommandSupport
import Foundation
import SweepAnalysis
import SweepCore
import SweepStore
import TrainingCore

/// `isosweep plan`: what a sweep will cost before it runs.
struct Plan: ParsableCommand, RunsBLAS {
    static let configuration = CommandConfiguration(
        abstract:
            "Before anything runs: the cells (new, done, failed in --db), their memory, flops and threads by configuration, the cells a cluster cannot hold and an estimated makespan."
    )

    @Argument(help: "The sweep file.") var spec: String
    @Option(help: "A sweep database, to count the cells already done or failed.") var db: String?
    @Option(
        help:
            "A cluster shape, NODESx cores=C,memory=SIZE (e.g. \"8x cores=32,memory=128GiB\"); repeat to compare shapes."
    )
    var cluster: [String] = []
    @Option(help: "GFLOP/s per core to assume (default: SGEMM measured on this machine).") var gflops: Double?
    @Flag(help: "Print JSON.") var json = false

    func run() throws {
        let sweep = try SweepSpec.load(path: spec)
        var states: [String: Scheduler.CellState] = [:]
        if let db {
            for cell in try ResultStore(path: db, readOnly: true).cells() { states[cell.key] = cell.state }
        }
        var shapes: [SweepPlan.Cluster] = []
        for text in cluster { shapes.append(try SweepPlan.Cluster(parsing: text)) }
        let plan = try SweepPlan.make(
            spec: sweep,
            states: states,
            clusters: shapes,
            gflopsPerCore: gflops ?? BLAS.measuredSgemmGflops()
        )
        if json {
            try Output.json(plan)
        } else {
            print(plan.render())
        }
    }
}
