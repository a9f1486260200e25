import Foundation
import Testing

/// The deploy folder: scripts pass shellcheck, units pass systemd-analyze, the container file
/// is well formed, and the README's namespace walkthrough runs as written.
@Suite(.serialized) struct DeployTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    func path(_ relative: String) -> String { Self.root.appendingPathComponent(relative).path }

    @Test func scriptsPassShellcheck() throws {
        guard let shellcheck = LiveStatusTests.tool("shellcheck") else {
            Issue.record("shellcheck is missing: make test installs it")
            return
        }
        let scripts = [
            "deploy/netns/cluster.sh", "deploy/slurm/sweep.sbatch", "scripts/install-deps.sh", "scripts/fuzz-wire.sh",
            ".ci/run",
        ]
        for script in scripts {
            #expect(FileManager.default.fileExists(atPath: path(script)), "\(script)")
            #expect(shell("'\(shellcheck)' -x '\(path(script))'") == 0, "\(script) fails shellcheck")
            #expect(shell("bash -n '\(path(script))'") == 0, "\(script) is not valid bash")
        }
    }

    @Test(.enabled(if: LiveStatusTests.tool("systemd-analyze") != nil, "needs systemd-analyze"))
    func unitsPassSystemdAnalyzeVerify() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("isosweep-units-\(UUID().uuidString)")
            .path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let binary = try isosweepExecutable().path
        for (unit, installed) in [
            ("isosweep-coordinator.service", "isosweep-coordinator.service"),
            ("isosweep-worker@.service", "isosweep-worker@node07.service"),
        ] {
            let text = try String(contentsOfFile: path("deploy/systemd/\(unit)"), encoding: .utf8)
            #expect(
                text.contains("User=isosweep") && text.contains("ProtectSystem=strict")
                    && text.contains("KillSignal=SIGTERM") && text.contains("TimeoutStopSec=")
            )
            #expect(text.contains("Restart="))
            // verify checks that ExecStart exists: point it at the binary just built.
            try text.replacingOccurrences(of: "/usr/local/bin/isosweep", with: binary).write(
                toFile: dir + "/" + installed,
                atomically: true,
                encoding: .utf8
            )
        }
        let out = dir + "/verify.log"
        #expect(
            shell(
                "systemd-analyze verify '\(dir)/isosweep-coordinator.service' '\(dir)/isosweep-worker@node07.service' > '\(out)' 2>&1"
            ) == 0
        )
        let log = (try? String(contentsOfFile: out, encoding: .utf8)) ?? ""
        #expect(!log.contains("isosweep-"), "systemd-analyze: \(log)")
    }

    @Test func containerfileIsWellFormed() throws {
        let text = try String(contentsOfFile: path("deploy/container/Containerfile"), encoding: .utf8)
        let instructions: Set<String> = [
            "FROM", "RUN", "COPY", "WORKDIR", "USER", "VOLUME", "EXPOSE", "ENTRYPOINT", "CMD", "ENV", "ARG", "LABEL",
        ]
        var stages: [String] = []
        var continued = false
        for rawLine in text.split(separator: "\n", omittingEmptySubsequences: false) {
            let line = rawLine.trimmingCharacters(in: .whitespaces)
            defer { continued = line.hasSuffix("\\") }
            if continued || line.isEmpty || line.hasPrefix("#") { continue }
            let word = String(line.split(separator: " ")[0])
            #expect(instructions.contains(word), "unknown instruction: \(line)")
            if word == "FROM" {
                let parts = line.split(separator: " ").map(String.init)
                #expect(parts.count == 4 && parts[2].uppercased() == "AS", "stages are named: \(line)")
                stages.append(parts.last!)
            }
            if word == "COPY", let from = line.split(separator: " ").first(where: { $0.hasPrefix("--from=") }) {
                #expect(stages.contains(String(from.dropFirst("--from=".count))), "COPY from an unknown stage: \(line)")
            }
            if word == "ENTRYPOINT" || word == "CMD" {
                let json = String(line.dropFirst(word.count)).trimmingCharacters(in: .whitespaces)
                #expect(
                    (try? JSONSerialization.jsonObject(with: Data(json.utf8))) is [String],
                    "\(word) in exec form: \(line)"
                )
            }
        }
        #expect(stages.count == 2)
        #expect(text.contains("--static-swift-stdlib") && text.contains("libzmq5") && text.contains("libopenblas0"))
        #expect(text.contains("USER isosweep") && text.contains("useradd"))
        // Every file it copies from the build context exists.
        for source in ["Package.swift", "Sources", "sweeps"] {
            #expect(FileManager.default.fileExists(atPath: path(source)))
        }
    }

    @Test(.enabled(if: MultiHostTests.canMakeNamespaces, "needs root to make network namespaces"))
    func readmeNamespaceWalkthroughRunsAsWritten() throws {
        let readme = try String(contentsOfFile: path("deploy/README.md"), encoding: .utf8)
        let marker = try #require(readme.range(of: "<!-- walkthrough:netns -->"))
        let rest = readme[marker.upperBound...]
        let start = try #require(rest.range(of: "```sh\n"))
        let end = try #require(rest[start.upperBound...].range(of: "```"))
        let script = String(rest[start.upperBound..<end.lowerBound])
        #expect(script.contains("cluster.sh up 3") && script.contains("cluster.sh down 3"))
        _ = shell("cd '\(Self.root.path)' && deploy/netns/cluster.sh down 3")  // leftovers of an interrupted run
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("walkthrough-\(UUID().uuidString).sh")
            .path
        try ("set -euo pipefail\n" + script).write(toFile: file, atomically: true, encoding: .utf8)
        let log = file + ".log"
        let status = shell(
            "cd '\(Self.root.path)' && ISOSWEEP='\(try isosweepExecutable().path)' timeout 300 bash '\(file)' > '\(log)' 2>&1"
        )
        let output = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        #expect(status == 0, "the walkthrough failed:\n\(output.suffix(3000))")
        #expect(output.contains("up: 3 hosts") && output.contains("down: isohost0..isohost2 removed"))
        #expect(output.contains("done: 8") && output.contains("workers seen: 2"))
        #expect(output.split(separator: "\n").filter { $0.hasPrefix("| 32 ") }.count == 8)  // the table's 8 rows
    }
}
