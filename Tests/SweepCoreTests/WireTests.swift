import Diagnostics
import SweepCore
import Testing
import TrainingCore

/// The wire codec: every message round-trips; anything malformed is refused with a reason.
@Suite struct WireTests {
    static let key = String(repeating: "ab", count: 32)

    static let messages: [Message] = [
        .hello(
            Message.Hello(
                protocolVersion: Wire.protocolVersion,
                scienceVersion: 1,
                workerID: "w-1",
                build: "b",
                host: "h",
                slots: 4
            )
        ),
        .hello(
            Message.Hello(
                protocolVersion: Wire.protocolVersion,
                scienceVersion: 1,
                workerID: "w-2",
                build: "b",
                host: "h",
                slots: 1,
                cores: 32,
                memoryBytes: 128 << 30,
                resumable: [key]
            )
        ),
        .welcome(session: 7, heartbeatMilliseconds: 1000, liveness: 3),
        .refuse(reason: "no", fatal: true),
        .refuse(reason: "again", fatal: false),
        .credit(count: 12),
        .shard(lease: 99, cells: [Message.Assignment(key: key, attempt: 2, work: [1, 2, 3])]),
        .shard(
            lease: 98,
            cells: [
                Message.Assignment(
                    key: key,
                    attempt: 1,
                    work: [4],
                    limits: ResourceLimits(threads: 4, timeLimitMilliseconds: 1_800_000, memoryBytes: 24 << 30)
                )
            ]
        ),
        .shard(
            lease: 97,
            cells: [
                Message.Assignment(
                    key: key,
                    attempt: 2,
                    work: [5],
                    limits: ResourceLimits(checkpointEveryMilliseconds: 5000, stallLimitMilliseconds: 60_000),
                    checkpointBytes: 123_456
                )
            ]
        ),
        .checkpoint(
            Message.CheckpointChunk(key: key, lease: 3, attempt: 2, step: 400, total: 10, offset: 4, bytes: [1, 2, 3])
        ),
        .resume(Message.CheckpointChunk(key: key, lease: 3, attempt: 2, step: 400, total: 0, offset: 0, bytes: [])),
        .result(lease: 99, key: key, attempt: 2, payload: Array("{}".utf8)),
        .failed(lease: 99, key: key, attempt: 1, error: "boom"),
        .ack(keys: [key, key]),
        .heartbeat,
        .bye,
        .progress([]),
        .progress([
            Message.CellProgress(key: key, phase: .train, step: 12, maxSteps: 5000, trainMSE: 0.5, milliseconds: 1200),
            Message.CellProgress(key: key, phase: .setup, step: 0, maxSteps: 0, trainMSE: nil, milliseconds: 3),
            Message.CellProgress(
                key: key,
                phase: .train,
                step: 9,
                maxSteps: 90,
                trainMSE: 1,
                milliseconds: 3,
                resumedFromStep: 0
            ),
        ]),
    ]

    @Test(arguments: messages)
    func roundTrips(_ message: Message) throws {
        #expect(try Message.decode(message.encode()) == message)
    }

    @Test func helloWithoutCoresOrMemoryAndProgressWithAnUnknownPhaseAreRefused() {
        func hello(cores: UInt16, memory: UInt64) -> [[UInt8]] {
            Message.hello(
                Message.Hello(
                    protocolVersion: Wire.protocolVersion,
                    scienceVersion: 1,
                    workerID: "w",
                    build: "b",
                    host: "h",
                    slots: 1,
                    cores: cores,
                    memoryBytes: memory
                )
            ).encode()
        }
        #expect(throws: IsosweepError.self) { try Message.decode(hello(cores: 0, memory: 1 << 30)) }
        #expect(throws: IsosweepError.self) { try Message.decode(hello(cores: 1, memory: 4096)) }
        var progress = Message.progress([
            Message.CellProgress(key: Self.key, phase: .lipschitz, step: 1, maxSteps: 2, trainMSE: nil, milliseconds: 1)
        ]).encode()
        // The phase is the u16 after the 2-byte version, the 4-byte count and the 4+64-byte key.
        progress[1][2 + 4 + 4 + 64 + 1] = 7
        #expect(throws: IsosweepError.self) { try Message.decode(progress) }
    }

    @Test func malformedMessagesAreRefused() {
        let good = Message.result(lease: 1, key: Self.key, attempt: 1, payload: [1]).encode()
        var trailing = good
        trailing[1].append(0)
        var wrongVersion = good
        wrongVersion[1][1] = 99
        var badKey = Message.ack(keys: [Self.key]).encode()
        badKey[1][10] = UInt8(ascii: "Z")
        let version = [UInt8(Wire.protocolVersion >> 8), UInt8(Wire.protocolVersion & 0xFF)]
        let cases: [([[UInt8]], String)] = [
            ([], "expected 2 frames"),
            ([[6]], "expected 2 frames"),
            ([[6, 6], good[1]], "type frame"),
            ([[200], good[1]], "unknown message type"),
            ([good[0], Array(good[1].prefix(9))], "truncated"),
            (trailing, "trailing"),
            (wrongVersion, "protocol version"),
            (badKey, "64 lowercase hex"),
            (Message.credit(count: 0).encode(), "CREDIT 0"),
            (Message.shard(lease: 1, cells: []).encode(), "SHARD of 0"),
            ([[4], version + [0, 0, 0, 1, 0, 0]], "trailing"),
            ([[5], version + [UInt8](repeating: 0, count: 8) + [0, 0, 0x10, 0x01]], "SHARD of 4097"),
            ([[6], version + [UInt8](repeating: 0, count: 8) + [0xFF, 0xFF, 0xFF, 0xFF]], "exceeds"),
        ]
        for (frames, words) in cases {
            do {
                _ = try Message.decode(frames)
                Issue.record("accepted \(frames)")
            } catch {
                #expect(
                    [.malformedMessage, .versionMismatch].contains(error.code) && error.message.contains(words),
                    "\(error.message)"
                )
            }
        }
        do {
            _ = try Message.decode(wrongVersion)
            Issue.record("a message of another protocol version was accepted")
        } catch {
            #expect(error.code == .versionMismatch)
        }
    }

    /// A checkpoint travels in chunks of at most `Wire.maximumCheckpointChunk`, each within its
    /// total; a chunk past its total, an empty chunk of a non-empty checkpoint or a total over the
    /// limit is refused.
    @Test func checkpointChunksSplitAndAreBounded() throws {
        let bytes = (0..<(2 * Wire.maximumCheckpointChunk + 5)).map { UInt8(truncatingIfNeeded: $0) }
        let chunks = Array(Message.CheckpointChunk.split(bytes, key: Self.key, lease: 1, attempt: 1, step: 7))
        #expect(chunks.count == 3)
        #expect(
            chunks.map(\.offset) == [0, UInt64(Wire.maximumCheckpointChunk), UInt64(2 * Wire.maximumCheckpointChunk)]
        )
        #expect(chunks.flatMap(\.bytes) == bytes)
        for chunk in chunks { #expect(try Message.decode(Message.checkpoint(chunk).encode()) == .checkpoint(chunk)) }
        func chunk(total: UInt64, offset: UInt64, count: Int) -> Message {
            .checkpoint(
                Message.CheckpointChunk(
                    key: Self.key,
                    lease: 1,
                    attempt: 1,
                    step: 1,
                    total: total,
                    offset: offset,
                    bytes: [UInt8](repeating: 1, count: count)
                )
            )
        }
        for bad in [
            chunk(total: 4, offset: 2, count: 3), chunk(total: 4, offset: .max, count: 2),
            chunk(total: 4, offset: 0, count: 0),
            chunk(total: Wire.maximumCheckpointBytes + 1, offset: 0, count: 1),
        ] {
            #expect(throws: IsosweepError.self) { try Message.decode(bad.encode()) }
        }
    }

    @Test func randomBytesNeverCrashTheDecoder() {
        let testSeed: UInt64 = 20_261_206
        print("randomBytesNeverCrashTheDecoder: seed \(testSeed)")
        var rng = SeededGenerator(seed: testSeed, stream: .testing)
        var accepted = 0
        for round in 0..<20_000 {
            var frames = Self.messages[round % Self.messages.count].encode()
            // Mutate a few bytes, truncate or extend.
            let mode = rng.next() % 4
            if mode == 0, !frames[1].isEmpty {
                for _ in 0..<(1 + rng.next() % 4) {
                    frames[1][Int(rng.next() % UInt64(frames[1].count))] = UInt8(truncatingIfNeeded: rng.next())
                }
            } else if mode == 1 {
                frames[1] = Array(frames[1].prefix(Int(rng.next() % UInt64(frames[1].count + 1))))
            } else if mode == 2 {
                frames[1] += (0..<(rng.next() % 16)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            } else {
                frames = [
                    [UInt8(truncatingIfNeeded: rng.next() % 12)],
                    (0..<(rng.next() % 64)).map { _ in UInt8(truncatingIfNeeded: rng.next()) },
                ]
            }
            if (try? Message.decode(frames)) != nil { accepted += 1 }
        }
        #expect(accepted < 20_000)
    }
}
