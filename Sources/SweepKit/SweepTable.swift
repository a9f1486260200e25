import Foundation
public import TrainingCore

/// The sweep table: one row per cell with its parameters and metrics, sorted by (n, d, width, seed).
public struct SweepTable: Sendable {
    /// Output formats.
    public enum Format: String, Sendable, CaseIterable {
        case markdown, csv, json
    }

    /// The rows.
    public var results: [CellResult]

    /// Builds the table from committed results.
    public init(results: [CellResult]) {
        self.results = results.sorted { a, b in
            let pa = a.parameters
            let pb = b.parameters
            if (pa.n, pa.d, pa.width, pa.seed) != (pb.n, pb.d, pb.width, pb.seed) {
                return (pa.n, pa.d, pa.width, pa.seed) < (pb.n, pb.d, pb.width, pb.seed)
            }
            return CellWork.train(pa).key < CellWork.train(pb).key
        }
    }

    /// Reads every committed study result of a store (benchmark no-op cells have none).
    public init(store: ResultStore) throws(StoreError) {
        let decoder = JSONDecoder()
        var rows: [CellResult] = []
        for stored in try store.results() {
            guard let result = try? decoder.decode(CellResult.self, from: Data(stored.json.utf8)) else { continue }
            rows.append(result)
        }
        self.init(results: rows)
    }

    /// Parameters that take more than one value here, besides n, d, width and seed.
    var varyingParameters: [(String, (CellParameters) -> String)] {
        let candidates: [(String, (CellParameters) -> String)] = [
            ("data", { $0.data.rawValue }), ("labels", { $0.resolvedLabels.rawValue }), ("eta", { fmt($0.eta) }),
            ("activation", { $0.activation.rawValue }), ("trainer", { $0.trainer.rawValue }),
            ("lr", { $0.lr.map(fmt) ?? "-" }), ("max_steps", { String($0.maxSteps) }), ("target_mse", { fmt($0.targetMSE) }),
        ]
        return candidates.filter { _, value in Set(results.map { value($0.parameters) }).count > 1 }
    }

    /// The table's columns: header and cell text of each row.
    func columns() -> [(String, (CellResult) -> String)] {
        var columns: [(String, (CellResult) -> String)] = [
            ("n", { String($0.parameters.n) }), ("d", { String($0.parameters.d) }), ("width", { String($0.parameters.width) }),
            ("p", { String($0.metrics.p) }), ("seed", { String($0.parameters.seed) }),
        ]
        for (name, value) in varyingParameters { columns.append((name, { value($0.parameters) })) }
        columns += [
            ("train_mse", { fmt($0.metrics.trainMSE) }), ("eps", { fmt($0.metrics.eps) }), ("fit_fraction", { fmt($0.metrics.fitFraction) }),
            ("test_mse", { fmt($0.metrics.testMSE) }), ("lip_support_lower", { fmt($0.metrics.lipSupportLower) }),
            ("lip_lower", { fmt($0.metrics.lipLower) }), ("lip_upper", { fmt($0.metrics.lipUpper) }),
            ("law_scale", { fmt($0.metrics.lawScale) }), ("law_ratio", { fmt($0.metrics.lawRatio) }),
            ("steps", { String($0.metrics.steps) }), ("stop_reason", { $0.metrics.stopReason.rawValue }),
            ("seconds", { fmt($0.metrics.trainSeconds + $0.metrics.lipSeconds) }),
        ]
        return columns
    }

    /// The table as text.
    public func render(_ format: Format) throws -> String {
        switch format {
        case .json:
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes, .prettyPrinted]
            return String(decoding: try encoder.encode(results), as: UTF8.self)
        case .csv:
            let columns = columns()
            let lines = [columns.map(\.0).joined(separator: ",")] + results.map { row in columns.map { $0.1(row) }.joined(separator: ",") }
            return lines.joined(separator: "\n")
        case .markdown:
            let columns = columns()
            let cells = results.map { row in columns.map { $0.1(row) } }
            let widths = columns.indices.map { c in max(columns[c].0.count, cells.map { $0[c].count }.max() ?? 0) }
            func line(_ values: [String]) -> String {
                "| " + zip(values, widths).map { $0 + String(repeating: " ", count: $1 - $0.count) }.joined(separator: " | ") + " |"
            }
            var lines = [line(columns.map(\.0)), "|" + widths.map { String(repeating: "-", count: $0 + 2) }.joined(separator: "|") + "|"]
            lines += cells.map(line)
            return lines.joined(separator: "\n")
        }
    }
}

func fmt(_ value: Double?) -> String {
    guard let value, value.isFinite else { return "" }
    if value == value.rounded() && abs(value) < 1e6 { return String(Int(value)) }
    return String(format: abs(value) >= 1e4 || abs(value) < 1e-3 ? "%.4g" : "%.5g", value)
}
