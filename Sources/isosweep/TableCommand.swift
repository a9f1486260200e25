public import ArgumentParser
public import SweepKit

extension SweepTable.Format: ExpressibleByArgument {}

/// `isosweep table`: the sweep table of a database.
struct Table: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print one row per finished cell, sorted by (n, d, width, seed).")

    @Argument(help: "A sweep database.") var db: String
    @Option(help: "markdown, csv or json.") var format: SweepTable.Format = .markdown

    func run() throws {
        do {
            print(try SweepTable(store: try ResultStore(path: db, readOnly: true)).render(format))
        } catch let error as StoreError {
            Output.error(error.message)
            throw ExitCode.failure
        }
    }
}
