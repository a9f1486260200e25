import Diagnostics
import Foundation
import Glibc
import SweepCore

/// The local channel between a worker and a cell runner: two pipes carrying length-prefixed
/// frames (a big-endian u32 length, then a u16 type and a payload in the wire's field format).
/// In the runner the pipes are file descriptors 3 (jobs in) and 4 (outcomes out), so that
/// nothing a library prints to standard output can corrupt the channel.
enum RunnerChannel {
    /// The runner's end: jobs arrive on fd 3.
    static let runnerInput: Int32 = 3
    /// The runner's end: outcomes leave on fd 4.
    static let runnerOutput: Int32 = 4
    /// Largest frame accepted (a cell's work or result is far smaller; a checkpoint may be
    /// hundreds of MB).
    static let maximumFrame = Int(Wire.maximumCheckpointBytes) + (1 << 20)

    /// worker -> runner: run this cell with this many BLAS threads, within this time (0: no limit),
    /// saving a checkpoint every `checkpointEveryMilliseconds` (0: only on SIGTERM), resuming
    /// from `resume` (a checkpoint; empty: from step 0).
    struct Job: Equatable {
        var key: String
        var threads: UInt16
        var timeLimitMilliseconds: UInt64 = 0
        var checkpointEveryMilliseconds: UInt64 = 0
        var work: [UInt8]
        var resume: [UInt8] = []
    }

    /// runner -> worker: a checkpoint of the running cell, taken at `step`.
    struct Checkpoint: Equatable {
        var step: UInt64
        var bytes: [UInt8]
    }

    /// runner -> worker: the cell's result JSON (ok) or its error text.
    struct Done: Equatable {
        var ok: Bool
        var payload: [UInt8]
    }

    /// runner -> worker, while a cell runs (about once a second): how far it is.
    struct Progress: Equatable {
        var phase: UInt8
        var step: UInt32
        var maxSteps: UInt32
        /// NaN before the first step.
        var trainMSE: Double
        /// The cell's work count (`CellProgress.Snapshot.work`): the stall watchdog's clock.
        var work: UInt64 = 0
    }

    enum Frame: Equatable {
        case job(Job)
        case done(Done)
        case progress(Progress)
        case checkpoint(Checkpoint)

        var bytes: [UInt8] {
            var w = WireWriter()
            switch self {
            case .job(let job):
                w.u16(1)
                w.u16(job.threads)
                w.u64(job.timeLimitMilliseconds)
                w.u64(job.checkpointEveryMilliseconds)
                w.string(job.key)
                w.bytes(job.work)
                w.bytes(job.resume)
            case .done(let done):
                w.u16(2)
                w.u16(done.ok ? 1 : 0)
                w.bytes(done.payload)
            case .progress(let progress):
                w.u16(3)
                w.u16(UInt16(progress.phase))
                w.u32(progress.step)
                w.u32(progress.maxSteps)
                w.u64(progress.trainMSE.bitPattern)
                w.u64(progress.work)
            case .checkpoint(let checkpoint):
                w.u16(4)
                w.u64(checkpoint.step)
                w.bytes(checkpoint.bytes)
            }
            return w.bytes
        }

        init?(_ bytes: [UInt8]) {
            var r = WireReader(bytes)
            do {
                switch try r.u16() {
                case 1:
                    let threads = try r.u16()
                    let limit = try r.u64()
                    let every = try r.u64()
                    let key = try r.string(max: 256, field: "key")
                    let work = try r.bytes(max: RunnerChannel.maximumFrame, field: "work")
                    let resume = try r.bytes(max: RunnerChannel.maximumFrame, field: "resume")
                    self = .job(
                        Job(
                            key: key,
                            threads: threads,
                            timeLimitMilliseconds: limit,
                            checkpointEveryMilliseconds: every,
                            work: work,
                            resume: resume
                        )
                    )
                case 2:
                    let ok = try r.u16() == 1
                    self = .done(Done(ok: ok, payload: try r.bytes(max: RunnerChannel.maximumFrame, field: "payload")))
                case 3:
                    let phase = try r.u16()
                    guard phase <= 255 else { return nil }
                    self = .progress(
                        Progress(
                            phase: UInt8(phase),
                            step: try r.u32(),
                            maxSteps: try r.u32(),
                            trainMSE: Double(bitPattern: try r.u64()),
                            work: try r.u64()
                        )
                    )
                case 4:
                    self = .checkpoint(
                        Checkpoint(
                            step: try r.u64(),
                            bytes: try r.bytes(max: RunnerChannel.maximumFrame, field: "checkpoint")
                        )
                    )
                default:
                    return nil
                }
            } catch {
                return nil
            }
            guard r.atEnd else { return nil }
        }
    }

    /// What reading a frame gave.
    enum Read: Equatable {
        case frame(Frame)
        /// The other end closed (the runner exited or died; the worker went away).
        case endOfFile
        /// Nothing complete before the deadline.
        case timedOut
        case failed(String)
    }

    /// Writes one frame, all of it.
    static func write(_ frame: Frame, to fd: Int32) throws(IsosweepError) {
        let body = frame.bytes
        var w = WireWriter()
        w.u32(UInt32(body.count))
        try write(w.bytes + body, to: fd)
    }

    /// Writes a checkpoint frame straight from its bytes (no copy of a checkpoint that may be
    /// hundreds of MB: its head, then the bytes).
    static func writeCheckpoint(step: UInt64, _ checkpoint: [UInt8], to fd: Int32) throws(IsosweepError) {
        var head = WireWriter()
        head.u32(UInt32(2 + 8 + 4 + checkpoint.count))
        head.u16(4)
        head.u64(step)
        head.u32(UInt32(checkpoint.count))
        try write(head.bytes, to: fd)
        try write(checkpoint, to: fd)
    }

    /// Writes all of `bytes`.
    private static func write(_ bytes: [UInt8], to fd: Int32) throws(IsosweepError) {
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if written < 0 {
                if errno == EINTR { continue }
                throw IsosweepError(.worker, "cannot write to the cell runner: \(String(cString: strerror(errno)))")
            }
            offset += written
        }
    }

    /// Reads frames from one file descriptor, a buffer at a time: a frame that arrived whole
    /// costs one read (and one poll with a deadline), however it is split into parts.
    struct Reader {
        let fd: Int32
        private var buffer: [UInt8] = []
        private var start = 0
        private var chunk = [UInt8](repeating: 0, count: 65_536)

        init(_ fd: Int32) { self.fd = fd }

        /// The next frame; waits at most until `deadline` for one to begin (nil: as long as it
        /// takes). Once a frame has begun, the rest follows at once, so it is awaited whatever the
        /// deadline.
        mutating func next(until deadline: ContinuousClock.Instant?) -> Read {
            var deadline = deadline
            while true {
                if let frame = takeFrame() { return frame }
                if let due = deadline {
                    var descriptor = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                    let ready = poll(&descriptor, 1, max(0, Int32(clamping: (due - ContinuousClock.now).milliseconds)))
                    if ready < 0 && errno == EINTR { continue }
                    if ready < 0 { return .failed("poll: \(String(cString: strerror(errno)))") }
                    if ready == 0 {
                        if start == buffer.count { return .timedOut }
                        deadline = nil
                        continue
                    }
                }
                if start > 0 && start == buffer.count {
                    buffer.removeAll(keepingCapacity: true)
                    start = 0
                }
                let got = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
                if got < 0 {
                    if errno == EINTR { continue }
                    return .failed("read: \(String(cString: strerror(errno)))")
                }
                if got == 0 { return .endOfFile }
                buffer.append(contentsOf: chunk[0..<got])
            }
        }

        /// A complete frame from the buffer, if one is there (or why the bytes are not a frame).
        private mutating func takeFrame() -> Read? {
            guard buffer.count - start >= 4 else { return nil }
            let length = buffer[start..<(start + 4)].reduce(0) { $0 << 8 | Int($1) }
            guard length <= maximumFrame else {
                return .failed("a frame of \(length) bytes on the cell runner's channel")
            }
            guard buffer.count - start - 4 >= length else { return nil }
            let body = Array(buffer[(start + 4)..<(start + 4 + length)])
            start += 4 + length
            if start == buffer.count && buffer.capacity > 1 << 20 {
                // A checkpoint's frame grew the buffer: give that memory back now rather than
                // hold it through the cell (its memory estimate does not count it).
                buffer = []
                start = 0
            }
            guard let frame = Frame(body) else { return .failed("a malformed frame on the cell runner's channel") }
            return .frame(frame)
        }
    }
}
