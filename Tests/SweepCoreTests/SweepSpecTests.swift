import Diagnostics
import Foundation
import SweepCore
import Testing
import TrainingCore

/// Sweep files: the grid they describe and every way they can be wrong.
@Suite struct SweepSpecTests {
    let good = """
        name: t
        method: grid
        description: test
        parameters:
          n: {values: [64, 128]}
          d: {value: 8}
          width: {values: [2, 4, 8]}
          seed: {values: [0, 1]}
          activation: {value: tanh}
          eta: {value: 0.1}
          labels: {value: teacher}
          lr: {value: 0.02}
        """

    @Test func gridIsTheCartesianProductOfAxes() throws {
        let spec = try SweepSpec.parse(good, file: "t.yaml")
        #expect(spec.name == "t" && spec.parameters.count == 8)
        let cells = try spec.cells()
        #expect(cells.count == 2 * 3 * 2)
        #expect(Set(cells.map(\.key)).count == 12)
        let first = try #require(cells.first?.parameters)
        #expect(
            first.n == 64 && first.width == 2 && first.seed == 0 && first.activation == .tanh && first.eta == 0.1
                && first.lr == 0.02
        )
        // Cell keys do not depend on how a cell is spelled: defaults made explicit give the same key.
        let explicit = CellWork.train(
            CellParameters(
                n: 64,
                d: 8,
                width: 2,
                seed: 0,
                labels: .teacher,
                eta: 0.1,
                activation: .tanh,
                trainer: .adam,
                lr: 0.02
            )
        )
        #expect(cells[0].key == explicit.key)
        #expect(cells[0].key.count == 64)
        // The file's text is kept as written, comments included.
        let commented = "# why this grid\n" + good
        #expect(try SweepSpec.parse(commented, file: "x.yaml").source == commented)
    }

    /// `variants:` runs the grid once per variant; a variant's values override the grid's, and
    /// cells that collapse onto one (a construction at one width) are one cell.
    @Test func variantsRunTheGridOncePerVariantAndOverrideIt() throws {
        let spec = try SweepSpec.parse(
            """
            name: v
            method: grid
            parameters:
              n: {value: 32}
              d: {value: 8}
              width: {values: [8, 32, 64]}
              seed: {values: [0, 1]}
            variants:
              - {trainer: adam}
              - {trainer: adam, grad_penalty: 0.01, extra_steps: 100}
              - {trainer: construction, width: 32}
            """,
            file: "v.yaml"
        )
        #expect(spec.variants.count == 3)
        let cells = try spec.cells().compactMap(\.parameters)
        #expect(cells.count == 6 + 6 + 2)
        #expect(cells.filter { $0.trainer == .construction }.allSatisfy { $0.width == 32 })
        #expect(cells.filter { $0.gradPenalty == 0.01 }.count == 6)
        // Without variants the same grid is one set of plain cells.
        let plain = try SweepSpec.parse(
            "name: p\nmethod: grid\nparameters:\n  n: {value: 32}\n  d: {value: 8}\n  width: {values: [8, 32, 64]}\n  seed: {values: [0, 1]}\n",
            file: "p.yaml"
        )
        #expect(Set(try plain.cells().map(\.key)).isSubset(of: Set(try spec.cells().map(\.key))))
        // A variant that makes an invalid cell names the cell and the fix.
        do {
            _ = try SweepSpec.parse(
                """
                name: w
                method: grid
                parameters: {n: {value: 32}, d: {value: 8}, width: {values: [8, 64]}}
                variants: [{trainer: construction}]
                """,
                file: "w.yaml"
            )
            Issue.record("a construction narrower than n was accepted")
        } catch {
            #expect(error.message.contains("width >= n"))
        }
        for (text, fragment) in [
            ("variants: []", "non-empty list"), ("variants: [{colour: red}]", "unknown parameter colour"),
            ("variants: [{lr: fast}]", "variants[0].lr: expected a number"),
        ] {
            do {
                _ = try SweepSpec.parse(
                    "name: x\nmethod: grid\nparameters: {n: {value: 8}, d: {value: 2}, width: {value: 2}}\n\(text)\n",
                    file: "x.yaml"
                )
                Issue.record("\(text) was accepted")
            } catch {
                #expect(error.message.contains(fragment), "\(error.message)")
            }
        }
    }

    static func randomSweep(seed: Int, cap: Int = 50) -> String {
        """
        name: r
        method: random
        run_cap: \(cap)
        seed: \(seed)
        parameters:
          n: {value: 32}
          d: {distribution: categorical, values: [2, 4, 8]}
          width: {distribution: q_log_uniform_values, min: 2, max: 512, q: 2}
          lr: {distribution: log_uniform_values, min: 0.0001, max: 0.1}
          seed: {distribution: int_uniform, min: 0, max: 3}
          eta: {distribution: uniform, min: 0, max: 0.25}
          labels: {value: teacher}
        """
    }

    /// `method: random`: run_cap distinct cells, the same ones for the same seed, drawn from
    /// each parameter's distribution.
    @Test func randomSweepsDrawRunCapDistinctCellsFromTheirSeed() throws {
        let first = try SweepSpec.parse(Self.randomSweep(seed: 7), file: "r.yaml").cells()
        let again = try SweepSpec.parse(Self.randomSweep(seed: 7), file: "r.yaml").cells()
        let other = try SweepSpec.parse(Self.randomSweep(seed: 8), file: "r.yaml").cells()
        #expect(first.count == 50 && Set(first.map(\.key)).count == 50)
        #expect(first.map(\.key) == again.map(\.key))
        #expect(Set(first.map(\.key)) != Set(other.map(\.key)))
        let cells = first.compactMap(\.parameters)
        #expect(cells.allSatisfy { [2, 4, 8].contains($0.d) && $0.width % 2 == 0 && (2...512).contains($0.width) })
        #expect(cells.allSatisfy { ($0.lr ?? 0) >= 0.0001 && ($0.lr ?? 1) <= 0.1 && (0...3).contains($0.seed) })
        #expect(cells.allSatisfy { $0.eta >= 0 && $0.eta <= 0.25 })
        // Log-uniform: about as many draws below the geometric middle as above it.
        let below = cells.filter { ($0.lr ?? 0) < 0.0001 * 1000.0.squareRoot() }.count
        #expect(below > 10 && below < 40)
        // A space smaller than run_cap is refused with the fix.
        let tiny = """
            name: t
            method: random
            run_cap: 5
            parameters: {n: {value: 8}, d: {value: 2}, width: {distribution: int_uniform, min: 1, max: 2}}
            """
        #expect(throws: IsosweepError.self) { try SweepSpec.parse(tiny, file: "t.yaml") }
        for (text, fragment) in [
            ("method: random\nparameters: {n: {value: 8}, d: {value: 2}, width: {value: 2}}", "run_cap: is required"),
            (
                "method: grid\nparameters: {n: {value: 8}, d: {value: 2}, width: {distribution: int_uniform, min: 1, max: 4}}",
                "needs method: random"
            ),
            (
                "method: random\nrun_cap: 2\nparameters: {n: {value: 8}, d: {value: 2}, width: {distribution: normal, min: 1, max: 4}}",
                "expected one of int_uniform"
            ),
            (
                "method: random\nrun_cap: 2\nparameters: {n: {value: 8}, d: {value: 2}, width: {distribution: log_uniform_values, min: 0, max: 4}}",
                "0 < min <= max"
            ),
        ] {
            do {
                _ = try SweepSpec.parse("name: x\n" + text + "\n", file: "x.yaml")
                Issue.record("accepted: \(text)")
            } catch {
                #expect(error.message.contains(fragment), "\(error.message)")
            }
        }
    }

    @Test func duplicateValuesGiveOneCell() throws {
        let spec = try SweepSpec.parse(
            "name: d\nparameters:\n  n: {values: [8, 8]}\n  d: {value: 2}\n  width: {values: [1, 1, 2]}\n",
            file: "d.yaml"
        )
        #expect(try spec.cells().count == 2)
    }

    @Test(
        arguments: [
            (
                "name: x\nparameters:\n  n: {value: 8}\n  d: {value: 2}\n  width: {value: 1}\n  colour: {value: red}\n",
                "parameters.colour", "unknown parameter"
            ),
            ("name: x\nparameters:\n  d: {value: 2}\n  width: {value: 1}\n", "parameters.n", "required"),
            (
                "name: x\nparameters:\n  n: {value: eight}\n  d: {value: 2}\n  width: {value: 1}\n",
                "parameters.n.value", "expected a whole number, got the string \"eight\""
            ),
            (
                "name: x\nparameters:\n  n: {value: 8.5}\n  d: {value: 2}\n  width: {value: 1}\n", "parameters.n.value",
                "whole number"
            ),
            (
                "name: x\nparameters:\n  n: {values: []}\n  d: {value: 2}\n  width: {value: 1}\n",
                "parameters.n.values", "is empty"
            ),
            (
                "name: x\nparameters:\n  n: {value: 8}\n  d: {value: 2}\n  width: {values: [1, \"two\"]}\n",
                "parameters.width.values[1]", "whole number"
            ),
            (
                "name: x\nparameters:\n  n: {value: 8}\n  d: {value: 2}\n  width: {value: 1}\n  activation: {value: sigmoid}\n",
                "parameters.activation.value", "one of relu, tanh, softplus"
            ),
            (
                "name: x\nparameters:\n  n: {value: 8}\n  d: {value: 2}\n  width: {min: 1, max: 3}\n",
                "parameters.width", "expected {value: x}"
            ),
            (
                "name: x\nparameters:\n  n: {value: 8}\n  d: {value: 2}\n  width: {value: 1}\nepochs: 3\n", "epochs",
                "unknown key"
            ),
            (
                "name: x\nmethod: bayes\nparameters:\n  n: {value: 8}\n  d: {value: 2}\n  width: {value: 1}\n",
                "method", "expected grid"
            ),
            ("parameters:\n  n: {value: 8}\n  d: {value: 2}\n  width: {value: 1}\n", "name", "required"),
            (
                "name: x\nparameters:\n  n: {values: [8, 0]}\n  d: {value: 2}\n  width: {value: 1}\n", "parameters",
                "n must be a positive"
            ),
            ("name: x\nparameters: [1, 2]\n", "parameters", "expected a mapping"),
            ("name: [unclosed\n", nil, "not valid YAML"),
        ] as [(String, String?, String)]
    )
    func badFilesNameFileKeyAndExpectation(_ text: String, _ key: String?, _ words: String) {
        do {
            _ = try SweepSpec.parse(text, file: "sweeps/bad.yaml")
            Issue.record("accepted:\n\(text)")
        } catch {
            // sweeps/bad.yaml[:LINE]: [KEY: ]what was expected
            #expect(error.code == .sweepFile)
            #expect(error.description.hasPrefix("sweeps/bad.yaml"))
            if let key {
                #expect(
                    error.description.range(
                        of: #"^sweeps/bad\.yaml(:\d+)?: "# + NSRegularExpression.escapedPattern(for: key) + ": ",
                        options: .regularExpression
                    ) != nil,
                    "\(error)"
                )
            }
            #expect(error.description.contains(words), "\(error)")
        }
    }

    @Test func errorsCarryTheLine() throws {
        do {
            _ = try SweepSpec.parse(
                "name: x\nparameters:\n  n: {value: 8}\n  d: {value: two}\n  width: {value: 1}\n",
                file: "f.yaml"
            )
            Issue.record("accepted")
        } catch {
            #expect(error.description.hasPrefix("f.yaml:4: parameters.d.value:"))
        }
    }

    @Test func shippedSweepFilesAreValid() throws {
        // Tests run from the package root.
        let quick = try SweepSpec.load(path: "sweeps/quick.yaml")
        #expect(try quick.cells().count == 60)
        let study = try SweepSpec.load(path: "sweeps/law-of-robustness.yaml")
        let cells = try study.cells()
        // Widths 16 and 64 at n = 4096, d = 1024 are in both questions: 12 cells collapse.
        #expect(cells.count == (2 * 3 * 4 + 6) * 2 * 3 - 12)
        #expect(Set(cells.compactMap { $0.parameters?.n }) == [4096, 16384])
        #expect(Set(cells.compactMap { $0.parameters?.d }) == [64, 256, 1024])
        #expect(Set(cells.compactMap { $0.parameters?.smoothAfterFit }) == [5000])
        for name in ["law-in-d", "law-in-p"] {
            #expect(try !SweepSpec.load(path: "sweeps/\(name).yaml").cells().isEmpty, "\(name)")
        }
    }

    @Test func sha256MatchesKnownVectors() {
        #expect(SHA256.hex([]) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(SHA256.hex(Array("abc".utf8)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(
            SHA256.hex(Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8))
                == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
        )
        #expect(
            SHA256.hex([UInt8](repeating: 0x61, count: 1_000_000))
                == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"
        )
    }
}

extension SweepSpecTests {
    @Test func resourcesSetLimitsWithoutChangingCellKeys() throws {
        let grid = "name: r\nparameters:\n  n: {value: 8}\n  d: {value: 2}\n  width: {values: [1, 2]}\n"
        let plain = try SweepSpec.parse(grid, file: "r.yaml")
        let limited = try SweepSpec.parse(grid + "resources:\n  threads: 4\n  time_limit: 1h30m\n", file: "r.yaml")
        var expected = ResourceLimits.sweepFileDefaults
        expected.threads = 4
        expected.timeLimitMilliseconds = 5_400_000
        #expect(limited.limits == expected)
        // Checkpoints every 10 minutes and a 10-minute stall limit unless the file says otherwise.
        #expect(plain.limits == ResourceLimits(checkpointEveryMilliseconds: 600_000, stallLimitMilliseconds: 600_000))
        #expect(try plain.cells().map(\.key) == limited.cells().map(\.key))
        let auto = try SweepSpec.parse(grid + "resources: {threads: auto, time_limit: 90}\n", file: "r.yaml")
        expected = ResourceLimits.sweepFileDefaults
        expected.timeLimitMilliseconds = 90_000
        #expect(auto.limits == expected)
        let checkpointed = try SweepSpec.parse(
            grid + "resources: {checkpoint_every: 5s, stall_limit: off}\n",
            file: "r.yaml"
        )
        #expect(checkpointed.limits == ResourceLimits(checkpointEveryMilliseconds: 5000, stallLimitMilliseconds: 0))
        #expect(try checkpointed.cells().map(\.key) == plain.cells().map(\.key))
        for (resources, words) in [
            ("resources: {threads: 0}", "resources.threads: expected auto or a whole number"),
            ("resources: {time_limit: soon}", "resources.time_limit: expected a duration"),
            ("resources: {memory: lots}", "resources.memory: expected auto"),
            ("resources: {memory: 12}", "resources.memory: expected auto"),
            // Refused when the file is read, before anything is recorded or dispatched.
            (
                "resources: {memory: 1MiB}",
                "r.yaml: resources.memory: resources.memory 1 MiB is below the estimated peak"
            ),
            ("resources: {cores: 4}", "resources.cores: unknown key"),
            ("resources: {checkpoint_every: often}", "resources.checkpoint_every: expected off or a duration"),
            ("resources: {stall_limit: 0s}", "resources.stall_limit: expected off or a duration"),
            ("resources: [1]", "resources: expected a mapping"),
        ] {
            #expect(throws: IsosweepError.self) { try SweepSpec.parse(grid + resources + "\n", file: "r.yaml") }
            do {
                _ = try SweepSpec.parse(grid + resources + "\n", file: "r.yaml")
            } catch {
                #expect(error.description.contains(words), "\(error)")
            }
        }
        let memory = try SweepSpec.parse(grid + "resources: {memory: 4GiB}\n", file: "r.yaml")
        expected = ResourceLimits.sweepFileDefaults
        expected.memoryBytes = 4 << 30
        #expect(memory.limits == expected)
        #expect(try memory.cells().map(\.key) == plain.cells().map(\.key))
        #expect(Units.parseSize("512MiB") == 512 << 20 && Units.parseSize("2.5GB") == 2_500_000_000)
        #expect(Units.parseSize("1G") == 1 << 30 && Units.parseSize("12 GiB") == 12 << 30)
        #expect(Units.parseSize("4 parsecs") == nil && Units.parseSize("") == nil)
        #expect(Units.formatSize(18 << 30) == "18 GiB" && Units.formatSize(1_610_612_736) == "1.5 GiB")
        #expect(Units.parseDuration("1h30m") == 5400 && Units.parseDuration("2s") == 2)
        #expect(Units.parseDuration("1.5m") == 90 && Units.parseDuration("") == nil)
        #expect(Units.parseDuration("10x") == nil && Units.parseDuration("5m3") == nil)
    }
}
