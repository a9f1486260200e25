import ArgumentParser
import CommandSupport
import Foundation
import SweepAnalysis
import SweepCore
import SweepStore

/// `isosweep report`: report.md, index.html and the figures of a sweep.
struct Report: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a sweep's report (report.md, index.html, SVG/PNG figures, analysis.json) to a folder."
    )

    @Argument(help: "A sweep database.") var db: String
    @Option(name: .shortAndLong, help: "Folder to write to (default: next to the database, NAME-report).") var output:
        String?
    @Option(help: "Cells with eps at or above this fraction of their noise level enter the fits and figures.")
    var epsFraction = 0.5

    func run() throws {
        let store = try ResultStore(path: db, readOnly: true)
        let path = try ReportWriter.write(
            store: store,
            directory: output ?? defaultReportDirectory(for: db),
            epsFraction: epsFraction
        )
        print("report: \(path)")
    }
}

/// out/quick.db -> out/quick-report.
func defaultReportDirectory(for database: String) -> String {
    let url = URL(fileURLWithPath: database)
    return url.deletingPathExtension().path + "-report"
}
