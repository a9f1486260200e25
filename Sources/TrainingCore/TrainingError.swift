/// An error of the training core, with a code and a message that tells the user what to do.
public struct TrainingError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What kind of problem this is.
    public enum Code: String, Sendable {
        /// A parameter of the cell is out of range or inconsistent.
        case invalidParameter = "invalid_parameter"
        /// A data or model file cannot be read or is malformed.
        case badFile = "bad_file"
        /// A numerical routine failed.
        case numerical
        /// The caller asked the cell to stop (e.g. a worker shutting down).
        case cancelled
    }

    /// What kind of problem this is.
    public let code: Code
    /// What went wrong and how to fix it.
    public let message: String

    /// Creates an error.
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
}
