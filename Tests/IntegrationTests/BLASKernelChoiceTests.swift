import Foundation
import Testing
import TrainingCore

/// isosweep runs the OpenBLAS kernels the CPU allows, keeps a user's OPENBLAS_CORETYPE, records
/// the kernels in results, and a cell runner whose kernels fail their self-check falls back to
/// OpenBLAS's own choice and says so. Real processes re-executing themselves.
@Suite struct BLASKernelChoiceTests {
    /// What OpenBLAS runs by itself here, and what isosweep chooses instead (nil: nothing better).
    static let ownCore = BLASKernel.loaded
    static let choice = BLASKernel.best(for: .current).flatMap {
        BLASKernel.tier(of: $0) > BLASKernel.tier(of: ownCore) ? $0 : nil
    }
    /// The tests compare with OpenBLAS's own choice, so they need an environment without one.
    static let userSetNothing = ProcessInfo.processInfo.environment[BLASKernel.coreTypeVariable] == nil
    /// Nothing of a test's own: every run starts as a user's would.
    static let clean: [String: String?] = [
        BLASKernel.coreTypeVariable: nil, BLASKernel.chosenVariable: nil, BLASKernel.replacedVariable: nil,
        BLASKernel.fallbackVariable: nil, BLASKernel.selfCheckVariable: nil,
    ]

    @Test(.enabled(if: userSetNothing))
    func benchTrainRunsTheChosenKernelsAndAUsersChoiceIsKept() throws {
        let arguments = ["bench", "train", "--n", "64", "--d", "8", "--width", "16", "--steps", "2", "--rounds", "1"]
        let chosen = try runIsosweep(arguments, environment: Self.clean)
        #expect(chosen.status == 0, "\(chosen.stderr)")
        let result = try chosen.json()
        #expect(result["blas_core"] as? String == Self.choice ?? Self.ownCore)
        #expect((result["sgemm_gflops"] as? Double ?? 0) > 0)
        if let choice = Self.choice {
            #expect((result["blas"] as? String)?.contains("chosen by isosweep") == true, "\(result)")
            // The user's Prescott stays, and the log says what the CPU would allow.
            var user = Self.clean
            user[BLASKernel.coreTypeVariable] = "Prescott"
            let kept = try runIsosweep(arguments, environment: user)
            #expect(kept.status == 0, "\(kept.stderr)")
            #expect(try kept.json()["blas_core"] as? String == "Prescott")
            #expect(kept.stderr.contains("OPENBLAS_CORETYPE=Prescott is set: isosweep keeps it"), "\(kept.stderr)")
            #expect(kept.stderr.contains("allows \(choice)"), "\(kept.stderr)")
        }
    }

    @Test(.enabled(if: userSetNothing))
    func resultsCarryTheirKernelsAndAFailedSelfCheckFallsBack() throws {
        let box = try Sandbox()
        let spec = try box.sweep("kernels", seeds: [0, 1], widths: [4], steps: 30)
        let normal = try runIsosweep(
            ["run", spec, "--workers", "1", "--db", box.path("k.db")],
            environment: Self.clean
        )
        #expect(normal.status == 0, "\(normal.stderr.suffix(2000))")
        let rows = try tableRows(box.path("k.db"))
        #expect(rows.count == 2)
        #expect(rows.allSatisfy { $0["blas_core"] as? String == Self.choice ?? Self.ownCore }, "\(rows)")
        #expect(normal.stderr.contains("\(Self.choice ?? Self.ownCore) BLAS kernels"), "\(normal.stderr.suffix(2000))")
        guard Self.choice != nil else { return }
        // Every runner's check fails: the cells run on OpenBLAS's own kernels, and the log says why.
        var corrupt = Self.clean
        corrupt[BLASKernel.selfCheckVariable] = "corrupt"
        let fallback = try runIsosweep(
            ["run", spec, "--workers", "1", "--db", box.path("f.db")],
            environment: corrupt
        )
        #expect(fallback.status == 0, "\(fallback.stderr.suffix(2000))")
        let fellBack = try tableRows(box.path("f.db"))
        #expect(fellBack.count == 2)
        #expect(fellBack.allSatisfy { $0["blas_core"] as? String == Self.ownCore }, "\(fellBack)")
        #expect(fellBack.allSatisfy { ($0["blas"] as? String)?.contains("failed its self-check") == true })
        #expect(fallback.stderr.contains("failed its self-check (SGEMM TT"), "\(fallback.stderr.suffix(2000))")
        #expect(fallback.stderr.contains("running OpenBLAS's own choice instead"))
    }

    private func tableRows(_ db: String) throws -> [[String: Any]] {
        let table = try runIsosweep(["table", db, "--format", "json"])
        #expect(table.status == 0, "\(table.stderr)")
        return try #require(try JSONSerialization.jsonObject(with: Data(table.stdout.utf8)) as? [[String: Any]])
    }
}
