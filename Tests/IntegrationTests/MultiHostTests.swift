import Foundation
import SweepCore
import SweepStore
import Testing

/// A real multi-host cluster on one machine: a coordinator and three workers in four network
/// namespaces joined by a bridge (deploy/netns/cluster.sh), CURVE on, and a link that fails.
@Suite(.serialized) struct MultiHostTests {
    static let ip = ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip"].first {
        FileManager.default.isExecutableFile(atPath: $0)
    }

    /// Whether this machine lets the tests make network namespaces (root with CAP_NET_ADMIN).
    static let canMakeNamespaces: Bool = {
        guard ip != nil else {
            print("skipping the multi-host test: no ip command (install iproute2)")
            return false
        }
        let probe = "isoprobe\(Int.random(in: 1000..<9999))"
        let ok = shell("ip netns add \(probe) && ip netns del \(probe)") == 0
        if !ok {
            print("skipping the multi-host test: cannot make network namespaces here (needs root with CAP_NET_ADMIN)")
        }
        return ok
    }()

    @Test(.enabled(if: canMakeNamespaces, "needs root to make network namespaces"))
    func sweepAcrossNamespacesSurvivesACutLink() throws {
        let box = try Sandbox()
        let prefix = "iso\(Int.random(in: 100..<999))h"
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
            .appendingPathComponent("deploy/netns/cluster.sh").path
        #expect(shell("ISOSWEEP_NETNS_PREFIX=\(prefix) bash '\(script)' up 4") == 0)
        defer { _ = shell("ISOSWEEP_NETNS_PREFIX=\(prefix) bash '\(script)' down 4") }
        func inHost(_ i: Int) -> [String] { [Self.ip!, "netns", "exec", "\(prefix)\(i)"] }

        for name in ["coordinator", "w1", "w2", "w3"] {
            #expect(try runIsosweep(["keygen", "--out", box.path("keys"), "--name", name]).status == 0)
        }
        try FileManager.default.createDirectory(atPath: box.path("allow"), withIntermediateDirectories: true)
        for name in ["w1", "w2", "w3"] {
            try FileManager.default.copyItem(
                atPath: box.path("keys/\(name).pub"),
                toPath: box.path("allow/\(name).pub")
            )
        }

        let spec = try box.sweep("multihost", seeds: [0, 1, 2], widths: [4, 8, 16, 32], steps: 2000)
        let endpoint = "tcp://198.18.0.1:5555"
        let coordinator = try Spawned(
            [
                "coordinator", spec, "--bind", endpoint, "--db", box.path("mh.db"), "--heartbeat", "0.2", "--liveness",
                "3",
                "--curve-secret", box.path("keys/coordinator.secret"), "--allow", box.path("allow"),
            ],
            name: "coordinator",
            directory: box.directory,
            launcher: inHost(0)
        )
        defer { coordinator.kill9() }
        _ = try box.endpoint(of: coordinator, pattern: #"endpoint=tcp://198\.18\.0\.1:5555"#)
        let workers = try (1...3).map { i in
            try Spawned(
                [
                    "worker", "--connect", endpoint, "--slots", "1", "--prefetch", "0", "--log-level", "debug",
                    "--curve-secret", box.path("keys/w\(i).secret"), "--server-key", box.path("keys/coordinator.pub"),
                ],
                name: "w\(i)",
                directory: box.directory,
                launcher: inHost(i)
            )
        }
        defer { for process in workers { process.kill9() } }
        // Wait until host 1 is busy, then cut its link for 3 s (the liveness window is 0.6 s).
        var victimCell = ""
        try waitUntil("host 1 to train a cell", timeout: 90) {
            victimCell = trainings(in: workers[0].stderr).last?.key ?? ""
            return !victimCell.isEmpty
        }
        #expect(shell("ip -n \(prefix)1 link set eth0 down") == 0)
        try waitUntil("the coordinator to declare host 1 dead", timeout: 30) {
            coordinator.stderr.contains("stopped responding") || coordinator.stderr.contains("dead;")
        }
        try waitUntil("another host to redo host 1's cell", timeout: 90) {
            workers[1...].contains { trainings(in: $0.stderr).contains { $0.key == victimCell } }
        }
        usleep(1_500_000)
        #expect(shell("ip -n \(prefix)1 link set eth0 up") == 0)
        // Host 1 notices the silence, reconnects by itself and registers again.
        try waitUntil("host 1 to register again", timeout: 90) {
            workers[0].stderr.components(separatedBy: "[Worker] registered").count - 1 >= 2
        }
        #expect(try coordinator.wait(timeout: 240) == 0, "\(coordinator.stderr.suffix(3000))")
        let results = try ResultStore(path: box.path("mh.db"), readOnly: true).results()
        #expect(results.count == 12 && Set(results.map(\.key)).count == 12)
        let workerCount = Set(results.map(\.worker)).count
        #expect(workerCount >= 2)
        #expect(coordinator.stderr.contains("CURVE on"))
    }
}
