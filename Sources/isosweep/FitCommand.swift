import ArgumentParser
import CommandSupport
import SweepAnalysis
import SweepCore
import SweepStore

/// `isosweep fit`: the scaling fits of a sweep.
struct Fit: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract:
            "Fit log(Lipschitz bound) against log(p) over the cells that fit below the noise level, per (n, d) and overall.",
        discussion:
            "The law of robustness is a lower bound, Lip >= C eps sqrt(n d / p): law_ratio measures C cell by cell. Slopes are printed as measured (the law predicts none for trained networks), with where interpolation starts."
    )

    enum Format: String, ExpressibleByArgument {
        case table, json
    }

    @Argument(help: "A sweep database.") var db: String
    @Option(help: "Cells with eps at or above this fraction of their noise level enter the fits and figures.")
    var epsFraction = 0.5
    @Option(help: "table or json.") var format: Format = .table

    func run() throws {
        let table = try SweepTable(store: try ResultStore(path: db, readOnly: true))
        if let warning = table.undecodableWarning { Output.warning(warning) }
        let analysis = ScalingAnalysis(results: table.results, epsFraction: epsFraction)
        switch format {
        case .json: print(try analysis.renderFitsJSON())
        case .table:
            print(analysis.renderFits())
            print("")
            for finding in analysis.findings { print("- \(finding)") }
        }
    }
}
