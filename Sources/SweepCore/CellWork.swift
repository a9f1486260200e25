public import Foundation
public import TrainingCore

/// What a worker is asked to compute for one cell.
///
/// Its JSON, the same in the store (`cells.work`) and on the wire (SHARD), is flat: a study cell
/// is its resolved parameters, `{"activation":"relu","d":8,"data":"sphere",...,"width":32}`
/// (the keys of `CellParameters.catalogue`; unset optional parameters are absent), and a
/// diagnostic cell is `{"fail":false,"noop":17}` (`{"crash":3}`, `{"hang":4}`, `{"hog":5}`).
public enum CellWork: Codable, Sendable, Hashable {
    /// A cell of a study: train and measure.
    case train(CellParameters)
    /// A diagnostic cell, never in a study: the benchmarks measure the dispatch system with it,
    /// and the tests how workers survive a cell that fails, crashes, hangs or takes too much memory.
    case diagnostic(DiagnosticCell)

    /// A cell that does nothing and returns at once (`fail`: reports a failure instead).
    public static func noop(index: Int, fail: Bool) -> CellWork {
        .diagnostic(DiagnosticCell(index: index, behaviour: fail ? .fail : .succeed))
    }

    /// The cell's key: SHA-256 of its canonical form (resolved parameters, sorted keys) and the
    /// science version, so the same cell in two sweeps is the same cell.
    public var key: String {
        SHA256.hex(canonicalBytes)
    }

    /// The key as 32 bytes (`key` is its hex).
    public var cellKey: CellKey {
        SHA256.key(canonicalBytes)
    }

    /// The key the cell has under another science version: what a database written by that
    /// version stores for it (the version is hashed into every training cell's key).
    public func key(scienceVersion version: Int) -> String {
        SHA256.hex(canonicalBytes(scienceVersion: version))
    }

    /// The JSON hashed into the key.
    var canonicalBytes: [UInt8] { canonicalBytes(scienceVersion: scienceVersion) }

    func canonicalBytes(scienceVersion version: Int) -> [UInt8] {
        switch self {
        case .train(let parameters):
            let body =
                (try? Self.encoder.encode(KeyedCell(science_version: version, cell: parameters.resolved())))
                ?? Data()
            return [UInt8](body)
        case .diagnostic(let cell):
            return cell.canonicalBytes
        }
    }

    /// A rough cost in flops, to dispatch the largest cells first.
    public var estimatedCost: Double {
        switch self {
        case .diagnostic: return 0
        case .train(let p):
            let n = Double(p.n)
            let d = Double(p.d)
            let k = Double(p.width)
            switch p.trainer {
            case .randomFeatures: return 2 * n * d * k + 4 * n * (k + 1) * min(n, k + 1)
            case .construction: return 2 * n * n * d
            case .adam, .gd:
                // A penalised step is five GEMMs (four for relu) where a plain one is two.
                let perStep = (p.gradPenalty ?? 0) > 0 ? 10.0 : 4.0
                // A smoothing step is a penalised pass over the training points and as many
                // off-data points (`SmoothingUnderFit`).
                let smoothing = Double(p.smoothAfterFit ?? 0) * 20 * n * d * k
                return Double(p.maxSteps + (p.extraSteps ?? 0)) * perStep * n * d * k + smoothing
            }
        }
    }

    /// The training parameters, if this is a study cell.
    public var parameters: CellParameters? {
        if case .train(let p) = self { return p }
        return nil
    }

    /// Writes the flat JSON object: a study cell's parameters, or a diagnostic cell's keys.
    public func encode(to encoder: any Encoder) throws {
        switch self {
        case .train(let parameters): try parameters.encode(to: encoder)
        case .diagnostic(let cell): try cell.encode(to: encoder)
        }
    }

    /// Reads what `encode(to:)` writes: a diagnostic cell by its keys, anything else as parameters.
    public init(from decoder: any Decoder) throws {
        if let cell = try DiagnosticCell(ifPresentIn: decoder) {
            self = .diagnostic(cell)
        } else {
            self = .train(try CellParameters(from: decoder))
        }
    }

    /// The work as its JSON (sorted keys), as stored and sent.
    public var json: [UInt8] {
        // No-op cells are written by hand (a million of them must not take JSONEncoder's time);
        // the same bytes JSONEncoder writes, which `noop(_:)` reads back.
        if case .diagnostic(let cell) = self, cell.behaviour == .succeed || cell.behaviour == .fail {
            return Array("{\"fail\":\(cell.behaviour == .fail),\"noop\":\(cell.index)}".utf8)
        }
        return (try? Self.encoder.encode(self)).map(Array.init) ?? []
    }

    /// Decodes work from its JSON with `decoder` (reuse one where many cells pass); nil when it is
    /// not cell work.
    public init?(json: [UInt8], decoder: JSONDecoder = JSONDecoder()) {
        if let noop = Self.noop(json) {
            self = noop
            return
        }
        guard let work = try? decoder.decode(CellWork.self, from: Data(json)) else { return nil }
        self = work
    }

    /// Whether `json` is a no-op cell's (the fast check of the benchmark's path).
    public static func isNoop(_ json: [UInt8]) -> Bool { noop(json) != nil }

    /// A no-op cell exactly as `json` writes it (`{"fail":false,"noop":17}`), without JSONDecoder:
    /// the dispatch benchmark measures the system, not the decoder. Anything else is nil.
    private static func noop(_ json: [UInt8]) -> CellWork? {
        for (fail, prefix) in [
            (false, Array(#"{"fail":false,"noop":"#.utf8)), (true, Array(#"{"fail":true,"noop":"#.utf8)),
        ] {
            guard json.count > prefix.count + 1, json.starts(with: prefix), json.last == UInt8(ascii: "}") else {
                continue
            }
            let digits = json[prefix.count..<(json.count - 1)]
            guard digits.count <= 18, digits.allSatisfy({ (48...57).contains($0) }),
                let index = Int(String(decoding: digits, as: UTF8.self))
            else { return nil }
            return .noop(index: index, fail: fail)
        }
        return nil
    }

    static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }()

    private struct KeyedCell: Encodable {
        var science_version: Int
        var cell: CellParameters
    }
}
