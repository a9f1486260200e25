import Foundation
import SweepCore
import SweepStore
import Testing
import TrainingCore

/// The command line as a user runs it: real processes, real files.
@Suite struct CLITests {
    static let metricKeys = [
        "n", "d", "width", "p", "seed", "train_mse", "noise_level", "eps", "fit_fraction", "test_mse", "lip_lower",
        "lip_upper", "lip_support_lower", "grad_mean", "law_scale", "law_ratio", "steps", "stop_reason",
        "train_seconds",
        "flops", "gflops", "science_version", "init", "host", "blas", "activation", "trainer", "data", "labels",
        "lip_upper_product", "lip_upper_path", "lip_upper_centred", "lip_init_support_lower", "interp_floor",
        "fit_floor",
    ]

    func temporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("isosweep-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    @Test func theReadingToolsRunOnARealShapedDatabaseAndLeaveNoRowOut() throws {
        // `bench tools` at a small size: every tool exits 0 and the table has every result.
        let run = try runIsosweep(["bench", "tools", "--cells", "600"], timeout: 300)
        #expect(run.status == 0, "\(run.stderr)")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any])
        let tools = try #require(json["tools"] as? [String: [String: Any]])
        #expect(json["cells"] as? Int == 600)
        #expect(tools["table"]?["rows"] as? Int == 600)
        for name in ["status_db", "table", "table_by_config", "fit", "report"] {
            #expect((tools[name]?["peak_rss_bytes"] as? Int ?? 0) > 1_000_000, "\(name) has no measured memory")
        }
    }

    @Test func trainPrintsEveryMetricAsJSON() throws {
        let run = try runIsosweep([
            "train", "--n", "64", "--d", "8", "--width", "16", "--seed", "2", "--max-steps", "300",
        ])
        #expect(run.status == 0, "\(run.stderr)")
        let json = try run.json()
        for key in Self.metricKeys { #expect(json[key] != nil, "missing \(key)") }
        #expect(json["p"] as? Int == 16 * 10 + 1)
        #expect(json["seed"] as? Int == 2)
        #expect(json["stop_reason"] as? String != nil)
        #expect(run.stdout.split(separator: "\n").count == 1)
    }

    @Test func trainTakesEveryParameterOfTheCatalogue() throws {
        let dir = try temporaryDirectory()
        let csv = dir.appendingPathComponent("d.csv").path
        var rows = ""
        for i in 0..<24 {
            rows +=
                "\(Double(i % 5) + 0.5),\(Double(i % 3) - 1.5),\(Double(i % 7) * 0.3 + 0.1),\(i % 2 == 0 ? "a" : "b")\n"
        }
        try rows.write(toFile: csv, atomically: true, encoding: .utf8)
        // A value of every parameter, as the command line spells it and as the JSON reports it.
        let examples: [String: (argument: String, json: String)] = [
            "n": ("12", "12"), "d": ("3", "3"), "width": ("4", "4"), "seed": ("7", "7"), "data": ("file", "\"file\""),
            "data_file": (csv, "\"\(csv)\""), "label_file": (csv, "\"\(csv)\""), "classes": ("a,b", "[\"a\",\"b\"]"),
            "label_column": ("3", "3"), "labels": ("file", "\"file\""), "eta": ("0.1", "0.1"),
            "activation": ("tanh", "\"tanh\""),
            "trainer": ("gd", "\"gd\""), "lr": ("0.05", "0.05"), "max_steps": ("10", "10"),
            "target_mse": ("0.01", "0.01"),
            "n_test": ("5", "5"), "weight_decay": ("0.001", "0.001"), "grad_penalty": ("0.1", "0.1"),
            "init_scale": ("0.5", "0.5"), "extra_steps": ("5", "5"), "smooth_after_fit": ("5", "5"),
        ]
        #expect(Set(examples.keys) == Set(CellParameters.catalogue.map(\.name)))
        var arguments = ["train"]
        for parameter in CellParameters.catalogue {
            arguments += [parameter.optionName, try #require(examples[parameter.name]).argument]
        }
        let run = try runIsosweep(arguments)
        #expect(run.status == 0, "\(run.stderr)")
        for parameter in CellParameters.catalogue {
            let key = "\"\(parameter.name)\":"
            #expect(
                run.stdout.contains(key + (examples[parameter.name]?.json ?? "?")),
                "\(parameter.name) in \(run.stdout)"
            )
        }
        // Every option's help is the catalogue's.
        let help = try runIsosweep(["train", "--help"]).stdout.split(whereSeparator: \.isWhitespace).joined(
            separator: " "
        )
        for parameter in CellParameters.catalogue {
            #expect(help.contains(parameter.optionName), "\(parameter.optionName)")
            #expect(
                help.contains(parameter.help.split(separator: " ").prefix(4).joined(separator: " ")),
                "\(parameter.name)'s help"
            )
        }
    }

    /// The product's commands carry no benchmark hooks: the benchmarks' own processes are
    /// `bench` subcommands (SweepBench).
    @Test func productCommandsHaveNoBenchmarkOptions() throws {
        for command in ["coordinator", "run", "worker"] {
            let help = try runIsosweep([command, "--help-hidden"])
            #expect(help.status == 0, "\(help.stderr)")
            #expect(help.stdout.contains("--log-level"), "\(command)'s hidden help is empty")
            #expect(!help.stdout.contains("--bench"), "\(command) has a benchmark option: \(help.stdout)")
        }
        let top = try runIsosweep(["--help-hidden"]).stdout
        #expect(!top.contains("swarm-load"))
        for hidden in ["coordinator", "swarm-load"] {
            let help = try runIsosweep(["bench", hidden, "--help"])
            #expect(help.status == 0 && help.stdout.contains("USAGE: isosweep bench \(hidden)"), "\(help.stdout)")
        }
    }

    @Test func savedModelGivesTheSameBoundsThroughLipschitz() throws {
        let dir = try temporaryDirectory()
        let model = dir.appendingPathComponent("net.safetensors").path
        let train = try runIsosweep([
            "train", "--n", "48", "--d", "6", "--width", "12", "--seed", "4", "--activation", "tanh", "--max-steps",
            "200",
            "--save-model", model, "--save-data",
        ])
        #expect(train.status == 0, "\(train.stderr)")
        let trained = try train.json()
        let measured = try runIsosweep(["lipschitz", model])
        #expect(measured.status == 0, "\(measured.stderr)")
        let bounds = try measured.json()
        // Same network, same probes (X from the file, the saved seed): the very same numbers.
        for key in [
            "lip_lower", "lip_upper", "lip_support_lower", "grad_mean", "lip_upper_product", "lip_upper_path",
            "lip_upper_centred", "interp_floor", "fit_floor",
        ] {
            #expect(bounds[key] as? Double == trained[key] as? Double, "\(key)")
        }
        #expect(bounds["support"] as? String == "unit sphere")
        #expect(bounds["training_probes"] as? Int == 48)
        // Other probes change the lower bounds but never the certified upper bound.
        let gaussian = try runIsosweep(["lipschitz", model, "--data", "gaussian", "--seed", "9"]).json()
        #expect(gaussian["lip_upper"] as? Double == trained["lip_upper"] as? Double)
    }

    /// Issue 13's acceptance, scaled down (docs/smoothing.md quotes the full cell: n 256, d 16, width 1024):
    /// the gradient penalty with extra steps lowers lip_support_lower by at least a third while
    /// eps stays >= 0.5, and `isosweep lipschitz` on the saved network gives the same bounds.
    @Test func aGradientPenaltyWithExtraStepsMakesASmootherInterpolant() throws {
        let dir = try temporaryDirectory()
        let cell = ["train", "--n", "96", "--d", "12", "--width", "384", "--seed", "0"]
        let plain = try runIsosweep(cell, timeout: 300)
        #expect(plain.status == 0, "\(plain.stderr)")
        let model = dir.appendingPathComponent("penalised.safetensors").path
        let penalised = try runIsosweep(
            cell + ["--grad-penalty", "0.01", "--extra-steps", "1000", "--save-model", model, "--save-data"],
            timeout: 300
        )
        #expect(penalised.status == 0, "\(penalised.stderr)")
        let before = try plain.json()
        let after = try penalised.json()
        let rough = try #require(before["lip_support_lower"] as? Double)
        let smooth = try #require(after["lip_support_lower"] as? Double)
        #expect(smooth <= rough * 2 / 3, "lip_support_lower \(rough) -> \(smooth)")
        #expect((after["eps"] as? Double ?? 0) >= 0.5)
        #expect(["extra_steps", "fit_lost"].contains(after["stop_reason"] as? String ?? ""))
        #expect(after["grad_penalty"] as? Double == 0.01 && after["extra_steps"] as? Int == 1000)
        let measured = try runIsosweep(["lipschitz", model], timeout: 300)
        #expect(measured.status == 0, "\(measured.stderr)")
        let bounds = try measured.json()
        for key in ["lip_lower", "lip_upper", "lip_support_lower", "interp_floor"] {
            #expect(bounds[key] as? Double == after[key] as? Double, "\(key)")
        }
    }

    @Test func theExactConstantOfTrainedReLUNetworksLiesBetweenTheBounds() throws {
        let dir = try temporaryDirectory()
        for seed in 0..<4 {
            let model = dir.appendingPathComponent("relu-\(seed).safetensors").path
            let train = try runIsosweep([
                "train", "--n", "40", "--d", "\(2 + seed)", "--width", "\(8 + 4 * seed)", "--seed", "\(seed)",
                "--max-steps", "300", "--save-model", model, "--save-data",
            ])
            #expect(train.status == 0, "\(train.stderr)")
            let run = try runIsosweep(["lipschitz", model, "--exact"])
            #expect(run.status == 0, "\(run.stderr)")
            let json = try run.json()
            let exact = try #require(json["lip_exact"] as? Double)
            let lower = try #require(json["lip_lower"] as? Double)
            let upper = try #require(json["lip_upper"] as? Double)
            let centred = try #require(json["lip_upper_centred"] as? Double)
            #expect(lower <= exact * (1 + 1e-9) && exact <= upper && exact <= centred * (1 + 1e-12), "\(json)")
            #expect((json["exact_regions"] as? Int ?? 0) >= 1)
            #expect((json["lip_lower_rays"] as? Double ?? .infinity) <= exact * (1 + 1e-9))
        }
        let tanh = dir.appendingPathComponent("tanh.safetensors").path
        _ = try runIsosweep([
            "train", "--n", "16", "--d", "2", "--width", "4", "--activation", "tanh", "--max-steps", "20",
            "--save-model", tanh,
        ])
        let refused = try runIsosweep(["lipschitz", tanh, "--exact"])
        #expect(refused.status != 0 && refused.stderr.contains("needs a ReLU network"), "\(refused.stderr)")
    }

    @Test func divergingLearningRateIsReportedAsDiverged() throws {
        let run = try runIsosweep(["train", "--n", "32", "--d", "4", "--width", "8", "--trainer", "gd", "--lr", "1e9"])
        #expect(run.status == 0)
        let json = try run.json()
        #expect(json["stop_reason"] as? String == "diverged")
        #expect(json["train_mse"] is NSNull && json["lip_lower"] is NSNull)
    }

    @Test func badInputFailsWithAClearMessage() throws {
        let dir = try temporaryDirectory()
        let csv = dir.appendingPathComponent("d.csv")
        try "1,2,3,a\n3,4,5,b\n6,7,8,a\n".write(to: csv, atomically: true, encoding: .utf8)
        let garbage = dir.appendingPathComponent("garbage.safetensors")
        try Data((0..<200).map { UInt8($0 % 251) }).write(to: garbage)
        let cases: [([String], String)] = [
            (["train", "--n", "0", "--d", "4", "--width", "2"], "n must be a positive"),
            (["train", "--n", "8", "--d", "4", "--width", "0"], "width must be a positive"),
            (["train", "--n", "8", "--d", "4", "--width", "-3"], "width"),
            (["train", "--n", "8", "--d", "4", "--width", "2", "--activation", "sigmoid"], "sigmoid"),
            (
                [
                    "train", "--n", "2", "--d", "5", "--width", "2", "--data", "file", "--data-file", csv.path,
                    "--classes", "a,b",
                ], "d = 5"
            ),
            (
                [
                    "train", "--n", "9", "--d", "3", "--width", "2", "--data", "file", "--data-file", csv.path,
                    "--classes", "a,b",
                ], "n = 9"
            ),
            (
                [
                    "train", "--n", "2", "--d", "3", "--width", "2", "--data", "file", "--data-file",
                    dir.path + "/none.csv", "--classes", "a,b",
                ], "does not exist"
            ),
            (["lipschitz", garbage.path], "not a valid safetensors file"),
            (["lipschitz", dir.path + "/missing.safetensors"], "cannot read"),
            (["train", "--n", "8", "--d", "4", "--width", "2", "--save-data"], "--save-model"),
        ]
        for (arguments, words) in cases {
            let run = try runIsosweep(arguments, timeout: 30)
            #expect(run.status != 0, "\(arguments) exited 0")
            #expect(run.stderr.contains(words), "\(arguments): \(run.stderr)")
            #expect(!run.stderr.contains("Fatal error"), "\(arguments) crashed: \(run.stderr)")
        }
    }

    @Test func benchTrainPrintsComparableFigures() throws {
        let run = try runIsosweep([
            "bench", "train", "--n", "200", "--d", "20", "--width", "50", "--steps", "5", "--rounds", "1",
        ])
        #expect(run.status == 0, "\(run.stderr)")
        let json = try run.json()
        let step = try #require(json["seconds_per_step"] as? Double)
        let gemm = try #require(json["sgemm_seconds_per_step"] as? Double)
        let ratio = try #require(json["ratio"] as? Double)
        #expect(step > 0 && gemm > 0)
        #expect(abs(ratio - gemm / step) < 1e-9 * ratio)
        let flops = 4.0 * 200 * 20 * 50
        #expect(abs((json["step_gflops"] as? Double ?? 0) - flops / step / 1e9) < 1e-6)
    }

    @Test func benchLipschitzTimesTheBoundsAgainstTrainingSteps() throws {
        let run = try runIsosweep(
            ["bench", "lipschitz", "--n", "64", "--d", "8", "--width", "32", "--rounds", "2"],
            timeout: 300
        )
        #expect(run.status == 0, "\(run.stderr)")
        let json = try run.json()
        let hundred = try #require(json["hundred_steps_seconds"] as? Double)
        let lipschitz = try #require(json["lipschitz_seconds"] as? Double)
        let baseline = try #require(json["baseline_seconds"] as? Double)
        let ratio = try #require(json["ratio"] as? Double)
        #expect(json["rounds"] as? Int == 2)
        #expect(hundred > 0 && lipschitz > 0 && baseline > 0)
        #expect(abs(ratio - (lipschitz + baseline) / hundred) < 1e-9 * ratio)
        let lower = try #require(json["lip_lower"] as? Double)
        let upper = try #require(json["lip_upper"] as? Double)
        #expect(lower > 0 && lower <= upper)
    }

    @Test func aResultThatCannotBeDecodedIsCountedNotDropped() throws {
        let dir = try temporaryDirectory()
        let db = dir.appendingPathComponent("garbled.db").path
        let spec = try SweepSpec.parse(
            "name: garbled\nparameters:\n  n: {value: 8}\n  d: {value: 2}\n  width: {values: [1, 2]}\n",
            file: "garbled.yaml"
        )
        let cells = try spec.cells()
        let store = try ResultStore(path: db)
        _ = try store.prepare(spec: spec, cells: cells)
        let garbage = Scheduler.Commit(
            key: cells[0].key,
            payload: Array("{\"not\": \"metrics\"}".utf8),
            worker: "w",
            attempt: 1,
            identity: []
        )
        try store.apply(updates: [], commits: [garbage], workers: [])
        let table = try runIsosweep(["table", db, "--format", "csv"])
        #expect(table.status == 0 && table.stdout.split(separator: "\n").count == 1)
        #expect(
            table.stderr.contains("1 committed results could not be decoded")
                && table.stderr.contains(String(cells[0].key.prefix(12)))
        )
        let status = try runIsosweep(["status", "--db", db])
        #expect(status.stdout.contains("undecodable results: 1"), "\(status.stdout)")
        let report = try runIsosweep(["report", db, "-o", dir.appendingPathComponent("report").path])
        #expect(report.status == 0, "\(report.stderr)")
        let markdown = try String(contentsOfFile: dir.appendingPathComponent("report/report.md").path, encoding: .utf8)
        #expect(markdown.contains("**Warning:** 1 committed results could not be decoded"))
    }
}
