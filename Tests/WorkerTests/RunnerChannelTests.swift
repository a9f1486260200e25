import Foundation
import Testing

@testable import Worker

/// The worker-runner channel over a real pipe: frames survive any split, and a closed end is seen.
@Suite struct RunnerChannelTests {
    @Test func framesArriveWholeHoweverTheBytesAreSplitAndTheEndIsSeen() throws {
        var fds: [Int32] = [0, 0]
        try #require(pipe(&fds) == 0)
        let job = RunnerChannel.Frame.job(
            RunnerChannel.Job(key: "abc", threads: 2, timeLimitMilliseconds: 1500, work: Array("{\"noop\":1}".utf8))
        )
        let done = RunnerChannel.Frame.done(RunnerChannel.Done(ok: true, payload: [7, 8, 9]))
        try RunnerChannel.write(job, to: fds[1])
        try RunnerChannel.write(done, to: fds[1])
        var reader = RunnerChannel.Reader(fds[0])
        #expect(reader.next(until: .now + .seconds(5)) == .frame(job))
        #expect(reader.next(until: .now + .seconds(5)) == .frame(done))
        // Nothing more yet: the deadline passes.
        #expect(reader.next(until: .now + .milliseconds(20)) == .timedOut)
        // A frame written in two parts is read as one.
        var length = RunnerChannel.Frame.done(RunnerChannel.Done(ok: false, payload: [])).bytes
        let header: [UInt8] = [0, 0, 0, UInt8(length.count)]
        length = header + length
        _ = length.prefix(3).withUnsafeBytes { write(fds[1], $0.baseAddress, 3) }
        _ = length.dropFirst(3).withUnsafeBytes { write(fds[1], $0.baseAddress, length.count - 3) }
        #expect(
            reader.next(until: .now + .seconds(5))
                == .frame(.done(RunnerChannel.Done(ok: false, payload: [])))
        )
        close(fds[1])
        #expect(reader.next(until: .now + .seconds(5)) == .endOfFile)
        close(fds[0])
    }

    @Test func garbageIsRefusedNotTrusted() throws {
        var fds: [Int32] = [0, 0]
        try #require(pipe(&fds) == 0)
        defer { close(fds[0]) }
        let garbage: [UInt8] = [0, 0, 0, 3, 9, 9, 9]
        _ = garbage.withUnsafeBytes { write(fds[1], $0.baseAddress, garbage.count) }
        var reader = RunnerChannel.Reader(fds[0])
        if case .failed = reader.next(until: .now + .seconds(5)) {
        } else {
            Issue.record("a malformed frame was accepted")
        }
        let huge: [UInt8] = [0xFF, 0xFF, 0xFF, 0xFF]
        _ = huge.withUnsafeBytes { write(fds[1], $0.baseAddress, 4) }
        close(fds[1])
        var second = RunnerChannel.Reader(fds[0])
        if case .failed = second.next(until: .now + .seconds(5)) {} else { Issue.record("a 4 GiB frame was accepted") }
    }
}
