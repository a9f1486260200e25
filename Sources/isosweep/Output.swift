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
}
