import Foundation
import Testing

/// The manifest keeps each module to what it may import (README, Development): read from
/// `swift package dump-package`, as SwiftPM itself sees it.
@Suite struct LayeringTests {
    /// Each target's direct dependencies (targets and products), from the manifest.
    func dependencies() throws -> [String: Set<String>] {
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent(
            "isosweep-dump-\(UUID().uuidString)"
        )
        let dump = FileManager.default.temporaryDirectory.appendingPathComponent(
            "isosweep-dump-\(UUID().uuidString).json"
        )
        defer {
            try? FileManager.default.removeItem(at: scratch)
            try? FileManager.default.removeItem(at: dump)
        }
        // Its own scratch path: the test run holds the package's .build.
        let status = shell(
            "cd '\(DeployTests.root.path)' && swift package --scratch-path '\(scratch.path)' dump-package > '\(dump.path)'"
        )
        try #require(status == 0, "swift package dump-package failed")
        let manifest = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: dump)) as? [String: Any])
        var result: [String: Set<String>] = [:]
        for target in manifest["targets"] as? [[String: Any]] ?? [] {
            let name = target["name"] as? String ?? "?"
            var names = Set<String>()
            for dependency in target["dependencies"] as? [[String: Any]] ?? [] {
                for kind in ["byName", "target", "product"] {
                    if let first = (dependency[kind] as? [Any])?.first as? String { names.insert(first) }
                }
            }
            result[name] = names
        }
        return result
    }

    @Test func modulesImportOnlyWhatTheirLayerAllows() throws {
        let targets = try dependencies()
        for module in ["SweepCore", "SweepStore", "SweepAnalysis", "Diagnostics", "WorkerTests"] {
            #expect(targets[module] != nil, "no \(module) target")
        }
        // The worker needs the protocol and the training core, never the store or the analysis.
        let worker = try #require(targets["Worker"])
        #expect(worker.isDisjoint(with: ["GRDB", "SweepStore", "SweepAnalysis"]), "\(worker)")
        #expect(worker.isSuperset(of: ["SweepCore", "TrainingCore", "ZeroMQ"]))
        // The pure core does no I/O: no database, no sockets, no logging.
        let core = try #require(targets["SweepCore"])
        #expect(core.isDisjoint(with: ["GRDB", "ZeroMQ", "SweepStore", "SweepAnalysis", "Logging"]), "\(core)")
        #expect(try #require(targets["SweepAnalysis"]).isDisjoint(with: ["GRDB", "ZeroMQ"]))
        #expect(try #require(targets["Diagnostics"]).isEmpty)
        #expect(try #require(targets["TrainingCore"]).isDisjoint(with: ["SweepCore", "SweepStore", "ZeroMQ", "GRDB"]))
        // The coordinator's status server is where the analysis is used at run time.
        #expect(try #require(targets["Coordinator"]).contains("SweepAnalysis"))
    }
}
