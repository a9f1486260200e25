import Foundation
import Testing

/// The manifest keeps each module to what it may import (docs/design.md, Modules): read from
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

    /// The modules each target's sources import (`import X`, `public import X`, ...), by target.
    func imports() throws -> [String: Set<String>] {
        let sources = DeployTests.root.appendingPathComponent("Sources")
        var result: [String: Set<String>] = [:]
        for target in try FileManager.default.contentsOfDirectory(atPath: sources.path) {
            let folder = sources.appendingPathComponent(target)
            guard let files = FileManager.default.enumerator(atPath: folder.path) else { continue }
            var modules = Set<String>()
            for case let file as String in files where file.hasSuffix(".swift") {
                let text = try String(contentsOf: folder.appendingPathComponent(file), encoding: .utf8)
                for line in text.split(separator: "\n") {
                    let words = line.split(separator: " ")
                    guard let index = words.firstIndex(of: "import"), index + 1 < words.count,
                        words[..<index].allSatisfy({ ["public", "internal", "package", "@testable"].contains($0) })
                    else { continue }
                    modules.insert(String(words[index + 1]))
                }
            }
            result[target] = modules
        }
        return result
    }

    @Test func modulesImportOnlyWhatTheirLayerAllows() throws {
        let targets = try dependencies()
        for module in ["SweepCore", "SweepStore", "SweepAnalysis", "SweepWeb", "Diagnostics", "WorkerTests"] {
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
        // The coordinator coordinates: the pages it serves live in SweepWeb, above it.
        let coordinator = try #require(targets["Coordinator"])
        #expect(
            coordinator.isDisjoint(with: ["SweepAnalysis", "SweepWeb", "SweepBench", "Hummingbird"]),
            "\(coordinator)"
        )
        #expect(try #require(targets["SweepWeb"]).contains("Coordinator"))
        // Only ZeroMQ's wrapper talks to libzmq.
        for (name, dependencies) in targets where name != "ZeroMQ" {
            #expect(!dependencies.contains("CZeroMQ"), "\(name) depends on CZeroMQ")
        }
    }

    @Test func sourcesImportOnlyWhatTheirLayerAllows() throws {
        let imports = try imports()
        #expect(imports["ZeroMQ"]?.contains("CZeroMQ") == true, "the import scan found nothing")
        for (target, modules) in imports {
            if target != "ZeroMQ" { #expect(!modules.contains("CZeroMQ"), "\(target) imports CZeroMQ") }
            if target != "TrainingCore" {
                #expect(modules.isDisjoint(with: ["COpenBLAS", "CKernels"]), "\(target) imports BLAS or the kernels")
            }
        }
        let coordinator = try #require(imports["Coordinator"])
        #expect(coordinator.isDisjoint(with: ["SweepAnalysis", "SweepWeb", "SweepBench", "Hummingbird", "NIOCore"]))
        #expect(try #require(imports["Worker"]).isDisjoint(with: ["SweepStore", "GRDB", "SweepAnalysis"]))
        #expect(try #require(imports["SweepCore"]).isDisjoint(with: ["GRDB", "ZeroMQ", "Logging", "SweepStore"]))
    }
}
