/// The one error shape of isosweep's library modules: a stable code, what went wrong, and what the
/// user can do about it. Libraries throw it; the command line catches it once and prints it.
public struct IsosweepError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What kind of problem this is: stable across releases, for scripts and tests to match.
    public struct Code: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
        public var rawValue: String

        public init(rawValue: String) { self.rawValue = rawValue }

        public var description: String { rawValue }

        /// A cell parameter is out of range or inconsistent.
        public static let invalidParameter = Code(rawValue: "invalid_parameter")
        /// A data, model or key file cannot be read or is malformed.
        public static let badFile = Code(rawValue: "bad_file")
        /// A numerical routine failed.
        public static let numerical = Code(rawValue: "numerical")
        /// The caller asked the work to stop (e.g. a worker shutting down).
        public static let cancelled = Code(rawValue: "cancelled")
        /// A sweep file is wrong.
        public static let sweepFile = Code(rawValue: "sweep_file")
        /// The results database cannot be opened, read or written, or belongs to another sweep.
        public static let store = Code(rawValue: "store")
        /// A network message is malformed.
        public static let malformedMessage = Code(rawValue: "malformed_message")
        /// The peer speaks another protocol version.
        public static let versionMismatch = Code(rawValue: "version_mismatch")
        /// A connection would be insecure, or a key is unusable.
        public static let security = Code(rawValue: "security")
        /// A ZeroMQ call failed.
        public static let transport = Code(rawValue: "transport")
        /// The ZeroMQ context was terminated: the caller should shut down.
        public static let transportTerminated = Code(rawValue: "transport_terminated")
        /// The address to listen on is taken (EADDRINUSE).
        public static let addressInUse = Code(rawValue: "address_in_use")
        /// The coordinator refused this worker for good.
        public static let refused = Code(rawValue: "refused")
        /// A worker could not run its slots or hand over a result.
        public static let worker = Code(rawValue: "worker")
    }

    /// What kind of problem this is.
    public let code: Code
    /// What went wrong, in words that name the thing (file, key, parameter, peer).
    public let message: String
    /// What the user can do about it, when there is something to say.
    public let remedy: String?

    /// An error of `code`: `message` says what is wrong, `remedy` what to do.
    public init(_ code: Code, _ message: String, remedy: String? = nil) {
        self.code = code
        self.message = message
        self.remedy = remedy
    }

    /// The message and the remedy, as the command line prints them.
    public var description: String {
        guard let remedy, !remedy.isEmpty else { return message }
        return "\(message): \(remedy)"
    }
}
