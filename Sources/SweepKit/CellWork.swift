public import TrainingCore
import Foundation

/// What a worker is asked to compute for one cell.
public enum CellWork: Codable, Sendable, Hashable {
    /// A cell of a study: train and measure.
    case train(CellParameters)
    /// Does nothing and returns at once: for measuring the dispatch system itself, never in a study.
    /// `fail` makes it report a failure (for testing retries).
    case noop(index: Int, fail: Bool)

    /// The cell's key: SHA-256 of its canonical form (resolved parameters, sorted keys) and the
    /// science version, so the same cell in two sweeps is the same cell.
    public var key: String {
        SHA256.hex(canonicalBytes)
    }

    /// The JSON hashed into the key.
    var canonicalBytes: [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let body: Data
        switch self {
        case .train(let parameters):
            body = (try? encoder.encode(KeyedCell(science_version: scienceVersion, cell: parameters.resolved()))) ?? Data()
        case .noop(let index, let fail):
            body = Data("{\"noop\":\(index),\"fail\":\(fail)}".utf8)
        }
        return [UInt8](body)
    }

    /// A rough cost in flops, to dispatch the largest cells first.
    public var estimatedCost: Double {
        switch self {
        case .noop: return 0
        case .train(let p):
            let n = Double(p.n)
            let d = Double(p.d)
            let k = Double(p.width)
            if p.trainer == .randomFeatures { return 2 * n * d * k + 4 * n * (k + 1) * min(n, k + 1) }
            return Double(p.maxSteps) * 4 * n * d * k
        }
    }

    /// The training parameters, if this is a study cell.
    public var parameters: CellParameters? {
        if case .train(let p) = self { return p }
        return nil
    }

    private struct KeyedCell: Encodable {
        var science_version: Int
        var cell: CellParameters
    }
}
