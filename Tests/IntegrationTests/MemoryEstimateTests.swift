import Foundation
import Testing

/// A cell's estimated peak memory against the peak RSS of a process that runs just that cell
/// (`isosweep train` reports both): never below it, at most 1.5 times it.
@Suite struct MemoryEstimateTests {
    @Test func theEstimateHoldsThePeakWithinHalfAgainForSphereAndFileData() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("isosweep-memory-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        // 6000 rows of 64 features and a class: a file large enough that parsing it shows.
        let csv = dir.appendingPathComponent("rows.csv").path
        var text = ""
        var state: UInt64 = 12_345
        for row in 0..<6000 {
            for _ in 0..<64 {
                state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
                text += String(format: "%.6f,", Double(state >> 11) / Double(1 << 53))
            }
            text += row % 2 == 0 ? "a\n" : "b\n"
        }
        try text.write(toFile: csv, atomically: true, encoding: .utf8)
        let file = ["--data", "file", "--data-file", csv, "--classes", "a,b"]
        // Widths 8 to 4096, adam and random features (both of dgelsd's workspace regimes), sphere
        // and file data; a lighter Lipschitz search than sweeps use (the estimate takes it into
        // account), since this runs unoptimised in the tests.
        let cells: [[String]] = [
            ["--n", "256", "--d", "8", "--width", "8"],
            ["--n", "256", "--d", "64", "--width", "4096"],
            ["--n", "2048", "--d", "64", "--width", "512"],
            ["--n", "256", "--d", "8", "--width", "4096", "--trainer", "random_features"],
            ["--n", "2048", "--d", "64", "--width", "512", "--trainer", "random_features"],
            ["--n", "1024", "--d", "16", "--width", "8", "--trainer", "random_features"],
            ["--n", "256", "--d", "64", "--width", "8"] + file,
            ["--n", "2048", "--d", "64", "--width", "512"] + file,
            ["--n", "512", "--d", "64", "--width", "4096"] + file,
            ["--n", "2048", "--d", "64", "--width", "1024", "--trainer", "random_features"] + file,
        ]
        let search = ["--max-steps", "2", "--fresh-points", "100", "--ascent-starts", "4", "--ascent-steps", "3"]
        for cell in cells {
            let run = try runIsosweep(["train"] + cell + search, timeout: 300)
            #expect(run.status == 0, "\(cell): \(run.stderr)")
            let json = try run.json()
            let peak = try #require(json["peak_rss_bytes"] as? Int)
            let estimate = try #require(json["memory_estimate_bytes"] as? Int)
            let ratio = Double(estimate) / Double(peak)
            #expect(ratio >= 1 && ratio <= 1.5, "\(cell): estimate \(estimate >> 20) MiB, peak \(peak >> 20) MiB")
        }
    }
}
