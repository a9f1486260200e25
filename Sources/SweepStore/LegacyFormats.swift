import Diagnostics
import Foundation
import GRDB
import SweepCore
import TrainingCore

/// Reads what isosweep 0.1 wrote with Swift's synthesized Codable encodings (the sweep as
/// `{"isAxis":true,"name":"n","values":[{"int":{"_0":128}}]}`, cell work as
/// `{"train":{"_0":{...}}}`), and turns it into today's explicit formats.
enum LegacyFormats {
    /// Schema v2: the sweep file's text instead of its JSON, flat cell-work JSON, which cells belong
    /// to the sweep, and per-worker counts of committed results. Keys and results never change.
    static func migrateToExplicitJSON(_ db: Database) throws {
        try db.execute(sql: "ALTER TABLE sweep ADD COLUMN source TEXT NOT NULL DEFAULT ''")
        try db.execute(sql: "ALTER TABLE cells ADD COLUMN in_sweep INTEGER NOT NULL DEFAULT 1")
        if let spec = try String.fetchOne(db, sql: "SELECT spec FROM sweep WHERE id = 1") {
            let source = yaml(fromSpecJSON: spec)
            try db.execute(sql: "UPDATE sweep SET source = ? WHERE id = 1", arguments: [source])
            // 0.1 kept the cells of every spec a --force replaced: only the last spec's belong to the sweep.
            // Keys hash the science version the database was written with, not today's.
            let version = try Int.fetchOne(db, sql: "SELECT science_version FROM sweep WHERE id = 1") ?? scienceVersion
            if let cells = try? SweepSpec.parse(source, file: "the stored sweep").cells() {
                try db.execute(sql: "CREATE TEMPORARY TABLE members (key TEXT PRIMARY KEY)")
                let member = try db.makeStatement(sql: "INSERT OR IGNORE INTO members (key) VALUES (?)")
                for cell in cells { try member.execute(arguments: [cell.key(scienceVersion: version)]) }
                try db.execute(sql: "UPDATE cells SET in_sweep = 0 WHERE key NOT IN (SELECT key FROM members)")
                try db.execute(sql: "DROP TABLE members")
            }
        }
        try db.execute(sql: "ALTER TABLE sweep DROP COLUMN spec")
        try db.execute(sql: "ALTER TABLE sweep DROP COLUMN spec_hash")
        let rewrite = try db.makeStatement(sql: "UPDATE cells SET work = ? WHERE key = ?")
        for row in try Row.fetchAll(db, sql: "SELECT key, work FROM cells") {
            let key: String = row["key"]
            let old: String = row["work"]
            guard let work = work(fromJSON: old) else {
                throw IsosweepError(.store, "cell \(key.prefix(12)) has work isosweep cannot read: \(old.prefix(200))")
            }
            try rewrite.execute(arguments: [String(decoding: work.json, as: UTF8.self), key])
        }
        // 0.1 counted a worker's cells only when it left, and never recorded workers as gone when
        // the coordinator stopped: count from the results, and let the next coordinator record
        // the workers that register again.
        try db.execute(
            sql: """
                UPDATE workers SET alive = 0,
                    cells_done = (SELECT count(*) FROM results WHERE results.worker = workers.id)
                """
        )
    }

    /// Cell work in the 0.1 encoding, or in today's.
    static func work(fromJSON text: String) -> CellWork? {
        guard let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else {
            return nil
        }
        if let train = object["train"] as? [String: Any], let parameters = train["_0"] {
            guard let data = try? JSONSerialization.data(withJSONObject: parameters),
                let decoded = try? JSONDecoder().decode(CellParameters.self, from: data)
            else { return nil }
            return .train(decoded)
        }
        if let noop = object["noop"] as? [String: Any], let index = noop["index"] as? Int,
            let fail = noop["fail"] as? Bool
        {
            return .noop(index: index, fail: fail)
        }
        return CellWork(json: Array(text.utf8))
    }

    /// A sweep file reconstructed from the 0.1 JSON of a sweep (or a note for merges and
    /// benchmarks, which had no file).
    static func yaml(fromSpecJSON text: String) -> String {
        let note =
            "# Reconstructed from a database written by isosweep 0.1, which kept the sweep as JSON:\n"
            + "# the original file's comments and layout are lost.\n"
        guard let spec = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any],
            let name = spec["name"] as? String, let parameters = spec["parameters"] as? [[String: Any]]
        else {
            if let merged = (try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])?["merged"] {
                return "# A merge of \(merged) databases (isosweep merge): no sweep file.\n"
            }
            return ""
        }
        var lines = [note + "name: \(quoted(name))", "method: \(spec["method"] as? String ?? "grid")"]
        if let description = spec["description"] as? String { lines.append("description: \(quoted(description))") }
        if let attempts = spec["maxAttempts"] as? Int { lines.append("max_attempts: \(attempts)") }
        lines.append("parameters:")
        for parameter in parameters {
            guard let name = parameter["name"] as? String, let values = parameter["values"] as? [Any] else { continue }
            let rendered = values.map(value)
            if parameter["isAxis"] as? Bool == true {
                lines.append("  \(name): {values: [\(rendered.joined(separator: ", "))]}")
            } else {
                lines.append("  \(name): {value: \(rendered.first ?? "null")}")
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// A 0.1 SpecValue (`{"int":{"_0":128}}`, `{"double":...}`, `{"string":...}`, `{"list":...}`) as YAML.
    private static func value(_ any: Any) -> String {
        guard let wrapper = any as? [String: Any], let (kind, body) = wrapper.first,
            let inner = (body as? [String: Any])?["_0"]
        else { return "null" }
        switch kind {
        case "int": return "\(inner)"
        case "double":
            // YAML 1.1 reads 1e-05 as a string: a float needs its dot.
            let number = (inner as? NSNumber)?.doubleValue ?? 0
            var text = "\(number)"
            if !text.contains("."), let e = text.firstIndex(where: { $0 == "e" || $0 == "E" }) {
                text.insert(contentsOf: ".0", at: e)
            }
            return text
        case "list": return "[" + ((inner as? [Any]) ?? []).map(value).joined(separator: ", ") + "]"
        default: return quoted("\(inner)")
        }
    }

    private static func quoted(_ text: String) -> String {
        let data = try? JSONSerialization.data(withJSONObject: [text], options: [.withoutEscapingSlashes])
        let array = data.map { String(decoding: $0, as: UTF8.self) } ?? "[\"\"]"
        return String(array.dropFirst().dropLast())
    }
}
