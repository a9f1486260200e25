import ArgumentParser
public import Diagnostics
import Foundation

/// Printing for the command line: libraries never print, the CLI does.
public enum Output {
    /// Prints one JSON object on one line.
    public static func json(_ value: some Encodable) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let data = try encoder.encode(value)
        print(String(decoding: data, as: UTF8.self))
    }

    /// Writes a message to standard error.
    public static func error(_ message: String) {
        FileHandle.standardError.write(Data("isosweep: error: \(message)\n".utf8))
    }

    /// Writes a warning to standard error.
    public static func warning(_ message: String) {
        FileHandle.standardError.write(Data("isosweep: warning: \(message)\n".utf8))
    }

    /// The exit status of a command stopped by a library error: 3 when the coordinator refused
    /// this worker for good, 130 when cancelled, otherwise 2 (the command could not do its job:
    /// bad input, database, keys). 1 is kept for commands that ran and found failures.
    public static func exitStatus(of error: IsosweepError) -> Int32 {
        switch error.code {
        case .refused: 3
        case .cancelled: 130
        default: 2
        }
    }
}
