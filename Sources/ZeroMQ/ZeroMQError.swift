import CZeroMQ

/// A libzmq call failed.
public struct ZeroMQError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The errno value libzmq reported.
    public let code: Int32
    /// What was being done.
    public let operation: String

    /// The error of the last libzmq call on this thread.
    init(_ operation: String) {
        self.code = zmq_errno()
        self.operation = operation
    }

    /// libzmq's text for the error.
    public var text: String { String(cString: zmq_strerror(code)) }

    /// The context was terminated: the caller should shut down.
    public var isTerminated: Bool { code == czmq_eterm() }

    public var description: String { "\(operation): \(text) (errno \(code))" }
}
