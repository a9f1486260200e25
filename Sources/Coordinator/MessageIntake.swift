import Diagnostics
import Foundation
import Logging
import SweepCore
import TrainingCore
import ZeroMQ

/// Turns ROUTER frames into scheduler events. Every frame is validated; a malformed message is
/// counted, logged (at most once a minute per peer) and dropped, never a crash.
struct MessageIntake {
    let router: Socket
    let logger: Logger
    /// No-op benchmark cells carry no metrics; study cells must.
    let allowEmptyResults: Bool
    var complaints = ComplaintLimiter()
    let decoder = JSONDecoder()

    /// A received ROUTER message as a scheduler event, or nil (logged) when it is malformed.
    mutating func decode(
        _ received: (frames: [[UInt8]], truncated: Bool),
        now: ContinuousClock.Instant
    ) -> Scheduler.Event? {
        let frames = received.frames
        guard let identity = frames.first, !identity.isEmpty else { return nil }
        guard !received.truncated else {
            complain(identity, "a message of more than \(Socket.maximumFrames) frames", now: now)
            return nil
        }
        let message: Message
        do {
            message = try Message.decode(Array(frames.dropFirst()))
        } catch {
            complain(identity, error.message, now: now)
            if error.code == .versionMismatch {
                let refusal = Message.refuse(
                    reason: "\(error.message): run the same isosweep build everywhere",
                    fatal: true
                )
                _ = try? router.send([identity] + refusal.encode(), dontWait: true)
            }
            return nil
        }
        if case .result(_, let key, _, let payload) = message, let problem = validate(payload, key: key) {
            complain(identity, "RESULT for \(key.prefix(12)): \(problem)", now: now)
            return nil
        }
        return .message(from: identity, message)
    }

    /// A result must be the metrics of exactly the cell it claims to be (or empty for a no-op cell).
    func validate(_ payload: [UInt8], key: String) -> String? {
        if payload.isEmpty { return allowEmptyResults ? nil : "a study cell's result must carry its metrics" }
        guard let result = try? decoder.decode(CellResult.self, from: Data(payload)) else {
            return "the metrics are not a cell result"
        }
        guard CellWork.train(result.parameters).key == key else { return "its parameters do not hash to its key" }
        return nil
    }

    mutating func complain(_ identity: [UInt8], _ what: String, now: ContinuousClock.Instant) {
        if complaints.shouldLog(identity, now: now) {
            logger.warning("dropped a malformed message", metadata: ["peer": "\(hex(identity))", "reason": "\(what)"])
        }
    }
}

/// Logs at most one complaint per sender per minute, so a hostile peer cannot flood the log.
struct ComplaintLimiter {
    var last: [[UInt8]: ContinuousClock.Instant] = [:]
    /// Complaints seen in total (logged or not).
    var count = 0

    mutating func shouldLog(_ peer: [UInt8], now: ContinuousClock.Instant) -> Bool {
        count += 1
        if let previous = last[peer], now - previous < .seconds(60) { return false }
        if last.count > 10_000 { last.removeAll() }
        last[peer] = now
        return true
    }
}
