import ArgumentParser
import CommandSupport
import Foundation
import SweepCore
import SweepStore
import TrainingCore
import Worker

/// `isosweep bench tools`: the reading tools on a large database of real-shaped results.
struct BenchTools: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tools",
        abstract:
            "Write a database of synthetic results shaped like real ones, then time status --db, table, table --by-config, fit and report on it."
    )

    @Option(help: "Cells, each with a committed result.") var cells = 200_000
    @Option(help: "The database to write (default: a temporary one, removed afterwards).") var db: String?
    @Flag(help: .hidden) var onlyGenerate = false

    func validate() throws {
        guard (1...10_000_000).contains(cells) else { throw ValidationError("--cells must be between 1 and 10000000") }
    }

    func run() throws {
        if onlyGenerate, let db {
            print(try SyntheticSweep.write(cells: cells, to: db))
            return
        }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("isosweep-tools-\(UUID())").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { if db == nil { try? FileManager.default.removeItem(atPath: directory) } }
        let path = db ?? directory + "/tools.db"
        let began = ContinuousClock.now
        // Written by a child: the peak memory of each tool is measured by wait4, which also counts
        // the pages of the process it was started from (vfork), so that one must stay small.
        let generation = try MeasuredRun(
            ["bench", "tools", "--cells", "\(cells)", "--db", path, "--only-generate"],
            output: directory + "/generate.txt"
        )
        let report = (try? String(contentsOfFile: directory + "/generate.txt", encoding: .utf8)) ?? ""
        guard generation.status == 0, let written = Int(report.trimmingCharacters(in: .whitespacesAndNewlines)) else {
            throw ValidationError("writing the synthetic database failed: \(report.suffix(2000))")
        }
        let generated = (ContinuousClock.now - began) / .seconds(1)
        var figures = ToolFigures(cells: written, generateSeconds: generated, tools: [:])
        let runs: [(String, [String])] = [
            ("status_db", ["status", "--db", path]),
            ("table", ["table", path, "--format", "csv"]),
            ("table_by_config", ["table", path, "--by-config"]),
            ("fit", ["fit", path]),
            ("report", ["report", path, "--output", directory + "/report"]),
        ]
        for (name, arguments) in runs {
            let output = directory + "/\(name).txt"
            let run = try MeasuredRun(arguments, output: output)
            guard run.status == 0 else {
                let text = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
                throw ValidationError("isosweep \(arguments.joined(separator: " ")) failed: \(text.suffix(2000))")
            }
            var tool = ToolFigures.Tool(seconds: run.seconds, peakRSSBytes: run.peakRSSBytes)
            if name == "table" {
                // A header and one line per result: nothing left out.
                let text = try String(contentsOfFile: output, encoding: .utf8)
                tool.rows = text.split(separator: "\n").count - 1
            }
            figures.tools[name] = tool
        }
        try Output.json(figures)
    }
}

/// What `bench tools` measured.
struct ToolFigures: Encodable {
    struct Tool: Encodable {
        var seconds: Double
        var peakRSSBytes: Int
        var rows: Int?

        enum CodingKeys: String, CodingKey {
            case seconds, rows
            case peakRSSBytes = "peak_rss_bytes"
        }
    }

    var cells: Int
    var generateSeconds: Double
    var tools: [String: Tool]

    enum CodingKeys: String, CodingKey {
        case cells, tools
        case generateSeconds = "generate_seconds"
    }
}

/// A run of this executable whose wall time and peak resident memory are measured (wait4).
struct MeasuredRun {
    var status: Int32
    var seconds: Double
    var peakRSSBytes: Int

    /// Runs `isosweep arguments`, its output (both streams) written to `output`.
    init(_ arguments: [String], output: String) throws {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 1, output, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        let argv = ([OwnExecutable.path] + arguments).map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        let began = ContinuousClock.now
        var pid: pid_t = 0
        let code = posix_spawn(&pid, OwnExecutable.path, &actions, nil, argv, environ)
        guard code == 0 else {
            throw ValidationError("cannot start \(OwnExecutable.path): \(String(cString: strerror(code)))")
        }
        var status: Int32 = 0
        var usage = rusage()
        while wait4(pid, &status, 0, &usage) < 0 && errno == EINTR {}
        seconds = (ContinuousClock.now - began) / .seconds(1)
        // Linux reports ru_maxrss in KiB.
        peakRSSBytes = Int(usage.ru_maxrss) * 1024
        self.status = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
    }
}

/// A database of study cells with committed results shaped like real ones (every metric set,
/// the law's scaling with log-normal noise), for timing the reading tools at scale.
enum SyntheticSweep {
    /// Writes `cells` cells and their results to a new database at `path`; returns the count.
    static func write(cells count: Int, to path: String) throws -> Int {
        let store = try ResultStore(path: path)
        var shapes: [(n: Int, d: Int, width: Int, seed: Int, activation: ActivationKind)] = []
        var seed = 0
        outer: while true {
            for n in [256, 512, 1024, 2048] {
                for d in [8, 16, 32, 64] {
                    for exponent in 0..<12 {
                        for activation in [ActivationKind.relu, .tanh, .softplus] {
                            guard shapes.count < count else { break outer }
                            shapes.append((n, d, 4 << exponent, seed, activation))
                        }
                    }
                }
            }
            seed += 1
        }
        let work = shapes.map {
            CellWork.train(
                CellParameters(n: $0.n, d: $0.d, width: $0.width, seed: $0.seed, activation: $0.activation).resolved()
            )
        }
        let load = try store.load(name: "synthetic", cells: work)
        while !load.isFinished { _ = try load.next(limit: 20_000) }
        // Results are made a batch at a time: this process stays small, and the tools it starts
        // (whose peak memory is measured from a vfork of it) start small too.
        var generator = SeededGenerator(seed: 7, stream: .probes)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        var start = 0
        while start < shapes.count {
            let end = min(shapes.count, start + 10_000)
            let commits = try (start..<end).map { i in
                let shape = shapes[i]
                let row = result(shape.n, shape.d, shape.width, shape.seed, shape.activation, &generator)
                return Scheduler.Commit(
                    key: work[i].key,
                    payload: Array(try encoder.encode(row)),
                    worker: "synthetic-\(i % 8)",
                    attempt: 1,
                    identity: []
                )
            }
            try store.apply(updates: [], commits: commits, workers: [])
            start = end
        }
        return shapes.count
    }

    static func result(
        _ n: Int,
        _ d: Int,
        _ width: Int,
        _ seed: Int,
        _ activation: ActivationKind,
        _ generator: inout SeededGenerator
    ) -> CellResult {
        let parameters = CellParameters(n: n, d: d, width: width, seed: seed, activation: activation).resolved()
        let p = parameters.parameterCount
        let lawScale = (Double(n * d) / Double(p)).squareRoot()
        let fits = p > n
        let eps = fits ? 0.9 + 0.09 * Double.random(in: 0..<1, using: &generator) : 0.2
        let lip = 3 * lawScale * exp(0.1 * generator.nextGaussian())
        let metrics = CellMetrics(
            p: p,
            trainMSE: 1 - eps,
            noiseLevel: 1,
            eps: eps,
            fitFraction: fits ? 1 : 0.3,
            testMSE: 1.2 + 0.1 * generator.nextGaussian(),
            lipLower: lip * 1.1,
            lipUpper: lip * 4.5,
            lipSupportLower: lip,
            gradMean: lip / 2,
            lawScale: lawScale,
            lawRatio: lip / (eps * lawScale),
            steps: 100 + seed,
            stopReason: fits ? .targetReached : .maxSteps,
            trainSeconds: 0.01 * Double(width),
            lipSeconds: 0.002 * Double(width),
            flops: 4 * Double(n * d * width) * 100,
            gflops: 20,
            scienceVersion: scienceVersion,
            initialisation: "he-uniform",
            host: "synthetic",
            blas: "OpenBLAS (synthetic)"
        )
        return CellResult(parameters: parameters, metrics: metrics)
    }
}
