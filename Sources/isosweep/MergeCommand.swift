import ArgumentParser
import CommandSupport
import SweepAnalysis
import SweepCore
import SweepStore

/// `isosweep merge`: union sweep databases by cell key.
struct Merge: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Union sweep databases by cell key into a new database.",
        discussion:
            "The same cell with different metrics is a conflict: the merge fails unless --prefer says which side wins."
    )

    enum Preference: String, ExpressibleByArgument {
        case first, last
    }

    @Argument(help: "Databases to merge.") var inputs: [String]
    @Option(name: .shortAndLong, help: "The new database.") var output: String
    @Option(help: "On conflict keep the first or the last input's result.") var prefer: Preference?

    func validate() throws {
        guard inputs.count >= 1 else { throw ValidationError("give at least one database to merge") }
    }

    func run() throws {
        let preference: SweepStore.Merge.Preference =
            switch prefer {
            case .none: .refuse
            case .first: .first
            case .last: .last
            }
        let report = try SweepStore.Merge.run(inputs: inputs, output: output, preference: preference)
        for conflict in report.conflicts { print("conflict: \(conflict)") }
        if !report.undecodable.isEmpty {
            Output.warning(
                "\(report.undecodable.count) results could not be decoded and were copied without being compared (cells \(report.undecodable.prefix(5).map { String($0.prefix(12)) }.joined(separator: ", ")))"
            )
        }
        if !report.conflicts.isEmpty && prefer == nil {
            Output.error(
                "\(report.conflicts.count) cells differ between inputs; nothing written. Choose a side with --prefer first|last"
            )
            throw ExitCode.failure
        }
        print(
            "merged \(inputs.count) databases into \(output): \(report.cells) cells, \(report.results) results, \(report.duplicates) duplicates, \(report.conflicts.count) conflicts"
        )
    }
}
