public import Diagnostics
import Foundation
import GRDB
import TrainingCore

/// Unions sweep databases by cell key.
public enum Merge {
    /// What to do when the same cell has different metrics in two inputs.
    public enum Preference: Sendable, Equatable {
        /// Fail and report the conflicts.
        case refuse
        /// Keep the result of the first input that has one.
        case first
        /// Keep the result of the last input that has one.
        case last
    }

    /// A cell whose metrics differ between inputs.
    public struct Conflict: Sendable, CustomStringConvertible {
        public var key: String
        public var inputs: [String]
        public var differences: [String]

        public var description: String {
            "cell \(key.prefix(12)) differs between \(inputs.joined(separator: " and ")): \(differences.joined(separator: ", "))"
        }
    }

    /// The outcome.
    public struct Report: Sendable {
        public var cells = 0
        public var results = 0
        public var duplicates = 0
        public var conflicts: [Conflict] = []
        /// Results (copied as they are) whose JSON could not be decoded, so could not be compared
        /// with another input's result for the same cell.
        public var undecodable: [String] = []
    }

    /// Merges `inputs` into a new database at `output`.
    public static func run(inputs: [String], output: String, preference: Preference) throws(IsosweepError) -> Report {
        guard !FileManager.default.fileExists(atPath: output) else {
            throw IsosweepError(
                .store,
                "\(output) already exists: merge writes a new database; choose another -o or remove it"
            )
        }
        let stores = try inputs.map { (path: String) throws(IsosweepError) -> ResultStore in
            try ResultStore(path: path, readOnly: true)
        }
        let (version, names) = try commonScienceVersion(stores)
        var report = Report()
        let union = try unite(stores, preference: preference, report: &report)
        if !report.conflicts.isEmpty && preference == .refuse {
            return report
        }
        let name = names.count == 1 ? names[0] : "merge of " + Set(names).sorted().joined(separator: ", ")
        try write(union, to: output, name: name, inputs: inputs, version: version)
        report.cells = union.works.count
        report.results = union.chosen.count
        return report
    }

    /// The cells of all the inputs, and the result kept for each.
    private struct Union {
        /// Each cell's work, and whether it belongs to the sweep of any input.
        var works: [String: (work: String, inSweep: Bool)] = [:]
        /// The result kept for each cell, the input it came from and its metrics (nil: undecodable).
        var chosen: [String: (result: ResultStore.StoredResult, input: String, metrics: CellMetrics?)] = [:]
        /// Cells whose results differ between inputs (each gets a merge_conflict event).
        var conflicting = Set<String>()
    }

    /// The inputs' common science version and their sweeps' names. Refuses an input without a sweep,
    /// and inputs of several science versions or of another than this isosweep's: their numbers
    /// would not be comparable.
    private static func commonScienceVersion(
        _ stores: [ResultStore]
    ) throws(IsosweepError) -> (version: Int, names: [String]) {
        var versions = Set<Int>()
        var names: [String] = []
        for store in stores {
            guard let sweep = try store.sweep() else {
                throw IsosweepError(.store, "\(store.path) has no sweep recorded")
            }
            versions.insert(sweep.scienceVersion)
            names.append(sweep.name)
        }
        guard versions.count == 1, let version = versions.first else {
            throw IsosweepError(
                .store,
                "the inputs have different science versions \(versions.sorted()): their numbers are not comparable, so they are not merged"
            )
        }
        guard version == scienceVersion else {
            throw IsosweepError(
                .store,
                "the inputs hold science version \(version); this isosweep computes version \(scienceVersion): use the isosweep that made them"
            )
        }
        return (version, names)
    }

    /// Unions the stores' cells and results in input order, keeping the first result of a cell
    /// (the last, with `preference` `.last`, when they conflict); counts duplicates and records
    /// conflicts and undecodable results in `report`.
    private static func unite(
        _ stores: [ResultStore],
        preference: Preference,
        report: inout Report
    ) throws(IsosweepError) -> Union {
        let decoder = JSONDecoder()
        var union = Union()
        for store in stores {
            for cell in try store.cells(includingDropped: true) {
                union.works[cell.key] = (
                    union.works[cell.key]?.work ?? cell.work, (union.works[cell.key]?.inSweep ?? false) || cell.inSweep
                )
            }
            for stored in try store.results() {
                let metrics = try? decoder.decode(CellResult.self, from: Data(stored.json.utf8)).metrics
                // (Diagnostic cells store an empty result: nothing to decode.)
                if metrics == nil && !stored.json.isEmpty && !report.undecodable.contains(stored.key) {
                    report.undecodable.append(stored.key)
                }
                guard let previous = union.chosen[stored.key] else {
                    union.chosen[stored.key] = (stored, store.path, metrics)
                    continue
                }
                report.duplicates += 1
                let differences = differing(previous.metrics, metrics)
                if !differences.isEmpty {
                    report.conflicts.append(
                        Conflict(key: stored.key, inputs: [previous.input, store.path], differences: differences)
                    )
                    union.conflicting.insert(stored.key)
                    if preference == .last { union.chosen[stored.key] = (stored, store.path, metrics) }
                }
            }
        }
        return union
    }

    /// Creates the database at `output` and writes the union into it in one transaction: a sweep
    /// row naming the inputs, the cells and kept results by key, and an event per conflicting cell.
    private static func write(
        _ union: Union,
        to output: String,
        name: String,
        inputs: [String],
        version: Int
    ) throws(IsosweepError) {
        let out = try ResultStore(path: output)
        do {
            try out.database.write { db in
                try db.execute(
                    sql: "INSERT INTO sweep (id, name, source, science_version, created_at) VALUES (1, ?, ?, ?, ?)",
                    arguments: [
                        name, "# A merge of \(inputs.joined(separator: ", ")) (isosweep merge): no sweep file.\n",
                        version, Date().timeIntervalSince1970,
                    ]
                )
                for (key, cell) in union.works.sorted(by: { $0.key < $1.key }) {
                    let done = union.chosen[key] != nil
                    try db.execute(
                        sql: "INSERT INTO cells (key, work, cost, state, attempts, in_sweep) VALUES (?, ?, 0, ?, 0, ?)",
                        arguments: [key, cell.work, done ? "done" : "queued", cell.inSweep]
                    )
                }
                for (key, entry) in union.chosen.sorted(by: { $0.key < $1.key }) {
                    try db.execute(
                        sql: "INSERT INTO results (key, result, worker, attempt, committed_at) VALUES (?, ?, ?, ?, ?)",
                        arguments: [
                            key, entry.result.json, entry.result.worker, entry.result.attempt,
                            Date().timeIntervalSince1970,
                        ]
                    )
                }
                for key in union.conflicting.sorted() {
                    try db.execute(
                        sql: "INSERT INTO events (at, kind, detail) VALUES (?, 'merge_conflict', ?)",
                        arguments: [
                            Date().timeIntervalSince1970, "cell \(key): kept the result of \(union.chosen[key]!.input)",
                        ]
                    )
                }
            }
        } catch {
            throw IsosweepError(.store, "cannot write \(output): \(error)")
        }
    }

    /// Science fields that differ (wall-clock and host fields never count).
    static func differing(_ a: CellMetrics?, _ b: CellMetrics?) -> [String] {
        guard let a = a?.withoutTimings, let b = b?.withoutTimings else {
            return a == nil && b == nil ? [] : ["one result is unreadable"]
        }
        if a == b { return [] }
        let fields: [(String, (CellMetrics) -> String)] = [
            ("train_mse", { "\($0.trainMSE as Any)" }), ("eps", { "\($0.eps as Any)" }),
            ("fit_fraction", { "\($0.fitFraction as Any)" }),
            ("test_mse", { "\($0.testMSE as Any)" }), ("lip_lower", { "\($0.lipLower as Any)" }),
            ("lip_upper", { "\($0.lipUpper as Any)" }),
            ("lip_support_lower", { "\($0.lipSupportLower as Any)" }), ("grad_mean", { "\($0.gradMean as Any)" }),
            ("lip_upper_centred", { "\($0.lipUpperCentred as Any)" }),
            ("lip_init_support_lower", { "\($0.lipInitSupportLower as Any)" }),
            ("interp_floor", { "\($0.interpFloor as Any)" }),
            ("fit_floor", { "\($0.fitFloor as Any)" }),
            ("steps", { "\($0.steps)" }), ("stop_reason", { $0.stopReason.rawValue }), ("flops", { "\($0.flops)" }),
        ]
        let names = fields.filter { $0.1(a) != $0.1(b) }.map(\.0)
        return names.isEmpty ? ["metadata"] : names
    }
}
