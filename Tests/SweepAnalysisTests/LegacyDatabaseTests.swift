import Diagnostics
import Foundation
import SweepAnalysis
import SweepCore
import SweepStore
import Testing
import TrainingCore

/// Fixtures/legacy-v1: a database written by isosweep 0.1 (main before the module split) with
/// `isosweep run legacy.yaml`, and the tables that version printed for it.
@Suite struct LegacyDatabaseTests {
    func fixture(_ name: String) throws -> URL {
        try #require(Bundle.module.url(forResource: name, withExtension: nil, subdirectory: "Fixtures/legacy-v1"))
    }

    /// A private copy of the legacy database (opening it for writing migrates it).
    func copyOfDatabase(_ name: String = "legacy.db") throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("isosweep-legacy-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let path = dir.appendingPathComponent(name).path
        try FileManager.default.copyItem(atPath: try fixture(name).path, toPath: path)
        return path
    }

    func printed(_ name: String) throws -> String {
        let text = try String(contentsOf: try fixture(name), encoding: .utf8)
        return text.hasSuffix("\n") ? String(text.dropLast()) : text
    }

    @Test func itsTablesAreUnchangedWhetherReadOrMigrated() throws {
        let path = try copyOfDatabase()
        let before = try Data(contentsOf: URL(fileURLWithPath: path))
        for readOnly in [true, false] {
            let table = try SweepTable(store: try ResultStore(path: path, readOnly: readOnly))
            #expect(table.results.count == 8 && table.undecodable.isEmpty)
            #expect(try table.render(.csv) == printed("table.csv"))
            #expect(try table.render(.markdown) == printed("table.markdown"))
            #expect(try table.render(.json) == printed("table.json"))
            #expect(
                try ScalingAnalysis(results: table.results).renderConfigurations(.csv) == printed("table-by-config.csv")
            )
            if readOnly {
                // Read-only opens migrate a private copy: the file is not touched.
                #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == before)
            }
        }
    }

    @Test func itsKeysAreTheVersion1KeysOfTheSameCellsAndTodayRefusesToMixThem() throws {
        let path = try copyOfDatabase()
        let store = try ResultStore(path: path)
        let stored = try store.cells()
        #expect(stored.count == 8 && stored.allSatisfy { $0.state == .done })
        // The cell work is today's flat JSON and still hashes to the stored key under version 1.
        for cell in stored {
            let work = try #require(CellWork(json: Array(cell.work.utf8)))
            #expect(work.key(scienceVersion: 1) == cell.key)
            #expect(work.key != cell.key)  // today's science hashes differently
            #expect(cell.work.hasPrefix("{\"activation\":\"relu\",\"d\":4,"))
        }
        // The sweep file, read today, names exactly the stored cells (under version 1's keys).
        let spec = try SweepSpec.load(path: try fixture("legacy.yaml").path)
        #expect(Set(try spec.cells().map { $0.key(scienceVersion: 1) }) == Set(stored.map(\.key)))
        // Running it against this database would mix version 1 and 2 numbers: refused, with the fix.
        let cells = try spec.cells()
        do {
            _ = try store.prepare(spec: spec, cells: cells)
            Issue.record("a version 1 database was extended with version \(scienceVersion) cells")
        } catch {
            #expect(error.message.contains("science version 1") && error.remedy?.contains("new --db") == true)
        }
        // Each worker is credited with the results it committed.
        #expect(try store.workers().map(\.cellsDone) == [4, 4] && store.workers().allSatisfy { !$0.alive })
    }

    /// legacy-forced.db: `run` of a file with seeds [0, 1], then `run --force` of legacy-forced.yaml
    /// (seeds [1, 2]); 0.1 kept seed 0's cell and result.
    @Test func aForceSwitchedDatabaseKeepsOnlyItsLastFilesCellsInTheSweep() throws {
        let store = try ResultStore(path: try copyOfDatabase("legacy-forced.db"))
        #expect(try store.cells().count == 2 && store.cells(includingDropped: true).count == 3)
        #expect(try store.results().count == 3)
        let spec = try SweepSpec.load(path: try fixture("legacy-forced.yaml").path)
        let members = Set(try store.cells().map(\.key))
        #expect(Set(try spec.cells().map { $0.key(scienceVersion: 1) }) == members)
    }

    @Test func itsSweepIsReconstructedAsAFileWithTheSameCells() throws {
        let store = try ResultStore(path: try copyOfDatabase(), readOnly: true)
        let source = try #require(try store.sweep()?.source)
        #expect(source.hasPrefix("# Reconstructed from a database written by isosweep 0.1"))
        let reconstructed = try SweepSpec.parse(source, file: "reconstructed.yaml")
        #expect(
            reconstructed.name == "legacy"
                && reconstructed.description == "two sizes, two widths, two seeds, teacher labels"
        )
        #expect(
            Set(try reconstructed.cells().map { $0.key(scienceVersion: 1) }) == Set(try store.cells().map(\.key))
        )
    }
}
