import ArgumentParser
import Foundation
import TrainingCore

/// Printing for the command line: libraries never print, the CLI does.
enum Output {
    /// Prints one JSON object on one line.
    static func json(_ value: some Encodable) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let data = try encoder.encode(value)
        print(String(decoding: data, as: UTF8.self))
    }

    /// Writes a message to standard error.
    static func error(_ message: String) {
        FileHandle.standardError.write(Data("isosweep: error: \(message)\n".utf8))
    }

    /// Runs `body`, turning a TrainingError into a clear message and exit code 1.
    static func reportingErrors(_ body: () throws -> Void) throws {
        do {
            try body()
        } catch let error as TrainingError {
            Output.error(error.message)
            throw ExitCode.failure
        }
    }

    /// A plain-text table with right-aligned columns.
    static func table(header: [String], rows: [[String]]) -> String {
        let widths = header.indices.map { column in
            ([header] + rows).map { $0[column].count }.max() ?? 0
        }
        let render = { (cells: [String]) -> String in
            zip(cells, widths).map { String(repeating: " ", count: $1 - $0.count) + $0 }.joined(separator: "  ")
        }
        return ([render(header)] + rows.map(render)).joined(separator: "\n")
    }
}
