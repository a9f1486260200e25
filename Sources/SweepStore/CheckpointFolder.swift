import Foundation

/// Where a sweep's checkpoints live, beside its database: `DB.checkpoints/KEY.STEP.safetensors`,
/// one per unfinished cell (the coordinator's `CheckpointFiles` writes them; `isosweep cells`
/// and the tests read their steps from the names).
public enum CheckpointFolder {
    /// The folder of the database at `database`.
    public static func path(database: String) -> String { database + ".checkpoints" }

    /// The file name of `key`'s checkpoint at `step`.
    public static func name(key: String, step: UInt64) -> String { "\(key).\(step).safetensors" }

    /// The key and step a checkpoint's file name holds, or nil for another file.
    public static func parse(_ name: String) -> (key: String, step: UInt64)? {
        let parts = name.split(separator: ".")
        guard parts.count == 3, parts[2] == "safetensors", let step = UInt64(parts[1]) else { return nil }
        return (String(parts[0]), step)
    }

    /// The step of each cell's checkpoint in the folder of `database` (the latest, should a crash
    /// have left two), by key; empty when there is no folder.
    public static func steps(database: String) -> [String: UInt64] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: path(database: database))) ?? []
        var steps: [String: UInt64] = [:]
        for case let (key, step)? in names.map(parse) { steps[key] = max(step, steps[key] ?? 0) }
        return steps
    }
}
