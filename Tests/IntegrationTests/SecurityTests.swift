import Foundation
import SweepCore
import SweepStore
import Testing
import TrainingCore
import ZeroMQ

/// CURVE with an allow-list, fail-closed defaults, and a coordinator that hostile input cannot
/// crash or mislead. Real processes, real keys, real sockets.
@Suite(.serialized) struct SecurityTests {
    /// Makes key pairs with `isosweep keygen` in `box/keys`.
    func keys(_ box: Sandbox, _ names: [String]) throws {
        for name in names {
            let made = try runIsosweep(["keygen", "--out", box.path("keys"), "--name", name])
            #expect(made.status == 0, "\(made.stderr)")
        }
        try FileManager.default.createDirectory(atPath: box.path("allow"), withIntermediateDirectories: true)
    }

    func allow(_ box: Sandbox, _ name: String) throws {
        try FileManager.default.copyItem(atPath: box.path("keys/\(name).pub"), toPath: box.path("allow/\(name).pub"))
    }

    func curveCoordinator(_ box: Sandbox, _ spec: String, db: String) throws -> (Spawned, String) {
        let coordinator = try box.coordinator(
            spec,
            db: db,
            bind: "tcp://*:0",
            extra: ["--curve-secret", box.path("keys/coordinator.secret"), "--allow", box.path("allow")]
        )
        let endpoint = try box.endpoint(of: coordinator, pattern: #"endpoint=tcp://0\.0\.0\.0:\d+"#)
        return (coordinator, endpoint.replacingOccurrences(of: "0.0.0.0", with: "127.0.0.1"))
    }

    func curveWorker(_ box: Sandbox, _ endpoint: String, key: String) throws -> Spawned {
        try Spawned(
            [
                "worker", "--connect", endpoint, "--slots", "1", "--prefetch", "0", "--curve-secret",
                box.path("keys/\(key).secret"),
                "--server-key", box.path("keys/coordinator.pub"),
            ],
            name: key,
            directory: box.directory
        )
    }

    func workerID(_ worker: Spawned) -> String? {
        guard let range = worker.stderr.range(of: #"id=[^ ]+"#, options: .regularExpression) else { return nil }
        return String(worker.stderr[range].dropFirst(3))
    }

    @Test func onlyAllowListedWorkersGetCellsOverCurve() throws {
        let box = try Sandbox()
        try keys(box, ["coordinator", "good", "intruder"])
        try allow(box, "good")
        let spec = try box.sweep("curve", seeds: [0, 1], widths: [4, 8], steps: 300)
        let (coordinator, endpoint) = try curveCoordinator(box, spec, db: "c.db")
        // An unlisted key and a plain-text client try first, for a while, alone.
        let intruder = try curveWorker(box, endpoint, key: "intruder")
        let plain = try box.worker(endpoint, name: "plain")
        defer { for process in [intruder, plain] { process.kill9() } }
        // The coordinator logs a refusal before the worker hears of it: wait for both sides.
        try waitUntil("both refusals in the coordinator's log, and the intruder's", timeout: 30) {
            coordinator.stderr.contains("is not in the allow list")
                && coordinator.stderr.contains("does not speak this socket's security mechanism")
                && intruder.stderr.contains("the coordinator refused the connection")
        }
        #expect(coordinator.stderr.contains("refused a connection"))
        #expect(coordinator.stderr.contains("peer=127.0.0.1"))
        // Now the allowed worker.
        let good = try curveWorker(box, endpoint, key: "good")
        defer { good.kill9() }
        #expect(try coordinator.wait(timeout: 120) == 0, "\(coordinator.stderr.suffix(2000))")
        let results = try ResultStore(path: box.path("c.db"), readOnly: true).results()
        #expect(results.count == 4)
        let goodID = try #require(workerID(good))
        #expect(results.allSatisfy { $0.worker == goodID })
        #expect(trainings(in: intruder.stderr).isEmpty && trainings(in: plain.stderr).isEmpty)
        // Refusals are rate-limited: a client retrying for seconds does not flood the log.
        let refusalLines = coordinator.stderr.split(separator: "\n").filter { $0.contains("refused a connection") }
        #expect(refusalLines.count < 20, "\(refusalLines.count) refusal lines")
    }

    @Test func revokedKeysAreShutOutAfterSIGHUPAndNewKeysLetIn() throws {
        let box = try Sandbox()
        try keys(box, ["coordinator", "first", "revoked", "added"])
        try allow(box, "first")
        try allow(box, "revoked")
        let spec = try box.sweep("hup", seeds: [0, 1, 2], widths: [4, 8], steps: 2500)
        let (coordinator, endpoint) = try curveCoordinator(box, spec, db: "h.db")
        defer { coordinator.kill9() }
        try FileManager.default.removeItem(atPath: box.path("allow/revoked.pub"))
        try allow(box, "added")
        kill(coordinator.pid, SIGHUP)
        try waitUntil("the reload", timeout: 20) { coordinator.stderr.contains("allow list reloaded") }
        #expect(coordinator.stderr.contains("added=1") && coordinator.stderr.contains("removed=1"))
        let revoked = try curveWorker(box, endpoint, key: "revoked")
        let added = try curveWorker(box, endpoint, key: "added")
        defer { for process in [revoked, added] { process.kill9() } }
        try waitUntil("the added key to train", timeout: 60) { !trainings(in: added.stderr).isEmpty }
        #expect(try coordinator.wait(timeout: 180) == 0)
        #expect(trainings(in: revoked.stderr).isEmpty)
        #expect(coordinator.stderr.contains("is not in the allow list"))
    }

    @Test func failClosedDefaults() throws {
        let box = try Sandbox()
        let spec = try box.sweep("closed", seeds: [0], widths: [4], steps: 10)
        let open = try runIsosweep(
            ["coordinator", spec, "--bind", "tcp://0.0.0.0:0", "--db", box.path("o.db")],
            timeout: 30
        )
        #expect(open.status != 0)
        #expect(
            open.stderr.contains("refusing to listen on tcp://0.0.0.0:0 without encryption")
                && open.stderr.contains("isosweep keygen")
        )
        let star = try runIsosweep(["coordinator", spec, "--bind", "tcp://*:0", "--db", box.path("o.db")], timeout: 30)
        #expect(star.status != 0 && star.stderr.contains("without encryption"))
        let worker = try runIsosweep(["worker", "--connect", "tcp://198.18.0.1:5555"], timeout: 30)
        #expect(
            worker.status != 0 && worker.stderr.contains("refusing to connect")
                && worker.stderr.contains("--curve-secret")
        )
        try keys(box, ["coordinator"])
        chmod(box.path("keys/coordinator.secret"), 0o644)
        let loose = try runIsosweep(
            [
                "coordinator", spec, "--bind", "tcp://*:0", "--db", box.path("o.db"), "--curve-secret",
                box.path("keys/coordinator.secret"), "--allow", box.path("allow"),
            ],
            timeout: 30
        )
        #expect(
            loose.status != 0 && loose.stderr.contains("readable by others (mode 644)")
                && loose.stderr.contains("chmod 600")
        )
        #expect(!FileManager.default.fileExists(atPath: box.path("o.db")))
        // --insecure is an explicit choice, warned about.
        let insecure = try box.coordinator(spec, db: "i.db", bind: "tcp://0.0.0.0:0", extra: ["--insecure"])
        defer { insecure.kill9() }
        try waitUntil("the warning", timeout: 30) { insecure.stderr.contains("INSECURE") }
    }

    @Test func aFileThatDropsCellsNeedsForceWhichIsRecorded() throws {
        let box = try Sandbox()
        let first = try box.sweep("one", seeds: [0, 1], widths: [4], steps: 50)
        #expect(try runIsosweep(["run", first, "--workers", "1", "--db", box.path("s.db")], timeout: 120).status == 0)
        // Seed 0 is dropped: not the same sweep, nor an extension of it.
        let second = try box.sweep("two", seeds: [1, 2], widths: [4], steps: 50)
        let refused = try runIsosweep(["run", second, "--workers", "1", "--db", box.path("s.db")], timeout: 60)
        #expect(
            refused.status == 2 && refused.stderr.contains("belongs to sweep 'one'")
                && refused.stderr.contains("--force")
        )
        let forced = try runIsosweep(
            ["run", second, "--workers", "1", "--db", box.path("s.db"), "--force"],
            timeout: 120
        )
        #expect(forced.status == 0, "\(forced.stderr)")
        let store = try ResultStore(path: box.path("s.db"), readOnly: true)
        #expect(
            try store.events().contains {
                $0.kind == "spec_changed" && $0.detail.contains("'one'") && $0.detail.contains("'two'")
            }
        )
        // The cell both specs share was not trained again.
        #expect(
            forced.stderr.range(of: #"cells=2 db=[^ ]+ done=1 "#, options: .regularExpression) != nil,
            "\(forced.stderr)"
        )
        #expect(try store.results().count == 3)
    }

    @Test func hostileTrafficDuringASweepChangesNothing() throws {
        let box = try Sandbox()
        let spec = try box.sweep("hostile", seeds: [0, 1, 2], widths: [4, 8], steps: 600)
        let clean = try runIsosweep(["run", spec, "--workers", "2", "--db", box.path("clean.db")], timeout: 180)
        #expect(clean.status == 0)
        let coordinator = try box.coordinator(spec, db: "attacked.db")
        let endpoint = try box.endpoint(of: coordinator)
        let workers = try (0..<2).map { try box.worker(endpoint, name: "w\($0)") }
        defer { for process in workers { process.kill9() } }
        let keys = try SweepSpec.load(path: spec).cells().map(\.key)
        let sent = try attack(endpoint, keys: keys, messages: 6000)
        #expect(sent >= 6000)
        #expect(try coordinator.wait(timeout: 180) == 0, "\(coordinator.stderr.suffix(3000))")
        #expect(coordinator.stderr.contains("dropped a malformed message"))
        func table(_ db: String) throws -> [String] {
            try runIsosweep(["table", box.path(db), "--format", "csv"]).stdout.split(separator: "\n").map {
                $0.split(separator: ",", omittingEmptySubsequences: false).dropLast().joined(separator: ",")
            }
        }
        #expect(try table("attacked.db") == table("clean.db"))
        let results = try ResultStore(path: box.path("attacked.db"), readOnly: true).results()
        let realWorkers = Set(workers.compactMap(workerIDOf))
        #expect(results.allSatisfy { realWorkers.contains($0.worker) })
    }

    func workerIDOf(_ worker: Spawned) -> String? { workerID(worker) }

    /// Sends random and mutated multipart messages from several fresh connections; returns how many.
    func attack(_ endpoint: String, keys: [String], messages: Int) throws -> Int {
        let context = try Context()
        let testSeed: UInt64 = 20_261_206
        print("attack: seed \(testSeed)")
        var rng = SeededGenerator(seed: testSeed, stream: .testing)
        var sent = 0
        let templates: [Message] = [
            .hello(
                Message.Hello(
                    protocolVersion: Wire.protocolVersion,
                    scienceVersion: 1,
                    workerID: "attacker",
                    build: "x",
                    host: "evil",
                    slots: 3
                )
            ),
            .hello(
                Message.Hello(
                    protocolVersion: 99,
                    scienceVersion: 1,
                    workerID: "old",
                    build: "x",
                    host: "evil",
                    slots: 1
                )
            ),
            .credit(count: 1_000_000),
            .result(lease: 1, key: keys[0], attempt: 1, payload: Array("{\"n\": 1}".utf8)),
            .result(lease: rng.next(), key: keys[1], attempt: 1, payload: []),
            .failed(lease: 7, key: keys[2], attempt: 1, error: "forged"),
            .shard(lease: 1, cells: [Message.Assignment(key: keys[0], attempt: 1, work: [1])]),
            .ack(keys: keys),
            .bye,
            .heartbeat,
        ]
        for connection in 0..<12 {
            let socket = try Socket(context, .dealer)
            try socket.set(.lingerMilliseconds(0))  // drop what is unsent at close
            try socket.connect(endpoint)
            for index in 0..<(messages / 12) {
                var frames = templates[(index + connection) % templates.count].encode()
                switch rng.next() % 5 {
                case 0: frames = [(0..<(1 + rng.next() % 3)).map { _ in UInt8.random(in: 0...255, using: &rng) }]
                case 1: frames[1] = frames[1].map { rng.next() % 8 == 0 ? UInt8.random(in: 0...255, using: &rng) : $0 }
                case 2: frames[1] = Array(frames[1].prefix(Int(rng.next() % UInt64(frames[1].count + 1))))
                case 3: frames += (0..<(1 + rng.next() % 20)).map { _ in [UInt8.random(in: 0...255, using: &rng)] }
                default: break  // a well-formed message the attacker has no right to send
                }
                if try socket.send(frames, dontWait: true) { sent += 1 }
                // Drain replies so the socket never blocks.
                while (try? socket.receive(dontWait: true)) != nil {}
                if index % 100 == 0 { usleep(2000) }
            }
            socket.close()
        }
        return sent
    }

    /// Whether this machine lets the tests mount a small tmpfs (root with CAP_SYS_ADMIN).
    static let canMountTmpfs: Bool = {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent(
            "isosweep-mount-probe-\(UUID().uuidString)"
        ).path
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let mounted = mountTmpfs(dir, size: "64k")
        if mounted {
            _ = shell("umount '\(dir)'")
        } else {
            print("skipping the full-disk test: cannot mount a tmpfs here (needs root with CAP_SYS_ADMIN)")
        }
        return mounted
    }()

    @Test(.enabled(if: canMountTmpfs, "needs root to mount a small tmpfs"))
    func aFullDiskPausesTheSweepWithoutLosingResults() throws {
        let box = try Sandbox()
        let disk = box.path("disk")
        try FileManager.default.createDirectory(atPath: disk, withIntermediateDirectories: true)
        #expect(mountTmpfs(disk, size: "1m"))
        defer { _ = shell("umount -l '\(disk)'") }
        let spec = try box.sweep("full", seeds: [0, 1, 2], widths: [4, 8], steps: 300)
        let coordinator = try box.coordinator(spec, db: "disk/full.db")
        let endpoint = try box.endpoint(of: coordinator)
        // Fill the disk to the last byte.
        let filler = disk + "/filler"
        _ = shell("dd if=/dev/zero of='\(filler)' bs=4k 2>/dev/null")
        let worker = try box.worker(endpoint, name: "w")
        defer { worker.kill9() }
        try waitUntil("the coordinator to notice the full disk", timeout: 60) {
            coordinator.stderr.contains("cannot write the database: dispatching paused")
        }
        // Nothing was acknowledged while the disk was full, and dispatch stopped: wait a little
        // and check that no cell got past the cells the worker held.
        usleep(1_500_000)
        #expect(coordinator.isRunning)
        try FileManager.default.removeItem(atPath: filler)
        try waitUntil("writes to resume", timeout: 60) {
            coordinator.stderr.contains("the database takes writes again")
        }
        #expect(try coordinator.wait(timeout: 120) == 0, "\(coordinator.stderr.suffix(2000))")
        let results = try ResultStore(path: box.path("disk/full.db"), readOnly: true).results()
        #expect(results.count == 6)
        #expect(Set(results.map(\.key)).count == 6)
    }
}

extension SecurityTests {
    @Test(.enabled(if: canMountTmpfs, "needs root to mount a small tmpfs"))
    func aReadOnlyDatabaseIsRefusedWithTheReason() throws {
        let box = try Sandbox()
        let disk = box.path("ro")
        try FileManager.default.createDirectory(atPath: disk, withIntermediateDirectories: true)
        #expect(mountTmpfs(disk, size: "1m"))
        defer { _ = shell("umount -l '\(disk)'") }
        let spec = try box.sweep("ro", seeds: [0], widths: [4], steps: 50)
        #expect(try runIsosweep(["run", spec, "--workers", "1", "--db", disk + "/ro.db"], timeout: 120).status == 0)
        #expect(shell("mount -o remount,ro '\(disk)'") == 0)
        let again = try runIsosweep(["run", spec, "--workers", "1", "--db", disk + "/ro.db"], timeout: 60)
        #expect(again.status == 2)
        #expect(again.stderr.contains("ro.db") && again.stderr.lowercased().contains("read"), "\(again.stderr)")
        // Reading still works: the table of what was committed.
        #expect(
            try runIsosweep(["table", disk + "/ro.db", "--format", "csv"]).stdout.split(separator: "\n").count == 2
        )
    }
}

/// Mounts a tmpfs of `size` on `directory` (root only); whether it worked.
func mountTmpfs(_ directory: String, size: String) -> Bool {
    shell("mount -t tmpfs -o size=\(size) tmpfs '\(directory)'") == 0
}

/// Runs a shell command; returns its exit status.
@discardableResult
func shell(_ command: String) -> Int32 {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/bin/sh")
    // Root's tools (ip, mount) live in sbin, which a minimal PATH may lack.
    process.arguments = ["-c", "PATH=/usr/sbin:/sbin:$PATH; " + command]
    process.standardOutput = FileHandle.nullDevice
    process.standardError = FileHandle.nullDevice
    do {
        try process.run()
    } catch {
        return -1
    }
    process.waitUntilExit()
    return process.terminationStatus
}
