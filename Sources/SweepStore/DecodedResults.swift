public import Diagnostics
import Foundation
public import TrainingCore

/// The committed study results of a store, decoded, and the cells whose stored result could not
/// be decoded (written by another build, or damaged): every reader goes through
/// `ResultStore.cellResults()`, so none drops a result without counting it.
public struct DecodedResults: Sendable {
    /// Each decoded result with its cell's key, in key order.
    public var results: [(key: String, result: CellResult)] = []
    /// The keys of the results that could not be decoded.
    public var undecodable: [String] = []

    /// Results as given (none, and these undecodable keys, for a warning alone).
    public init(results: [(key: String, result: CellResult)] = [], undecodable: [String] = []) {
        self.results = results
        self.undecodable = undecodable
    }

    /// A warning about the results that could not be decoded, or nil when there are none.
    public var warning: String? {
        guard !undecodable.isEmpty else { return nil }
        let keys = undecodable.prefix(5).map { String($0.prefix(12)) }.joined(separator: ", ")
        return "\(undecodable.count) committed results could not be decoded and are left out (cells \(keys)"
            + (undecodable.count > 5 ? ", ...)" : ")")
    }
}

extension ResultStore {
    /// Every committed result decoded, row by row (each result's JSON is decoded and dropped
    /// before the next is read); the ones that cannot be decoded are counted, not skipped
    /// silently. Benchmark no-op cells store no result and are not read.
    public func cellResults() throws(IsosweepError) -> DecodedResults {
        let decoder = JSONDecoder()
        var decoded = DecodedResults()
        try forEachResult { stored in
            if let result = try? decoder.decode(CellResult.self, from: Data(stored.json.utf8)) {
                decoded.results.append((stored.key, result))
            } else {
                decoded.undecodable.append(stored.key)
            }
        }
        return decoded
    }
}
