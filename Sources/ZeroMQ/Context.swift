import CZeroMQ
public import Diagnostics

/// A libzmq context. Unlike sockets, contexts are thread-safe, so this one may be shared.
public final class Context: @unchecked Sendable {
    // @unchecked: libzmq documents zmq_ctx_* as thread-safe; the pointer never changes.
    let handle: UnsafeMutableRawPointer

    /// A new context with libzmq's default I/O threads.
    public init() throws(IsosweepError) {
        guard let handle = zmq_ctx_new() else { throw IsosweepError.zeroMQ("zmq_ctx_new") }
        self.handle = handle
    }

    /// Makes every blocking call on this context's sockets return ETERM, from any thread.
    public func shutdown() {
        zmq_ctx_shutdown(handle)
    }

    deinit {
        // Sockets are closed by their owners with a bounded linger, so this cannot hang long.
        while zmq_ctx_term(handle) != 0 && zmq_errno() == czmq_eintr() {}
    }

    /// libzmq's version as "major.minor.patch".
    public static var version: String {
        var major: Int32 = 0
        var minor: Int32 = 0
        var patch: Int32 = 0
        zmq_version(&major, &minor, &patch)
        return "\(major).\(minor).\(patch)"
    }
}
