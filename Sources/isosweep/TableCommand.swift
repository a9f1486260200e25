public import ArgumentParser
import CommandSupport
public import SweepAnalysis
import SweepStore

extension SweepTable.Format: ExpressibleByArgument {}

/// `isosweep table`: the sweep table of a database.
struct Table: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print one row per finished cell, sorted by (n, d, width, seed)."
    )

    @Argument(help: "A sweep database.") var db: String
    @Option(help: "markdown, csv or json.") var format: SweepTable.Format = .markdown
    @Flag(help: "One row per configuration (all parameters but the seed): mean, sd and 95% interval over seeds.")
    var byConfig = false

    func run() throws {
        let table = try SweepTable(store: try ResultStore(path: db, readOnly: true))
        if let warning = table.undecodableWarning { Output.warning(warning) }
        if byConfig {
            print(try ScalingAnalysis(results: table.results).renderConfigurations(format))
        } else {
            print(try table.render(format))
        }
    }
}
