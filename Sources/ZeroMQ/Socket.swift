import CZeroMQ
public import Diagnostics

/// A libzmq socket. Not Sendable: a socket lives on the thread that made it.
public final class Socket {
    /// Socket types isosweep uses.
    public enum Kind: Sendable {
        case router, dealer, push, pull, pair, rep, req

        var value: Int32 {
            switch self {
            case .router: ZMQ_ROUTER
            case .dealer: ZMQ_DEALER
            case .push: ZMQ_PUSH
            case .pull: ZMQ_PULL
            case .pair: ZMQ_PAIR
            case .rep: ZMQ_REP
            case .req: ZMQ_REQ
            }
        }
    }

    /// Default bound on how long closing waits to flush pending messages.
    public static let defaultLingerMilliseconds: Int32 = 1000
    /// Default largest message accepted from a peer (ZMQ_MAXMSGSIZE); larger ones drop the peer.
    public static let defaultMaximumMessageBytes: Int64 = 64 << 20
    /// Most frames of a multipart message that `receive` keeps; the rest are read and dropped.
    public static let maximumFrames = 16

    let handle: UnsafeMutableRawPointer
    private var closed = false
    /// Whether zmq_socket_monitor is active on this socket.
    var monitored = false
    /// The context stays alive while any of its sockets does.
    private let context: Context

    /// A socket of `kind` with a bounded linger and a message-size limit already set.
    public init(_ context: Context, _ kind: Kind) throws(IsosweepError) {
        guard let handle = zmq_socket(context.handle, kind.value) else { throw IsosweepError.zeroMQ("zmq_socket") }
        self.handle = handle
        self.context = context
        try set(.lingerMilliseconds(Self.defaultLingerMilliseconds))
        try set(.maximumMessageBytes(Self.defaultMaximumMessageBytes))
    }

    deinit { close() }

    /// Closes the socket (idempotent). Monitoring stops first: libzmq's monitor would otherwise
    /// block its I/O thread sending events that no one reads any more.
    public func close() {
        guard !closed else { return }
        stopMonitoring()
        closed = true
        zmq_close(handle)
    }

    /// Stops zmq_socket_monitor on this socket (idempotent).
    func stopMonitoring() {
        guard monitored && !closed else { return }
        zmq_socket_monitor(handle, nil, 0)
        monitored = false
    }

    /// Binds to an endpoint such as tcp://127.0.0.1:5555 or inproc://name.
    public func bind(_ endpoint: String) throws(IsosweepError) {
        guard zmq_bind(handle, endpoint) == 0 else { throw IsosweepError.zeroMQ("bind \(endpoint)") }
    }

    /// Connects to an endpoint.
    public func connect(_ endpoint: String) throws(IsosweepError) {
        guard zmq_connect(handle, endpoint) == 0 else { throw IsosweepError.zeroMQ("connect \(endpoint)") }
    }

    /// A socket option isosweep sets, typed: callers never see libzmq's option numbers.
    public enum Option: Sendable, Equatable {
        /// ZMQ_LINGER: how long closing waits to flush pending messages.
        case lingerMilliseconds(Int32)
        /// ZMQ_MAXMSGSIZE: the largest message accepted from a peer; a larger one drops the peer.
        case maximumMessageBytes(Int64)
        /// ZMQ_SNDHWM: messages queued for sending per peer before sends block or fail.
        case sendHighWaterMark(Int32)
        /// ZMQ_RCVHWM: messages queued on receipt per peer before libzmq stops reading.
        case receiveHighWaterMark(Int32)
        /// ZMQ_ROUTER_MANDATORY: a router's send to an unknown peer fails instead of vanishing.
        case routerMandatory(Bool)
        /// ZMQ_BACKLOG: the listen backlog of a bound TCP socket.
        case backlog(Int32)
    }

    /// Sets `option`.
    public func set(_ option: Option) throws(IsosweepError) {
        switch option {
        case .lingerMilliseconds(let value): try setOption(ZMQ_LINGER, value)
        case .maximumMessageBytes(let value): try setOption(ZMQ_MAXMSGSIZE, value)
        case .sendHighWaterMark(let value): try setOption(ZMQ_SNDHWM, value)
        case .receiveHighWaterMark(let value): try setOption(ZMQ_RCVHWM, value)
        case .routerMandatory(let on): try setOption(ZMQ_ROUTER_MANDATORY, Int32(on ? 1 : 0))
        case .backlog(let value): try setOption(ZMQ_BACKLOG, value)
        }
    }

    /// Sets an integer option by its libzmq number.
    func setOption(_ option: Int32, _ value: Int32) throws(IsosweepError) {
        var v = value
        guard zmq_setsockopt(handle, option, &v, MemoryLayout<Int32>.size) == 0 else {
            throw IsosweepError.zeroMQ("zmq_setsockopt \(option)")
        }
    }

    /// Sets a 64-bit integer option by its libzmq number.
    func setOption(_ option: Int32, _ value: Int64) throws(IsosweepError) {
        var v = value
        guard zmq_setsockopt(handle, option, &v, MemoryLayout<Int64>.size) == 0 else {
            throw IsosweepError.zeroMQ("zmq_setsockopt \(option)")
        }
    }

    /// Sets a binary or string option by its libzmq number.
    func setOption(_ option: Int32, _ value: [UInt8]) throws(IsosweepError) {
        let result = value.withUnsafeBytes { zmq_setsockopt(handle, option, $0.baseAddress, value.count) }
        guard result == 0 else { throw IsosweepError.zeroMQ("zmq_setsockopt \(option)") }
    }

    /// The endpoint last bound, with the real port when bound to port 0 or *.
    public var lastEndpoint: String {
        var buffer = [CChar](repeating: 0, count: 1024)
        var size = buffer.count
        guard zmq_getsockopt(handle, ZMQ_LAST_ENDPOINT, &buffer, &size) == 0 else { return "" }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Sends a multipart message. Returns false if `dontWait` and the message could not be
    /// queued now (EAGAIN) or the peer is unreachable (EHOSTUNREACH on a mandatory ROUTER).
    @discardableResult
    public func send(_ frames: [[UInt8]], dontWait: Bool = false) throws(IsosweepError) -> Bool {
        for (index, frame) in frames.enumerated() {
            var flags: Int32 = index < frames.count - 1 ? ZMQ_SNDMORE : 0
            if dontWait { flags |= ZMQ_DONTWAIT }
            while true {
                let result = frame.withUnsafeBytes { zmq_send(handle, $0.baseAddress, frame.count, flags) }
                if result >= 0 { break }
                let error = zmq_errno()
                if error == czmq_eintr() { continue }
                if error == czmq_eagain() || error == czmq_ehostunreach() {
                    // Only the first frame can fail this way: libzmq queues the rest atomically.
                    return false
                }
                throw IsosweepError.zeroMQ("zmq_send")
            }
        }
        return true
    }

    /// Receives one multipart message, or nil when `dontWait` and none is waiting. At most
    /// `maximumFrames` frames are kept; a longer message is read to its end and reported as
    /// `truncated` so the caller can drop it.
    public func receive(dontWait: Bool = false) throws(IsosweepError) -> (frames: [[UInt8]], truncated: Bool)? {
        var frames: [[UInt8]] = []
        var truncated = false
        // zmq_msg_t must not move after zmq_msg_init: keep it in its own allocation.
        let message = UnsafeMutablePointer<zmq_msg_t>.allocate(capacity: 1)
        defer { message.deallocate() }
        while true {
            zmq_msg_init(message)
            var result: Int32
            repeat {
                result = zmq_msg_recv(message, handle, dontWait && frames.isEmpty ? ZMQ_DONTWAIT : 0)
            } while result < 0 && zmq_errno() == czmq_eintr()
            if result < 0 {
                let number = zmq_errno()
                zmq_msg_close(message)
                if number == czmq_eagain() && frames.isEmpty { return nil }
                throw IsosweepError.zeroMQ("zmq_msg_recv", errno: number)
            }
            let size = zmq_msg_size(message)
            if frames.count < Self.maximumFrames {
                let data = zmq_msg_data(message)
                frames.append(size == 0 ? [] : [UInt8](UnsafeRawBufferPointer(start: data, count: size)))
            } else {
                truncated = true
            }
            let more = zmq_msg_more(message) != 0
            zmq_msg_close(message)
            if !more { break }
        }
        return (frames, truncated)
    }
}

/// Waits for sockets to become readable.
public enum Poller {
    /// Which of `sockets` have a message waiting, after at most `timeoutMilliseconds`
    /// (-1: forever). Interrupted waits (EINTR) return with nothing ready.
    public static func readable(_ sockets: [Socket], timeoutMilliseconds: Int) throws(IsosweepError) -> [Bool] {
        var items = sockets.map { zmq_pollitem_t(socket: $0.handle, fd: 0, events: Int16(ZMQ_POLLIN), revents: 0) }
        let result = zmq_poll(&items, Int32(items.count), timeoutMilliseconds)
        if result < 0 {
            if zmq_errno() == czmq_eintr() { return [Bool](repeating: false, count: sockets.count) }
            throw IsosweepError.zeroMQ("zmq_poll")
        }
        return items.map { $0.revents & Int16(ZMQ_POLLIN) != 0 }
    }
}
