import CZeroMQ
public import Diagnostics
import Foundation

/// Connection events of a socket (zmq_socket_monitor), read from a PAIR socket on the owner's
/// thread, so that refused handshakes can be logged with the peer and the reason.
public final class Monitor {
    /// An event of the monitored socket.
    public enum Event: Sendable, Equatable {
        /// A connection was accepted from `peer`.
        case accepted(peer: String)
        /// A handshake completed.
        case handshakeSucceeded
        /// A handshake failed: `reason` says how.
        case handshakeFailed(reason: String)
        /// A connection closed.
        case disconnected
    }

    let socket: Socket
    /// Kept alive, and stopped before the reader closes (see `Socket.close`).
    let target: Socket

    /// Starts monitoring `target` (call on the thread that owns it).
    public init(_ context: Context, watching target: Socket) throws(IsosweepError) {
        self.target = target
        let endpoint = "inproc://isosweep-monitor-\(UUID().uuidString)"
        let events =
            ZMQ_EVENT_ACCEPTED | ZMQ_EVENT_DISCONNECTED | ZMQ_EVENT_HANDSHAKE_SUCCEEDED
            | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL
            | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH
        guard zmq_socket_monitor(target.handle, endpoint, events) == 0 else {
            throw IsosweepError.zeroMQ("zmq_socket_monitor")
        }
        target.monitored = true
        socket = try Socket(context, .pair)
        try socket.connect(endpoint)
    }

    /// The PAIR socket to poll.
    public var pollable: Socket { socket }

    /// The next event, or nil if none is waiting.
    public func next() -> Event? {
        guard let received = try? socket.receive(dontWait: true), received.frames.count == 2,
            received.frames[0].count == 6
        else {
            return nil
        }
        let header = received.frames[0]
        let event = Int32(UInt16(header[0]) | UInt16(header[1]) << 8)  // little-endian on the platforms libzmq runs on
        let value = Int32(
            bitPattern: UInt32(header[2]) | UInt32(header[3]) << 8 | UInt32(header[4]) << 16 | UInt32(header[5]) << 24
        )
        switch event {
        case ZMQ_EVENT_ACCEPTED: return .accepted(peer: Self.peerAddress(fd: value))
        case ZMQ_EVENT_HANDSHAKE_SUCCEEDED: return .handshakeSucceeded
        case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH:
            return .handshakeFailed(reason: "authentication refused (ZAP status \(value))")
        case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL:
            return .handshakeFailed(
                reason:
                    "protocol error \(String(value, radix: 16)): the peer does not speak this socket's security mechanism (e.g. plain text to a CURVE server, or a wrong server key)"
            )
        case ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL:
            return .handshakeFailed(reason: "handshake failed (\(String(cString: zmq_strerror(value))))")
        case ZMQ_EVENT_DISCONNECTED: return .disconnected
        default: return nil
        }
    }

    /// "address:port" of the other end of a connected descriptor.
    static func peerAddress(fd: Int32) -> String {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let ok = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getpeername(fd, $0, &length) == 0 }
        }
        guard ok else { return "unknown peer" }
        var host = [CChar](repeating: 0, count: Int(NI_MAXHOST))
        var port = [CChar](repeating: 0, count: Int(NI_MAXSERV))
        let result = withUnsafePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                getnameinfo(
                    $0,
                    length,
                    &host,
                    socklen_t(host.count),
                    &port,
                    socklen_t(port.count),
                    NI_NUMERICHOST | NI_NUMERICSERV
                )
            }
        }
        guard result == 0 else { return "unknown peer" }
        func text(_ chars: [CChar]) -> String {
            String(decoding: chars.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }
        return "\(text(host)):\(text(port))"
    }

    deinit {
        // Stop the events before their reader goes away, or libzmq's I/O thread blocks on them.
        target.stopMonitoring()
        socket.close()
    }
}
