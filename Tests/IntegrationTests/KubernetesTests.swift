import Foundation
import Testing

/// deploy/kubernetes: every manifest passes the Kubernetes schemas offline (kubernetes-validate,
/// strict), the shell each pod runs passes shellcheck, and the ConfigMap's sweep is a valid sweep.
@Suite struct KubernetesTests {
    func path(_ relative: String) -> String { DeployTests.root.appendingPathComponent(relative).path }

    static let manifests = [
        "sweep-configmap.yaml", "keys.yaml", "coordinator.yaml", "workers.yaml", "workers-job.yaml",
    ]

    var python: String { path(".build/test-python/bin/python") }
    var validator: String { path(".build/test-python/bin/kubernetes-validate") }

    /// Runs a shell command, returning its status and output.
    func run(_ command: String) -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", command + " 2>&1"]
        let pipe = Pipe()
        process.standardOutput = pipe
        do { try process.run() } catch { return (-1, "\(error)") }
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    @Test func theManifestsPassTheKubernetesSchemas() throws {
        guard FileManager.default.isExecutableFile(atPath: validator) else {
            Issue.record("kubernetes-validate is missing: make test installs it (scripts/install-deps.sh --test)")
            return
        }
        let files = Self.manifests.map { "'\(path("deploy/kubernetes/\($0)"))'" }.joined(separator: " ")
        let result = run("'\(validator)' --strict -k 1.30.0 \(files)")
        #expect(result.status == 0, "\(result.output)")
        for kind in [
            "configmap/isosweep-sweep", "secret/isosweep-coordinator-key", "secret/isosweep-worker-key",
            "configmap/isosweep-server-key", "configmap/isosweep-allow", "service/isosweep-coordinator",
            "statefulset/isosweep-coordinator", "deployment/isosweep-worker", "job/isosweep-workers",
        ] {
            #expect(result.output.contains("passed for resource \(kind)"), "\(kind): \(result.output)")
        }
        // The validation bites: a misspelt field fails it.
        let broken = FileManager.default.temporaryDirectory.appendingPathComponent(
            "isosweep-k8s-\(UUID().uuidString).yaml"
        )
        let text = try String(contentsOfFile: path("deploy/kubernetes/workers.yaml"), encoding: .utf8)
        try text.replacingOccurrences(of: "resourceFieldRef", with: "resourceFieldReference").write(
            to: broken,
            atomically: true,
            encoding: .utf8
        )
        #expect(run("'\(validator)' --strict -k 1.30.0 '\(broken.path)'").status != 0)
        // kustomization.yaml lists files that exist.
        let kustomization = try String(contentsOfFile: path("deploy/kubernetes/kustomization.yaml"), encoding: .utf8)
        for line in kustomization.split(separator: "\n") where line.hasPrefix("  - ") {
            #expect(FileManager.default.fileExists(atPath: path("deploy/kubernetes/\(line.dropFirst(4))")), "\(line)")
        }
    }

    @Test func thePodsShellAndSweepAreValid() throws {
        guard FileManager.default.isExecutableFile(atPath: python), let shellcheck = LiveStatusTests.tool("shellcheck")
        else {
            Issue.record("the test venv or shellcheck is missing: make test installs them")
            return
        }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("isosweep-k8s-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        // Each container's `sh -c` script to a file of its own, and the ConfigMap's sweep file.
        let extract = """
            import sys, yaml, pathlib
            out = pathlib.Path(sys.argv[1])
            for name in sys.argv[2:]:
                for doc in yaml.safe_load_all(open(name)):
                    spec = doc.get("spec", {})
                    pod = spec.get("template", {}).get("spec", {})
                    for c in pod.get("containers", []):
                        if c.get("command", [])[:2] == ["/bin/sh", "-c"]:
                            (out / (doc["metadata"]["name"] + ".sh")).write_text("#!/bin/sh\\n" + c["args"][0])
                    if doc["kind"] == "ConfigMap" and "sweep.yaml" in doc.get("data", {}):
                        (out / "sweep.yaml").write_text(doc["data"]["sweep.yaml"])
            """
        try extract.write(to: dir.appendingPathComponent("extract.py"), atomically: true, encoding: .utf8)
        let files = Self.manifests.map { "'\(path("deploy/kubernetes/\($0)"))'" }.joined(separator: " ")
        let extracted = run("'\(python)' '\(dir.path)/extract.py' '\(dir.path)' \(files)")
        #expect(extracted.status == 0, "\(extracted.output)")
        for name in ["isosweep-coordinator", "isosweep-worker", "isosweep-workers"] {
            let script = dir.appendingPathComponent("\(name).sh").path
            #expect(FileManager.default.fileExists(atPath: script), "\(name) runs no shell script")
            let checked = run("'\(shellcheck)' -s sh '\(script)'")
            #expect(checked.status == 0, "\(name): \(checked.output)")
        }
        // The coordinator's and the workers' flags are the real ones.
        let coordinator = try String(
            contentsOfFile: dir.appendingPathComponent("isosweep-coordinator.sh").path,
            encoding: .utf8
        )
        for flag in ["--curve-secret", "--allow", "--status-port", "--db"] { #expect(coordinator.contains(flag)) }
        let plan = try runIsosweep(["plan", dir.appendingPathComponent("sweep.yaml").path, "--gflops", "10"])
        #expect(plan.status == 0 && plan.stdout.contains("sweep quick: 60 cells"), "\(plan.stdout) \(plan.stderr)")
    }
}
