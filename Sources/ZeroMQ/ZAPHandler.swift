import CZeroMQ
import Diagnostics
import Foundation
import Synchronization

/// A ZAP (ZeroMQ Authentication Protocol, RFC 27) handler on its own thread: every CURVE
/// handshake on a socket of the same context with a ZAP domain is approved or refused here.
/// Without a handler, libzmq's CURVE admits any client key; with ZMQ_ZAP_ENFORCE_DOMAIN and this
/// handler, only the keys `authorize` accepts get in.
public final class ZAPHandler: Sendable {
    /// A handshake to decide on.
    public struct Request: Sendable {
        public var domain: String
        public var address: String
        public var mechanism: String
        /// The client's public key in Z85 (CURVE only).
        public var clientKey: String?
    }

    /// The decision: allowed, or refused with a reason for the log.
    public enum Decision: Sendable {
        case allow(userID: String)
        case refuse(reason: String)
    }

    /// The endpoint libzmq sends ZAP requests to.
    public static let endpoint = "inproc://zeromq.zap.01"

    private let context: Context
    private let authorize: @Sendable (Request) -> Decision
    private let stopping = Atomic<Bool>(false)
    private let finished = Atomic<Bool>(false)

    /// Binds the handler in `context` (before any CURVE socket accepts a connection) and starts
    /// answering on a dedicated thread.
    public init(context: Context, authorize: @escaping @Sendable (Request) -> Decision) throws {
        self.context = context
        self.authorize = authorize
        let ready = DispatchSemaphore(value: 0)
        let failure = Mutex<IsosweepError?>(nil)
        let thread = Thread { [self] in
            do {
                let socket = try Socket(context, .rep)
                try socket.bind(Self.endpoint)
                ready.signal()
                serve(socket)
                socket.close()
            } catch let error as IsosweepError {
                failure.withLock { $0 = error }
                ready.signal()
            } catch {
                ready.signal()
            }
            finished.store(true, ordering: .sequentiallyConsistent)
        }
        thread.name = "isosweep-zap"
        thread.start()
        ready.wait()
        if let error = failure.withLock({ $0 }) { throw error }
    }

    /// Stops answering (the thread exits within 100 ms).
    public func stop() {
        stopping.store(true, ordering: .sequentiallyConsistent)
    }

    private func serve(_ socket: Socket) {
        while !stopping.load(ordering: .relaxed) {
            guard (try? Poller.readable([socket], timeoutMilliseconds: 100))?.first == true else { continue }
            guard let received = try? socket.receive() else { continue }
            let frames = received.frames
            // version, request id, domain, address, identity, mechanism, credentials...
            guard frames.count >= 6, frames[0] == Array("1.0".utf8) else {
                _ = try? socket.send([
                    Array("1.0".utf8), frames.count > 1 ? frames[1] : [], Array("400".utf8),
                    Array("malformed ZAP request".utf8), [], [],
                ])
                continue
            }
            let mechanism = String(decoding: frames[5], as: UTF8.self)
            let request = Request(
                domain: String(decoding: frames[2], as: UTF8.self),
                address: String(decoding: frames[3], as: UTF8.self),
                mechanism: mechanism,
                clientKey: mechanism == "CURVE" && frames.count >= 7 ? Curve.z85(frames[6]) : nil
            )
            let reply: [[UInt8]]
            switch authorize(request) {
            case .allow(let user):
                reply = [Array("1.0".utf8), frames[1], Array("200".utf8), Array("OK".utf8), Array(user.utf8), []]
            case .refuse(let reason):
                reply = [Array("1.0".utf8), frames[1], Array("400".utf8), Array(reason.utf8), [], []]
            }
            _ = try? socket.send(reply)
        }
    }
}
