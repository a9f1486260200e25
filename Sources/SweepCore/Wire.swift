// scripts/fuzz-wire.sh compiles this file and IsosweepError.swift as one module.
#if canImport(Diagnostics)
public import Diagnostics
#endif

/// The coordinator-worker protocol: multipart ZeroMQ messages of a one-byte type frame and a
/// binary payload whose every field is validated on decode (lengths, ranges, no trailing bytes).
public enum Wire {
    /// Bumped on any change to the messages; a worker of another version is refused at HELLO.
    /// Version 2: a SHARD's cell work is `CellWork`'s flat JSON (version 1 sent Swift's
    /// synthesized encoding). Version 3: each SHARD cell carries its `Limits`. Version 4: HELLO
    /// advertises cores and memory, `Limits` carries the memory allowance, and PROGRESS exists.
    /// Version 5: HELLO names the BLAS kernels the worker's cells run (`blas_core`). Version 6:
    /// checkpoints (CHECKPOINT and RESUME, a SHARD cell's checkpoint size, `Limits`'
    /// checkpoint interval and stall limit, PROGRESS's resumed step).
    public static let protocolVersion: UInt16 = 6
    /// Most BLAS threads a cell may be given.
    public static let maximumThreads: UInt16 = 1024
    /// Longest time limit a cell may be given (30 days), in milliseconds.
    public static let maximumTimeLimitMilliseconds: UInt64 = 30 * 24 * 3600 * 1000
    /// Longest cell key (hex SHA-256).
    public static let keyLength = 64
    /// Most cells in one SHARD.
    public static let maximumShardCells = 4096
    /// Most bytes of a cell's work description or of a result's metrics.
    public static let maximumBlobBytes = 1 << 20
    /// Most keys in one ACK.
    public static let maximumAckKeys = 65_536
    /// Least memory a worker may advertise (1 MiB).
    public static let minimumWorkerMemory: UInt64 = 1 << 20
    /// Most bytes of a checkpoint in one CHECKPOINT or RESUME message (a checkpoint travels in
    /// chunks, so that no message nears the sockets' 64 MiB limit).
    public static let maximumCheckpointChunk = 8 << 20
    /// Largest checkpoint accepted (2 GiB: the largest cell of the cluster sweep writes ~100 MB).
    public static let maximumCheckpointBytes: UInt64 = 1 << 31
}

/// Messages between coordinator and workers (zguide's Paranoid Pirate with credit-based flow).
public enum Message: Sendable, Equatable {
    /// worker -> coordinator: who it is and how many cells it runs at once.
    case hello(Hello)
    /// coordinator -> worker: registered; heartbeat every `heartbeatMilliseconds`, dead after `liveness` missed.
    case welcome(session: UInt64, heartbeatMilliseconds: UInt32, liveness: UInt16)
    /// coordinator -> worker: not registered, and why. `fatal`: the worker cannot join this
    /// coordinator as it is (e.g. another protocol version) and should stop trying; otherwise it
    /// should say HELLO again (e.g. the coordinator restarted and does not know it).
    case refuse(reason: String, fatal: Bool)
    /// worker -> coordinator: it can take `count` more cells.
    case credit(count: UInt32)
    /// coordinator -> worker: cells to run under one lease.
    case shard(lease: UInt64, cells: [Assignment])
    /// worker -> coordinator: one cell's result (CellResult JSON).
    case result(lease: UInt64, key: String, attempt: UInt16, payload: [UInt8])
    /// worker -> coordinator: one cell failed.
    case failed(lease: UInt64, key: String, attempt: UInt16, error: String)
    /// coordinator -> worker: these results are committed.
    case ack(keys: [String])
    /// coordinator -> worker: still alive (any message counts as one). Workers send an empty
    /// PROGRESS instead, so that each side's heartbeat is its own.
    case heartbeat
    /// worker -> coordinator: leaving; its unfinished cells go back to the queue.
    case bye
    /// worker -> coordinator: how far its running cells are (about once a heartbeat interval;
    /// counts as a heartbeat).
    case progress([CellProgress])
    /// worker -> coordinator: a chunk of a running cell's checkpoint, under its lease.
    case checkpoint(CheckpointChunk)
    /// coordinator -> worker: a chunk of the checkpoint a cell just leased resumes from (the
    /// SHARD said how many bytes to expect).
    case resume(CheckpointChunk)

    /// A piece of a cell's checkpoint (a safetensors file): bytes offset..<offset + count of
    /// `total`, in order.
    public struct CheckpointChunk: Sendable, Equatable {
        public var key: String
        public var lease: UInt64
        public var attempt: UInt16
        /// The training step the checkpoint was taken at.
        public var step: UInt64
        public var total: UInt64
        public var offset: UInt64
        public var bytes: [UInt8]

        public init(
            key: String,
            lease: UInt64,
            attempt: UInt16,
            step: UInt64,
            total: UInt64,
            offset: UInt64,
            bytes: [UInt8]
        ) {
            self.key = key
            self.lease = lease
            self.attempt = attempt
            self.step = step
            self.total = total
            self.offset = offset
            self.bytes = bytes
        }

        /// A checkpoint of `bytes` as chunks of at most `Wire.maximumCheckpointChunk`, each made
        /// as it is taken (a sender holds one chunk at a time, not a second copy of the whole).
        public static func split(
            _ bytes: [UInt8],
            key: String,
            lease: UInt64,
            attempt: UInt16,
            step: UInt64
        ) -> LazyMapSequence<StrideTo<Int>, CheckpointChunk> {
            stride(from: 0, to: max(1, bytes.count), by: Wire.maximumCheckpointChunk).lazy.map { start in
                CheckpointChunk(
                    key: key,
                    lease: lease,
                    attempt: attempt,
                    step: step,
                    total: UInt64(bytes.count),
                    offset: UInt64(start),
                    bytes: Array(bytes[start..<min(bytes.count, start + Wire.maximumCheckpointChunk)])
                )
            }
        }
    }

    /// How far one running cell is, as its runner last reported.
    public struct CellProgress: Sendable, Equatable {
        /// What a cell is doing.
        public enum Phase: UInt8, Sendable, Equatable, CaseIterable {
            /// Making its data and network.
            case setup = 0
            case train = 1
            case lipschitz = 2

            /// The name `/status` shows.
            public var name: String {
                switch self {
                case .setup: "setup"
                case .train: "train"
                case .lipschitz: "lipschitz"
                }
            }
        }

        public var key: String
        public var phase: Phase
        /// Training steps taken, and the most it may take.
        public var step: UInt32
        public var maxSteps: UInt32
        /// The latest training loss (nil before the first step).
        public var trainMSE: Double?
        /// Time since the runner started the cell.
        public var milliseconds: UInt64
        /// The step this attempt resumed from, if it resumed from a checkpoint.
        public var resumedFromStep: UInt64?

        public init(
            key: String,
            phase: Phase,
            step: UInt32,
            maxSteps: UInt32,
            trainMSE: Double?,
            milliseconds: UInt64,
            resumedFromStep: UInt64? = nil
        ) {
            self.resumedFromStep = resumedFromStep
            self.key = key
            self.phase = phase
            self.step = step
            self.maxSteps = maxSteps
            self.trainMSE = trainMSE
            self.milliseconds = milliseconds
        }
    }

    /// A worker's self-description.
    public struct Hello: Sendable, Equatable {
        public var protocolVersion: UInt16
        public var scienceVersion: UInt16
        /// Stable across reconnections of the same worker process.
        public var workerID: String
        public var build: String
        public var host: String
        public var slots: UInt16
        /// CPU cores its cells may use together (the BLAS threads of the cells it holds add up
        /// to at most this).
        public var cores: UInt16
        /// Bytes of memory its cells may use together (their estimates add up to at most this).
        public var memoryBytes: UInt64
        /// The OpenBLAS kernels its cells run ("SkylakeX", "Prescott", ...).
        public var blasCore: String
        /// Cells this worker is still computing, or has results for, from an earlier session
        /// (e.g. before the coordinator restarted): the coordinator may lease them back to it
        /// instead of computing them again.
        public var resumable: [String]

        public init(
            protocolVersion: UInt16,
            scienceVersion: UInt16,
            workerID: String,
            build: String,
            host: String,
            slots: UInt16,
            cores: UInt16 = 1,
            memoryBytes: UInt64 = .max,
            blasCore: String = "unknown",
            resumable: [String] = []
        ) {
            self.protocolVersion = protocolVersion
            self.scienceVersion = scienceVersion
            self.workerID = workerID
            self.build = build
            self.host = host
            self.slots = slots
            self.cores = cores
            self.memoryBytes = memoryBytes
            self.blasCore = blasCore
            self.resumable = resumable
        }
    }

    /// One cell of a shard.
    public struct Assignment: Sendable, Equatable {
        public var key: String
        public var attempt: UInt16
        /// CellWork as JSON.
        public var work: [UInt8]
        /// What the cell may use (the sweep file's `resources:`).
        public var limits: ResourceLimits
        /// The size of the checkpoint the cell resumes from, which RESUME messages bring after
        /// the SHARD (0: none; the cell starts from step 0).
        public var checkpointBytes: UInt64

        public init(
            key: String,
            attempt: UInt16,
            work: [UInt8],
            limits: ResourceLimits = ResourceLimits(),
            checkpointBytes: UInt64 = 0
        ) {
            self.key = key
            self.attempt = attempt
            self.work = work
            self.limits = limits
            self.checkpointBytes = checkpointBytes
        }
    }

    var typeCode: UInt8 {
        switch self {
        case .hello: 1
        case .welcome: 2
        case .refuse: 3
        case .credit: 4
        case .shard: 5
        case .result: 6
        case .failed: 7
        case .ack: 8
        case .heartbeat: 9
        case .bye: 10
        case .progress: 11
        case .checkpoint: 12
        case .resume: 13
        }
    }

    /// Only workers send it (a worker that receives one is not talking to a coordinator).
    public var isFromWorker: Bool {
        switch self {
        case .hello, .credit, .result, .failed, .bye, .progress, .checkpoint: true
        case .welcome, .refuse, .shard, .ack, .heartbeat, .resume: false
        }
    }

    /// The message's name, for logs.
    public var name: String {
        switch self {
        case .hello: "HELLO"
        case .welcome: "WELCOME"
        case .refuse: "REFUSE"
        case .credit: "CREDIT"
        case .shard: "SHARD"
        case .result: "RESULT"
        case .failed: "FAILED"
        case .ack: "ACK"
        case .heartbeat: "HEARTBEAT"
        case .bye: "BYE"
        case .progress: "PROGRESS"
        case .checkpoint: "CHECKPOINT"
        case .resume: "RESUME"
        }
    }

    /// The message as frames: [type, payload].
    public func encode() -> [[UInt8]] {
        var w = WireWriter()
        w.u16(Wire.protocolVersion)
        switch self {
        case .hello(let h):
            w.u16(h.protocolVersion)
            w.u16(h.scienceVersion)
            w.string(h.workerID)
            w.string(h.build)
            w.string(h.host)
            w.u16(h.slots)
            w.u16(h.cores)
            w.u64(h.memoryBytes)
            w.string(h.blasCore)
            w.u32(UInt32(h.resumable.count))
            for key in h.resumable { w.string(key) }
        case .welcome(let session, let heartbeat, let liveness):
            w.u64(session)
            w.u32(heartbeat)
            w.u16(liveness)
        case .refuse(let reason, let fatal):
            w.string(reason)
            w.u16(fatal ? 1 : 0)
        case .credit(let count):
            w.u32(count)
        case .shard(let lease, let cells):
            w.u64(lease)
            w.u32(UInt32(cells.count))
            for cell in cells {
                w.string(cell.key)
                w.u16(cell.attempt)
                w.bytes(cell.work)
                w.u16(cell.limits.threads)
                w.u64(cell.limits.timeLimitMilliseconds)
                w.u64(cell.limits.memoryBytes)
                w.u64(cell.limits.checkpointEveryMilliseconds)
                w.u64(cell.limits.stallLimitMilliseconds)
                w.u64(cell.checkpointBytes)
            }
        case .result(let lease, let key, let attempt, let payload):
            w.u64(lease)
            w.string(key)
            w.u16(attempt)
            w.bytes(payload)
        case .failed(let lease, let key, let attempt, let error):
            w.u64(lease)
            w.string(key)
            w.u16(attempt)
            w.string(error)
        case .ack(let keys):
            w.u32(UInt32(keys.count))
            for key in keys { w.string(key) }
        case .heartbeat, .bye:
            break
        case .progress(let cells):
            w.u32(UInt32(cells.count))
            for cell in cells {
                w.string(cell.key)
                w.u16(UInt16(cell.phase.rawValue))
                w.u32(cell.step)
                w.u32(cell.maxSteps)
                w.u64((cell.trainMSE ?? .nan).bitPattern)
                w.u64(cell.milliseconds)
                w.u64(cell.resumedFromStep ?? .max)
            }
        case .checkpoint(let chunk), .resume(let chunk):
            w.string(chunk.key)
            w.u64(chunk.lease)
            w.u16(chunk.attempt)
            w.u64(chunk.step)
            w.u64(chunk.total)
            w.u64(chunk.offset)
            w.bytes(chunk.bytes)
        }
        return [[typeCode], w.bytes]
    }

    /// Decodes and validates frames; throws an IsosweepError saying what is wrong.
    public static func decode(_ frames: [[UInt8]]) throws(IsosweepError) -> Message {
        guard frames.count == 2 else {
            throw IsosweepError(.malformedMessage, "expected 2 frames (type, payload), got \(frames.count)")
        }
        guard frames[0].count == 1 else {
            throw IsosweepError(.malformedMessage, "the type frame must be 1 byte, is \(frames[0].count)")
        }
        var r = WireReader(frames[1])
        let version = try r.u16()
        guard version == Wire.protocolVersion else {
            throw IsosweepError(
                .versionMismatch,
                "protocol version \(version), this side speaks \(Wire.protocolVersion)"
            )
        }
        let message = try decodeBody(type: frames[0][0], from: &r)
        guard r.atEnd else {
            throw IsosweepError(.malformedMessage, "\(message.name) has \(r.remaining) trailing bytes")
        }
        return message
    }

    /// Reads the fields of a message of type code `type` that follow the protocol version, leaving
    /// any trailing bytes for `decode` to refuse.
    private static func decodeBody(type: UInt8, from r: inout WireReader) throws(IsosweepError) -> Message {
        switch type {
        case 1:
            return try decodeHello(from: &r)
        case 2:
            let session = try r.u64()
            let heartbeat = try r.u32()
            let liveness = try r.u16()
            guard heartbeat >= 10 && heartbeat <= 3_600_000, liveness >= 1 else {
                throw IsosweepError(.malformedMessage, "WELCOME heartbeat or liveness out of range")
            }
            return .welcome(session: session, heartbeatMilliseconds: heartbeat, liveness: liveness)
        case 3:
            let reason = try r.string(max: 4096, field: "reason")
            let fatal = try r.u16()
            guard fatal <= 1 else { throw IsosweepError(.malformedMessage, "REFUSE fatal flag must be 0 or 1") }
            return .refuse(reason: reason, fatal: fatal == 1)
        case 4:
            let count = try r.u32()
            guard count >= 1 && count <= 1_000_000 else {
                throw IsosweepError(.malformedMessage, "CREDIT \(count) outside 1...1000000")
            }
            return .credit(count: count)
        case 5:
            return try decodeShard(from: &r)
        case 6:
            return .result(
                lease: try r.u64(),
                key: try r.key(),
                attempt: try r.u16(),
                payload: try r.bytes(max: Wire.maximumBlobBytes, field: "result")
            )
        case 7:
            return .failed(
                lease: try r.u64(),
                key: try r.key(),
                attempt: try r.u16(),
                error: try r.string(max: 8192, field: "error")
            )
        case 8:
            let count = try r.u32()
            guard count <= Wire.maximumAckKeys else {
                throw IsosweepError(.malformedMessage, "ACK of \(count) keys, limit \(Wire.maximumAckKeys)")
            }
            var keys: [String] = []
            keys.reserveCapacity(Int(count))
            for _ in 0..<count { keys.append(try r.key()) }
            return .ack(keys: keys)
        case 9:
            return .heartbeat
        case 10:
            return .bye
        case 11:
            return try decodeProgress(from: &r)
        case 12:
            return .checkpoint(try decodeCheckpointChunk(from: &r))
        case 13:
            return .resume(try decodeCheckpointChunk(from: &r))
        default:
            throw IsosweepError(.malformedMessage, "unknown message type \(type)")
        }
    }

    /// Reads a HELLO's fields, then checks that the worker it describes can take cells (an id,
    /// 1...4096 slots, a core, at least `Wire.minimumWorkerMemory`).
    private static func decodeHello(from r: inout WireReader) throws(IsosweepError) -> Message {
        var hello = Hello(
            protocolVersion: try r.u16(),
            scienceVersion: try r.u16(),
            workerID: try r.string(max: 128, field: "worker id"),
            build: try r.string(max: 128, field: "build"),
            host: try r.string(max: 255, field: "host"),
            slots: try r.u16(),
            cores: try r.u16(),
            memoryBytes: try r.u64(),
            blasCore: try r.string(max: 64, field: "blas core")
        )
        let resumable = try r.u32()
        guard resumable <= Wire.maximumShardCells else {
            throw IsosweepError(
                .malformedMessage,
                "HELLO offers \(resumable) cells to resume, limit \(Wire.maximumShardCells)"
            )
        }
        for _ in 0..<resumable { hello.resumable.append(try r.key()) }
        guard !hello.workerID.isEmpty else {
            throw IsosweepError(.malformedMessage, "HELLO has an empty worker id")
        }
        guard hello.slots >= 1 && hello.slots <= 4096 else {
            throw IsosweepError(.malformedMessage, "HELLO slots \(hello.slots) outside 1...4096")
        }
        guard hello.cores >= 1 else { throw IsosweepError(.malformedMessage, "HELLO advertises 0 cores") }
        guard hello.memoryBytes >= Wire.minimumWorkerMemory else {
            throw IsosweepError(
                .malformedMessage,
                "HELLO advertises \(hello.memoryBytes) bytes of memory, less than \(Wire.minimumWorkerMemory)"
            )
        }
        return .hello(hello)
    }

    /// Reads a SHARD: its lease and 1...`Wire.maximumShardCells` cells, each with limits in range.
    private static func decodeShard(from r: inout WireReader) throws(IsosweepError) -> Message {
        let lease = try r.u64()
        let count = try r.u32()
        guard count >= 1 && count <= Wire.maximumShardCells else {
            throw IsosweepError(.malformedMessage, "SHARD of \(count) cells, limit \(Wire.maximumShardCells)")
        }
        var cells: [Assignment] = []
        for _ in 0..<count {
            let key = try r.key()
            let attempt = try r.u16()
            let work = try r.bytes(max: Wire.maximumBlobBytes, field: "work")
            let limits = ResourceLimits(
                threads: try r.u16(),
                timeLimitMilliseconds: try r.u64(),
                memoryBytes: try r.u64(),
                checkpointEveryMilliseconds: try r.u64(),
                stallLimitMilliseconds: try r.u64()
            )
            let checkpointBytes = try r.u64()
            guard limits.threads <= Wire.maximumThreads,
                limits.timeLimitMilliseconds <= Wire.maximumTimeLimitMilliseconds,
                limits.checkpointEveryMilliseconds <= Wire.maximumTimeLimitMilliseconds,
                limits.stallLimitMilliseconds <= Wire.maximumTimeLimitMilliseconds,
                checkpointBytes <= Wire.maximumCheckpointBytes
            else {
                throw IsosweepError(.malformedMessage, "SHARD cell limits out of range: \(limits)")
            }
            cells.append(
                Assignment(key: key, attempt: attempt, work: work, limits: limits, checkpointBytes: checkpointBytes)
            )
        }
        return .shard(lease: lease, cells: cells)
    }

    /// Reads a PROGRESS's cells (at most `Wire.maximumShardCells`); a non-finite loss is read as
    /// no loss yet.
    private static func decodeProgress(from r: inout WireReader) throws(IsosweepError) -> Message {
        let count = try r.u32()
        guard count <= Wire.maximumShardCells else {
            throw IsosweepError(.malformedMessage, "PROGRESS of \(count) cells, limit \(Wire.maximumShardCells)")
        }
        var cells: [CellProgress] = []
        for _ in 0..<count {
            let key = try r.key()
            let code = try r.u16()
            guard let phase = CellProgress.Phase(rawValue: UInt8(clamping: code)), code <= 255 else {
                throw IsosweepError(.malformedMessage, "PROGRESS phase \(code) is not 0, 1 or 2")
            }
            let step = try r.u32()
            let maxSteps = try r.u32()
            let mse = Double(bitPattern: try r.u64())
            let milliseconds = try r.u64()
            let resumed = try r.u64()
            cells.append(
                CellProgress(
                    key: key,
                    phase: phase,
                    step: step,
                    maxSteps: maxSteps,
                    trainMSE: mse.isFinite ? mse : nil,
                    milliseconds: milliseconds,
                    resumedFromStep: resumed == .max ? nil : resumed
                )
            )
        }
        return .progress(cells)
    }
}

extension Message {
    /// Reads a CHECKPOINT's or RESUME's chunk: a key, a total within `Wire.maximumCheckpointBytes`
    /// and a chunk of at most `Wire.maximumCheckpointChunk` bytes that lies within it (empty only
    /// for an empty checkpoint).
    fileprivate static func decodeCheckpointChunk(from r: inout WireReader) throws(IsosweepError) -> CheckpointChunk {
        let chunk = CheckpointChunk(
            key: try r.key(),
            lease: try r.u64(),
            attempt: try r.u16(),
            step: try r.u64(),
            total: try r.u64(),
            offset: try r.u64(),
            bytes: try r.bytes(max: Wire.maximumCheckpointChunk, field: "checkpoint chunk")
        )
        let end = chunk.offset.addingReportingOverflow(UInt64(chunk.bytes.count))
        guard chunk.total <= Wire.maximumCheckpointBytes, !end.overflow, end.partialValue <= chunk.total,
            !chunk.bytes.isEmpty || chunk.total == 0
        else {
            throw IsosweepError(
                .malformedMessage,
                "checkpoint chunk of \(chunk.bytes.count) bytes at \(chunk.offset) of \(chunk.total) is out of range"
            )
        }
        return chunk
    }
}

/// Big-endian field writer of the wire format (also used for the worker's hand-off frames and the
/// cell runners' channel).
public struct WireWriter: Sendable {
    public private(set) var bytes: [UInt8] = []

    public init() {}

    public mutating func u16(_ v: UInt16) {
        for s in [8, 0] { bytes.append(UInt8(truncatingIfNeeded: v >> UInt16(s))) }
    }
    public mutating func u32(_ v: UInt32) {
        for s in stride(from: 24, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: v >> UInt32(s))) }
    }
    public mutating func u64(_ v: UInt64) {
        for s in stride(from: 56, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: v >> UInt64(s))) }
    }
    /// A u32 length, then the bytes.
    public mutating func bytes(_ b: [UInt8]) {
        u32(UInt32(b.count))
        bytes.append(contentsOf: b)
    }
    /// The string's UTF-8 bytes, length first.
    public mutating func string(_ s: String) { bytes(Array(s.utf8)) }
}

/// Big-endian field reader of the wire format; every read is bounds-checked.
public struct WireReader: Sendable {
    let data: [UInt8]
    var offset = 0

    public init(_ data: [UInt8]) { self.data = data }

    public var atEnd: Bool { offset == data.count }
    public var remaining: Int { data.count - offset }

    mutating func take(_ count: Int, _ field: String) throws(IsosweepError) -> ArraySlice<UInt8> {
        guard count >= 0, count <= remaining else {
            throw IsosweepError(.malformedMessage, "truncated \(field): needs \(count) bytes, \(remaining) left")
        }
        defer { offset += count }
        return data[offset..<(offset + count)]
    }

    public mutating func u16() throws(IsosweepError) -> UInt16 {
        try take(2, "u16").reduce(0) { $0 << 8 | UInt16($1) }
    }
    public mutating func u32() throws(IsosweepError) -> UInt32 {
        try take(4, "u32").reduce(0) { $0 << 8 | UInt32($1) }
    }
    public mutating func u64() throws(IsosweepError) -> UInt64 {
        try take(8, "u64").reduce(0) { $0 << 8 | UInt64($1) }
    }
    /// Length-prefixed bytes, at most `max` of them; `field` names them in errors.
    public mutating func bytes(max: Int, field: String) throws(IsosweepError) -> [UInt8] {
        let count = Int(try u32())
        guard count <= max else { throw IsosweepError(.malformedMessage, "\(field) of \(count) bytes exceeds \(max)") }
        return Array(try take(count, field))
    }
    /// A length-prefixed UTF-8 string of at most `max` bytes; `field` names it in errors.
    public mutating func string(max: Int, field: String) throws(IsosweepError) -> String {
        let raw = try bytes(max: max, field: field)
        guard let s = String(validating: raw, as: UTF8.self) else {
            throw IsosweepError(.malformedMessage, "\(field) is not UTF-8")
        }
        return s
    }
    /// A cell key: exactly 64 lowercase hex digits.
    mutating func key() throws(IsosweepError) -> String {
        let raw = try bytes(max: Wire.keyLength, field: "cell key")
        guard raw.count == Wire.keyLength, raw.allSatisfy({ (48...57).contains($0) || (97...102).contains($0) }) else {
            throw IsosweepError(.malformedMessage, "a cell key must be 64 lowercase hex digits")
        }
        return String(decoding: raw, as: UTF8.self)
    }
}
