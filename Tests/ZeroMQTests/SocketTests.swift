import Diagnostics
import Foundation
import Testing
import ZeroMQ

/// The ZeroMQ layer over real TCP loopback sockets.
@Suite struct SocketTests {
    @Test func routerAndDealerExchangeMultipartMessages() throws {
        let context = try Context()
        let router = try Socket(context, .router)
        try router.bind("tcp://127.0.0.1:0")
        let endpoint = router.lastEndpoint
        #expect(endpoint.hasPrefix("tcp://127.0.0.1:") && !endpoint.hasSuffix(":0"))
        let dealer = try Socket(context, .dealer)
        try dealer.connect(endpoint)
        try dealer.send([[1, 2, 3], [], Array("hello".utf8)])
        #expect(try Poller.readable([router], timeoutMilliseconds: 5000) == [true])
        let received = try #require(try router.receive())
        #expect(!received.truncated)
        #expect(received.frames.count == 4)  // identity + 3 frames
        #expect(Array(received.frames.dropFirst()) == [[1, 2, 3], [], Array("hello".utf8)])
        // Reply through the identity.
        try router.send([received.frames[0], [9]])
        #expect(try Poller.readable([dealer], timeoutMilliseconds: 5000) == [true])
        #expect(try dealer.receive()?.frames == [[9]])
        #expect(try dealer.receive(dontWait: true) == nil)
        router.close()
        dealer.close()
    }

    @Test func longMessagesAreFlaggedTruncated() throws {
        let context = try Context()
        let pull = try Socket(context, .pull)
        try pull.bind("inproc://truncation")
        let push = try Socket(context, .push)
        try push.connect("inproc://truncation")
        try push.send((0..<40).map { [UInt8($0)] })
        try push.send([[7]])
        let first = try #require(try pull.receive())
        #expect(first.truncated && first.frames.count == Socket.maximumFrames)
        // The rest of the long message was consumed: the next receive is the next message.
        #expect(try pull.receive()?.frames == [[7]])
    }

    @Test func pollTimesOutAndErrorsCarryErrnoText() throws {
        let context = try Context()
        let pull = try Socket(context, .pull)
        try pull.bind("tcp://127.0.0.1:0")
        let start = ContinuousClock.now
        #expect(try Poller.readable([pull], timeoutMilliseconds: 50) == [false])
        #expect(ContinuousClock.now - start >= .milliseconds(40))
        let other = try Socket(context, .pull)
        do {
            try other.bind(pull.lastEndpoint)
            Issue.record("binding a used port succeeded")
        } catch {
            #expect(error.message.lowercased().contains("address"))
            #expect(error.description.contains("bind") && error.code == .addressInUse)
        }
        do {
            try other.connect("not-an-endpoint")
            Issue.record("a malformed endpoint was accepted")
        } catch {
            #expect(error.code == .transport && error.message.contains("connect not-an-endpoint: "))
        }
    }

    @Test func oversizedMessagesDropThePeer() throws {
        let context = try Context()
        let router = try Socket(context, .router)
        try router.set(.maximumMessageBytes(1000))
        try router.bind("tcp://127.0.0.1:0")
        let dealer = try Socket(context, .dealer)
        try dealer.connect(router.lastEndpoint)
        try dealer.send([[UInt8](repeating: 1, count: 5000)])
        #expect(try Poller.readable([router], timeoutMilliseconds: 300) == [false])
        let small = try Socket(context, .dealer)
        try small.connect(router.lastEndpoint)
        try small.send([[1]])
        #expect(try Poller.readable([router], timeoutMilliseconds: 5000) == [true])
        #expect(try router.receive()?.frames.last == [1])
    }

    @Test func monitoredSocketsCanBeReplacedManyTimes() throws {
        // A worker replaces its monitored DEALER on every reconnection; closing a monitored
        // socket must never leave libzmq's I/O thread blocked on events no one reads.
        let context = try Context()
        let router = try Socket(context, .router)
        try router.bind("tcp://127.0.0.1:0")
        let routerMonitor = try Monitor(context, watching: router)
        for round in 0..<30 {
            let dealer = try Socket(context, .dealer)
            var monitor: Monitor? = try Monitor(context, watching: dealer)
            try dealer.connect(router.lastEndpoint)
            try dealer.send([[UInt8(round)]])
            #expect(try Poller.readable([router], timeoutMilliseconds: 5000) == [true], "round \(round)")
            #expect(try router.receive()?.frames.last == [UInt8(round)])
            if round % 2 == 0 { monitor = nil }  // both orders: reader first, or socket first
            dealer.close()
            monitor = nil
            _ = monitor
            while routerMonitor.next() != nil {}
        }
        var accepted = 0
        let last = try Socket(context, .dealer)
        try last.connect(router.lastEndpoint)
        try last.send([[7]])
        #expect(try Poller.readable([router], timeoutMilliseconds: 5000) == [true])
        usleep(50_000)
        while let event = routerMonitor.next() { if case .accepted = event { accepted += 1 } }
        #expect(accepted >= 1)
    }

    @Test func droppingAMonitorBeforeItsSocketKeepsTheContextAlive() throws {
        // The worker's reconnection: its monitor reader goes away while the old DEALER still
        // has a connection whose end (the coordinator dying) raises a monitored event. libzmq
        // would block its I/O thread on that event forever, freezing every TCP socket of the
        // context, unless monitoring stopped first.
        let context = try Context()
        var server: Socket? = try Socket(context, .router)
        try server!.bind("tcp://127.0.0.1:0")
        let endpoint = server!.lastEndpoint
        let old = try Socket(context, .dealer)
        var monitor: Monitor? = try Monitor(context, watching: old)
        try old.connect(endpoint)
        try old.send([[1]])
        #expect(try Poller.readable([server!], timeoutMilliseconds: 5000) == [true])
        _ = try server!.receive()
        monitor = nil  // the reader goes first
        _ = monitor
        server!.close()  // the peer dies: the old DEALER sees DISCONNECTED
        server = nil
        usleep(200_000)
        // A new server and client in the same context must still talk over TCP.
        let fresh = try Socket(context, .router)
        try fresh.bind("tcp://127.0.0.1:0")
        let client = try Socket(context, .dealer)
        try client.connect(fresh.lastEndpoint)
        try client.send([[2]])
        #expect(try Poller.readable([fresh], timeoutMilliseconds: 3000) == [true])
        old.close()
    }
}
