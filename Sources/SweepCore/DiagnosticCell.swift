import Foundation

/// The one kind of cell that is not science: never in a study, it exercises the system. The
/// benchmarks dispatch a million that succeed at once (`bench dispatch`, `bench swarm`); the
/// tests send ones that fail, crash, hang or take too much memory, to see workers survive them.
///
/// Its JSON is `{"fail":false,"noop":17}` for `succeed` and `fail` (its key hashes
/// `{"noop":17,"fail":false}`), and `{"crash":3}`, `{"hang":4}` and `{"hog":5}` for the others
/// (its key hashes the same bytes). Both forms are what databases of these cells hold.
public struct DiagnosticCell: Sendable, Hashable {
    /// What the cell does when a runner runs it.
    public enum Behaviour: String, Sendable, Hashable, CaseIterable {
        /// Returns at once, with an empty result.
        case succeed
        /// Reports a failure at once (for testing retries).
        case fail
        /// Takes down the cell runner that runs it (abort).
        case crash
        /// Never ends and ignores its time limit: only a kill ends it.
        case hang
        /// Takes `hogBytes`, far more than the allowance it claims (`hogAllowance`).
        case hog
    }

    /// Its number in its sweep (what makes each cell's key distinct).
    public var index: Int
    /// What it does.
    public var behaviour: Behaviour

    /// The cell numbered `index` that does `behaviour`.
    public init(index: Int, behaviour: Behaviour) {
        self.index = index
        self.behaviour = behaviour
    }

    /// The memory allowance a hog cell claims; it then takes `hogBytes`.
    public static let hogAllowance: UInt64 = 128 << 20
    /// The memory a hog cell takes.
    public static let hogBytes = 512 << 20

    /// The bytes hashed into its key.
    var canonicalBytes: [UInt8] {
        switch behaviour {
        case .succeed, .fail: Array("{\"noop\":\(index),\"fail\":\(behaviour == .fail)}".utf8)
        case .crash, .hang, .hog: Array("{\"\(behaviour.rawValue)\":\(index)}".utf8)
        }
    }

    private enum Key: String, CodingKey {
        case noop, fail, crash, hang, hog
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: Key.self)
        switch behaviour {
        case .succeed, .fail:
            try container.encode(index, forKey: .noop)
            try container.encode(behaviour == .fail, forKey: .fail)
        case .crash: try container.encode(index, forKey: .crash)
        case .hang: try container.encode(index, forKey: .hang)
        case .hog: try container.encode(index, forKey: .hog)
        }
    }

    /// The diagnostic cell `decoder` holds, or nil when it holds none (a study cell).
    init?(ifPresentIn decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: Key.self)
        if container.contains(.noop) {
            let fail = try container.decode(Bool.self, forKey: .fail)
            self.init(index: try container.decode(Int.self, forKey: .noop), behaviour: fail ? .fail : .succeed)
        } else if container.contains(.crash) {
            self.init(index: try container.decode(Int.self, forKey: .crash), behaviour: .crash)
        } else if container.contains(.hang) {
            self.init(index: try container.decode(Int.self, forKey: .hang), behaviour: .hang)
        } else if container.contains(.hog) {
            self.init(index: try container.decode(Int.self, forKey: .hog), behaviour: .hog)
        } else {
            return nil
        }
    }
}
