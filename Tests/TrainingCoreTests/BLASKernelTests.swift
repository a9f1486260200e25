import Foundation
import Testing

@testable import TrainingCore

/// The choice of OpenBLAS kernels (every case of `BLASKernel.plan`, pure), the CPU reading
/// against the kernel's own view of it, and the self-check against the loaded kernels.
@Suite struct BLASKernelTests {
    static let sapphireRapids = CPUFeatures(
        vendor: .intel,
        avx: true,
        avx2: true,
        fma: true,
        avx512: true,
        avx512BF16: true
    )
    static let skylake = CPUFeatures(vendor: .intel, avx: true, avx2: true, fma: true, avx512: true)
    static let haswell = CPUFeatures(vendor: .intel, avx: true, avx2: true, fma: true)
    static let zen = CPUFeatures(vendor: .amd, avx: true, avx2: true, fma: true)
    static let old = CPUFeatures(vendor: .intel)

    @Test func aGenericCoreIsReplacedByTheBestTheCPUAllows() {
        let none: [String: String] = [:]
        #expect(
            BLASKernel.plan(environment: none, loaded: "Prescott", features: Self.sapphireRapids)
                == .switchTo(core: "Cooperlake", replacing: "Prescott")
        )
        #expect(
            BLASKernel.plan(environment: none, loaded: "Prescott", features: Self.skylake)
                == .switchTo(core: "SkylakeX", replacing: "Prescott")
        )
        #expect(
            BLASKernel.plan(environment: none, loaded: "Core2", features: Self.haswell)
                == .switchTo(core: "Haswell", replacing: "Core2")
        )
        #expect(
            BLASKernel.plan(environment: none, loaded: "Prescott", features: Self.zen)
                == .switchTo(core: "Zen", replacing: "Prescott")
        )
        #expect(
            BLASKernel.plan(environment: none, loaded: "Sandybridge", features: Self.skylake)
                == .switchTo(core: "SkylakeX", replacing: "Sandybridge")
        )
    }

    @Test func openBLASsOwnChoiceStandsWhenItIsAsGoodOrUnknown() {
        let none: [String: String] = [:]
        #expect(BLASKernel.plan(environment: none, loaded: "SkylakeX", features: Self.skylake) == .keep(.openBLAS))
        #expect(
            BLASKernel.plan(environment: none, loaded: "Cooperlake", features: Self.sapphireRapids) == .keep(.openBLAS)
        )
        // A core this build of isosweep does not know may be newer: never replaced.
        #expect(BLASKernel.plan(environment: none, loaded: "Zen5", features: Self.zen) == .keep(.openBLAS))
        // A CPU without AVX (or not x86): nothing to choose.
        #expect(BLASKernel.plan(environment: none, loaded: "Prescott", features: Self.old) == .keep(.openBLAS))
    }

    @Test func aUsersCoreTypeIsNeverReplaced() {
        let user = ["OPENBLAS_CORETYPE": "Prescott"]
        #expect(
            BLASKernel.plan(environment: user, loaded: "Prescott", features: Self.sapphireRapids)
                == .keep(.user("Prescott"))
        )
        #expect(BLASKernel.provenance(environment: user, loaded: "Prescott") == .user("Prescott"))
        // Set by the user to what isosweep would have chosen: still the user's.
        let same = ["OPENBLAS_CORETYPE": "Cooperlake"]
        #expect(
            BLASKernel.plan(environment: same, loaded: "Cooperlake", features: Self.sapphireRapids)
                == .keep(.user("Cooperlake"))
        )
    }

    @Test func isosweepsOwnChoiceIsCheckedOnceLoadedAndDroppedWhenMissingOrFailed() {
        let chosen = [
            "OPENBLAS_CORETYPE": "Cooperlake", "ISOSWEEP_BLAS_CHOSEN": "Cooperlake",
            "ISOSWEEP_BLAS_REPLACED": "Prescott",
        ]
        #expect(
            BLASKernel.plan(environment: chosen, loaded: "Cooperlake", features: Self.sapphireRapids)
                == .check(core: "Cooperlake", replacing: "Prescott")
        )
        #expect(BLASKernel.provenance(environment: chosen, loaded: "Cooperlake") == .isosweep(replacing: "Prescott"))
        // This OpenBLAS has no such kernels and ran others: run again without the choice.
        #expect(
            BLASKernel.plan(environment: chosen, loaded: "Haswell", features: Self.sapphireRapids)
                == .unavailable(core: "Cooperlake", loaded: "Haswell")
        )
        // After a failed self-check nothing is chosen again, whatever the CPU allows.
        let fallback = ["ISOSWEEP_BLAS_FALLBACK": "Cooperlake failed its self-check"]
        #expect(
            BLASKernel.plan(environment: fallback, loaded: "Prescott", features: Self.sapphireRapids)
                == .keep(.fallback(reason: "Cooperlake failed its self-check"))
        )
        #expect(
            BLASKernel.provenance(environment: fallback, loaded: "Prescott")
                == .fallback(reason: "Cooperlake failed its self-check")
        )
        #expect(BLASKernel.provenance(environment: [:], loaded: "Prescott") == .openBLAS)
    }

    /// CPUID read here agrees with what the kernel (Linux) reports in /proc/cpuinfo.
    @Test(.enabled(if: FileManager.default.fileExists(atPath: "/proc/cpuinfo")))
    func theCPUReadingAgreesWithTheKernels() throws {
        let cpuinfo = try String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)
        let line = try #require(cpuinfo.split(separator: "\n").first { $0.hasPrefix("flags") })
        let flags = Set(line.split(separator: " ").map(String.init))
        let cpu = CPUFeatures.current
        #expect(cpu.avx == flags.contains("avx"))
        #expect(cpu.avx2 == flags.contains("avx2"))
        #expect(cpu.fma == flags.contains("fma"))
        #expect(cpu.avx512 == ["avx512f", "avx512bw", "avx512dq", "avx512vl"].allSatisfy(flags.contains))
        #expect(cpu.avx512BF16 == (cpu.avx512 && flags.contains("avx512_bf16")))
    }

    @Test func theLoadedKernelsPassTheSelfCheck() {
        #expect(BLASSelfCheck.run(threadCounts: [1, 2]) == nil)
    }

    /// A kernel that gets one element wrong is caught, named, and measured far outside the bound.
    @Test func aWrongElementFailsTheSelfCheck() throws {
        let mismatch = try #require(BLASSelfCheck.run(threadCounts: [1], corrupt: true))
        #expect(mismatch.routine == "SGEMM" && mismatch.transposeA && mismatch.transposeB)
        #expect(mismatch.errorOverBound > 1000)
        #expect(mismatch.description.contains("SGEMM TT 100x40x70 at 1 threads"))
    }
}
