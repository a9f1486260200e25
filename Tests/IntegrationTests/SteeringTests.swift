import Foundation
import SweepCore
import SweepStore
import Testing

/// Steering a running sweep through its database: FAILED cells requeued while the coordinator
/// runs are run again, and the exit code says how the sweep ended.
@Suite struct SteeringTests {
    @Test func aFailedCellRequeuedWhileTheCoordinatorRunsIsRunAgain() throws {
        let box = try Sandbox()
        let csv = box.path("late.csv")  // written only after its cells have FAILED
        let spec = box.path("steer.yaml")
        try """
        name: steer
        method: grid
        max_attempts: 1
        parameters:
          n: {value: 200}
          d: {value: 6}
          width: {values: [16, 32]}
          seed: {values: [0, 1, 2]}
          max_steps: {value: 12000}
          target_mse: {value: 0}
        variants:
          - {data: sphere}
          - {data: file, data_file: \(csv), classes: [a, b], n: 40, d: 3, width: 4096, max_steps: 2000, seed: 0}
        """.write(toFile: spec, atomically: true, encoding: .utf8)
        // The file cell's estimated cost is the largest, so it is dispatched (and FAILS) first,
        // while the slow cells have a whole sweep's time left to run.
        let db = box.path("steer.db")
        let run = try Spawned(["run", spec, "--db", db], name: "run", directory: box.directory)
        defer { run.kill9() }
        try waitUntil("the file cell FAILED", timeout: 120) {
            FileManager.default.fileExists(atPath: db)
                && (try? ResultStore(path: db, readOnly: true).cells(state: .failed).count) == 1
        }
        let failed = try ResultStore(path: db, readOnly: true).cells(state: .failed)
        #expect(failed[0].lastError?.contains("late.csv") == true, "\(failed[0].lastError ?? "")")
        let listed = try runIsosweep(["cells", db, "--state", "failed"])
        #expect(listed.status == 0 && listed.stdout.contains(String(failed[0].key.prefix(12))), "\(listed.stdout)")
        // The sweep is still running its slow cells; the data arrives and the cell is requeued.
        #expect(try ResultStore(path: db, readOnly: true).cells(state: .done).count < 6)
        var rows = ""
        for i in 0..<60 {
            rows += "\(Double(i % 5) + 0.5),\(Double(i % 3) - 1.5),\(Double(i % 7) * 0.3),\(i % 2 == 0 ? "a" : "b")\n"
        }
        try rows.write(toFile: csv, atomically: true, encoding: .utf8)
        let requeue = try runIsosweep(["requeue", db, "--failed"])
        #expect(
            requeue.status == 0 && requeue.stdout.contains("requeued 1 cells"),
            "\(requeue.stdout) \(requeue.stderr)"
        )
        // The coordinator picks it up, runs it, and the sweep ends with every cell done: exit 0.
        #expect(try run.wait(timeout: 300) == 0, "\(run.stderr.suffix(2000))")
        let store = try ResultStore(path: db, readOnly: true)
        #expect(try store.cells(state: .done).count == 7 && store.results().count == 7)
        #expect(run.stderr.contains("applied 1 requests from the database"))
        // A done cell is neither requeued nor cancelled.
        let refused = try runIsosweep(["cancel", db, "--key", String(failed[0].key.prefix(16))])
        #expect(refused.status != 0 && refused.stdout.contains("is done"), "\(refused.stdout)")
    }
}
