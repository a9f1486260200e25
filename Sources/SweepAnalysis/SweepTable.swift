public import Diagnostics
import Foundation
import SweepCore
public import SweepStore
public import TrainingCore

/// The sweep table: one row per cell with its parameters and metrics, sorted by (n, d, width, seed).
///
/// Its JSON is an array of results, each one flat object of the cell's parameters (the keys of
/// `CellParameters.catalogue`) and its metrics (docs/science.md, "What each metric means"),
/// exactly as workers send them and the store keeps them.
public struct SweepTable: Sendable {
    /// Output formats.
    public enum Format: String, Sendable, CaseIterable {
        case markdown, csv, json
    }

    /// The rows.
    public var results: [CellResult]
    /// Keys of committed results that could not be decoded (shown, never dropped silently).
    public var undecodable: [String]

    /// Builds the table from committed results.
    public init(results: [CellResult], undecodable: [String] = []) {
        self.init(keyed: results.map { (CellWork.train($0.parameters).key, $0) }, undecodable: undecodable)
    }

    /// Builds the table from results with their cell keys (ties of n, d, width and seed go by key,
    /// which is computed once per row, not per comparison).
    init(keyed: [(key: String, result: CellResult)], undecodable: [String]) {
        self.undecodable = undecodable
        self.results = keyed.sorted { a, b in
            let pa = a.result.parameters
            let pb = b.result.parameters
            return (pa.n, pa.d, pa.width, pa.seed, a.key) < (pb.n, pb.d, pb.width, pb.seed, b.key)
        }.map(\.result)
    }

    /// Reads every committed study result of a store (benchmark no-op cells have none), row by
    /// row: each result's JSON is decoded and dropped before the next is read, so memory holds
    /// the decoded rows only.
    public init(store: ResultStore) throws(IsosweepError) {
        let decoded = try store.cellResults()
        self.init(keyed: decoded.results, undecodable: decoded.undecodable)
    }

    /// A warning about results that could not be decoded, or nil when there are none.
    public var undecodableWarning: String? {
        DecodedResults(undecodable: undecodable).warning
    }

    /// The table's columns: header and cell text of each row. n, d, width, p and seed always;
    /// every other parameter of the catalogue when it varies; then the metrics.
    func columns() -> [(String, (CellResult) -> String)] {
        var columns: [(String, (CellResult) -> String)] = [
            ("n", { String($0.parameters.n) }), ("d", { String($0.parameters.d) }),
            ("width", { String($0.parameters.width) }), ("p", { String($0.metrics.p) }),
            ("seed", { String($0.parameters.seed) }),
        ]
        for parameter in VaryingParameters(results.map(\.parameters)).parameters {
            columns.append((parameter.name, { formatted(parameter.value($0.parameters)) }))
        }
        columns += [
            ("train_mse", { fmt($0.metrics.trainMSE) }), ("eps", { fmt($0.metrics.eps) }),
            ("fit_fraction", { fmt($0.metrics.fitFraction) }), ("test_mse", { fmt($0.metrics.testMSE) }),
            ("lip_support_lower", { fmt($0.metrics.lipSupportLower) }), ("lip_lower", { fmt($0.metrics.lipLower) }),
            ("lip_upper", { fmt($0.metrics.lipUpper) }),
        ]
        // The baselines (science version 2 on): shown when some result has them, so tables of
        // older databases read as they always did.
        if results.contains(where: { $0.metrics.scienceVersion >= 2 }) {
            columns += [
                ("lip_init_support_lower", { fmt($0.metrics.lipInitSupportLower) }),
                ("interp_floor", { fmt($0.metrics.interpFloor) }),
            ]
        }
        if results.contains(where: { $0.metrics.scienceVersion >= 5 }) {
            columns.append(("fit_floor", { fmt($0.metrics.fitFloor) }))
        }
        if results.contains(where: { $0.metrics.smoothingSteps != nil }) {
            columns += [
                ("smoothing_steps", { $0.metrics.smoothingSteps.map(String.init) ?? "" }),
                ("fit_held", { $0.metrics.fitHeld.map { $0 ? "yes" : "no" } ?? "" }),
            ]
        }
        columns += [
            ("law_scale", { fmt($0.metrics.lawScale) }),
            ("law_ratio", { fmt($0.metrics.lawRatio) }), ("steps", { String($0.metrics.steps) }),
            ("stop_reason", { $0.metrics.stopReason.rawValue }),
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
        case .csv, .markdown:
            let columns = columns()
            let rows = results.map { row in columns.map { $0.1(row) } }
            let header = columns.map(\.0)
            return format == .csv
                ? TextTable.csv(header: header, rows: rows) : TextTable.markdown(header: header, rows: rows)
        }
    }
}

/// The catalogue's parameters (besides n, d, width and seed, which tables always show) that
/// take more than one value among some cells: the columns of the table and the series' names.
struct VaryingParameters {
    let parameters: [CellParameter]

    init(_ cells: [CellParameters]) {
        let always: Set = ["n", "d", "width", "seed"]
        parameters = CellParameters.catalogue.filter { parameter in
            !always.contains(parameter.name) && Set(cells.map { parameter.value($0) }).count > 1
        }
    }
}

/// A parameter value as tables show it: numbers as `fmt` writes them, "-" when unset.
func formatted(_ value: ParameterValue?) -> String {
    switch value {
    case .none: "-"
    case .double(let v): fmt(v)
    case .some(let v): v.description
    }
}

/// A number as the tables and pages print it: whole numbers as integers, others to five
/// significant digits; nil and non-finite values as empty text.
public func fmt(_ value: Double?) -> String {
    guard let value, value.isFinite else { return "" }
    if value == value.rounded() && abs(value) < 1e6 { return String(Int(value)) }
    return String(format: abs(value) >= 1e4 || abs(value) < 1e-3 ? "%.4g" : "%.5g", value)
}
