import Foundation
import Testing

/// A scaled-down swarm: hundreds of simulated workers (each the worker's real protocol core on
/// its own DEALER socket) against a real coordinator process. It asserts exactly-once, not speed
/// (the speed is `bench swarm`'s, quoted in docs/performance.md).
@Suite(.serialized) struct SwarmTests {
    @Test func twoHundredWorkersWithChurnAndACoordinatorKilledMidRunCommitEveryCellOnce() throws {
        let run = try runIsosweep(
            [
                "bench", "swarm", "--workers", "200", "--slots", "4", "--cells", "50000", "--loads", "2", "--churn",
                "0.1", "--restart-coordinator-after", "15000", "--timeout", "400",
            ],
            timeout: 480
        )
        #expect(run.status == 0, "\(run.stdout)\n\(run.stderr.suffix(3000))")
        let figures = try run.json()
        #expect(figures["committed_exactly_once"] as? Bool == true)
        #expect(figures["result_rows"] as? Int == 50000)
        #expect(figures["restarts"] as? Int == 1, "the coordinator was not killed and restarted")
        #expect((figures["leaves"] as? Int ?? 0) > 0, "no worker left and came back")
        #expect(figures["welcomed"] as? Int == 200)
    }
}
