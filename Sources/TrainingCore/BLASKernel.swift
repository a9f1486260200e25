import COpenBLAS

/// Which OpenBLAS kernels ("core") a process runs, and how they were chosen.
///
/// OpenBLAS picks its kernels once, when the library loads, from `OPENBLAS_CORETYPE` or from the
/// CPU model. Builds that do not know a CPU (Debian 12's 0.3.21 on recent Xeons) fall back to
/// their generic Prescott kernels (SSE3), 4x slower at SGEMM than what the CPU's features allow.
/// isosweep then chooses the core those features allow (`plan`) and runs itself again with it in
/// `OPENBLAS_CORETYPE`; a core the user set is always kept. The variables below record the
/// choice in the environment, so that the re-executed process, and every cell runner it starts,
/// knows who chose what.
public enum BLASKernel {
    /// What OpenBLAS reads: the core to run.
    public static let coreTypeVariable = "OPENBLAS_CORETYPE"
    /// Set with `OPENBLAS_CORETYPE` when isosweep chose it: equal to it, unlike a user's choice.
    public static let chosenVariable = "ISOSWEEP_BLAS_CHOSEN"
    /// The core OpenBLAS ran by itself before isosweep's choice replaced it.
    public static let replacedVariable = "ISOSWEEP_BLAS_REPLACED"
    /// Why isosweep's choice was dropped (its self-check failed): no choice is made again.
    public static let fallbackVariable = "ISOSWEEP_BLAS_FALLBACK"
    /// Diagnostic: `corrupt` alters one element of a GEMM's output inside cell runners'
    /// self-check, so that it fails as on a broken kernel and the fallback can be seen (tests use it).
    public static let selfCheckVariable = "ISOSWEEP_BLAS_SELF_CHECK"

    /// The kernels OpenBLAS runs in this process, as it names them ("Prescott", "SkylakeX",
    /// "Cooperlake", "Haswell", ...).
    public static var loaded: String {
        openblas_get_corename().map { String(cString: $0).trimmingSpaces() } ?? "unknown"
    }

    /// How the loaded kernels came to run.
    public enum Provenance: Sendable, Equatable {
        /// OpenBLAS's own choice, and nothing better for this CPU (or a CPU isosweep cannot read).
        case openBLAS
        /// `OPENBLAS_CORETYPE` set by the user, kept as it is.
        case user(String)
        /// Chosen by isosweep for this CPU; OpenBLAS alone ran `replacing`.
        case isosweep(replacing: String)
        /// isosweep's choice failed its self-check (`reason`): OpenBLAS's own choice runs.
        case fallback(reason: String)

        /// One phrase for logs and the `blas` provenance of results.
        public var description: String {
            switch self {
            case .openBLAS: "OpenBLAS's own choice"
            case .user(let core): "OPENBLAS_CORETYPE=\(core) set by the user"
            case .isosweep(let replaced): "chosen by isosweep for this CPU; OpenBLAS alone runs \(replaced)"
            case .fallback(let reason): "OpenBLAS's own choice: \(reason)"
            }
        }
    }

    /// What a starting process does about its kernels.
    public enum Plan: Sendable, Equatable {
        /// Run what is loaded.
        case keep(Provenance)
        /// Run again with `OPENBLAS_CORETYPE=core`: the CPU allows better than `replacing`.
        case switchTo(core: String, replacing: String)
        /// isosweep's choice is loaded (the process was re-executed, or started by one that
        /// was): check it (`BLASSelfCheck`) before any result depends on it.
        case check(core: String, replacing: String)
        /// isosweep chose `core`, but this OpenBLAS ran `loaded` instead (it has no such kernels):
        /// run again without the choice.
        case unavailable(core: String, loaded: String)
    }

    /// The decision for a process started with `environment` and `loaded` kernels on a CPU with
    /// `features`. Pure, so that every case is tested without starting processes.
    public static func plan(environment: [String: String], loaded: String, features: CPUFeatures) -> Plan {
        if let reason = environment[fallbackVariable] { return .keep(.fallback(reason: reason)) }
        let chosen = environment[chosenVariable]
        if let requested = environment[coreTypeVariable] {
            guard requested == chosen else { return .keep(.user(requested)) }
            let replaced = environment[replacedVariable] ?? "unknown"
            guard loaded.lowercased() == requested.lowercased() else {
                return .unavailable(core: requested, loaded: loaded)
            }
            return .check(core: requested, replacing: replaced)
        }
        guard let best = best(for: features), tier(of: best) > tier(of: loaded) else { return .keep(.openBLAS) }
        return .switchTo(core: best, replacing: loaded)
    }

    /// How this process's kernels came to run, read from its environment (after `plan` ran).
    public static func provenance(environment: [String: String], loaded: String) -> Provenance {
        if let reason = environment[fallbackVariable] { return .fallback(reason: reason) }
        if let requested = environment[coreTypeVariable] {
            guard requested == environment[chosenVariable], requested.lowercased() == loaded.lowercased() else {
                return .user(requested)
            }
            return .isosweep(replacing: environment[replacedVariable] ?? "unknown")
        }
        return .openBLAS
    }

    /// The best OpenBLAS core for a CPU's features: AVX-512 F/BW/DQ/VL with BF16 -> Cooperlake,
    /// without -> SkylakeX; AVX2 + FMA -> Haswell (Zen on AMD); AVX -> Sandybridge; else nil
    /// (OpenBLAS's choice stands). Each needs the operating system to save the registers.
    public static func best(for cpu: CPUFeatures) -> String? {
        if cpu.avx512 { return cpu.avx512BF16 ? "Cooperlake" : "SkylakeX" }
        if cpu.avx2 && cpu.fma { return cpu.vendor == .amd ? "Zen" : "Haswell" }
        if cpu.avx { return "Sandybridge" }
        return nil
    }

    /// The instruction level of an OpenBLAS core: 0 for the SSE cores, 1 AVX, 2 AVX2 + FMA,
    /// 3 and up AVX-512. A name not listed is taken as newer than everything here, so that
    /// isosweep never replaces kernels it does not know.
    public static func tier(of core: String) -> Int {
        switch core.lowercased() {
        case "sapphirerapids": 5
        case "cooperlake": 4
        case "skylakex": 3
        case "haswell", "zen", "excavator": 2
        case "sandybridge", "bulldozer", "piledriver", "steamroller": 1
        case "prescott", "katmai", "coppermine", "northwood", "core2", "penryn", "dunnington", "nehalem", "atom",
            "opteron", "opteron_sse3", "barcelona", "bobcat", "nano", "generic", "unknown":
            0
        default: .max
        }
    }
}

/// The CPU features that decide which OpenBLAS kernels can run, from CPUID and XCR0 (x86-64; on
/// other CPUs every feature reads false and OpenBLAS's own choice stands).
public struct CPUFeatures: Sendable, Equatable {
    public enum Vendor: Sendable, Equatable { case intel, amd, other }

    public var vendor: Vendor
    /// AVX with its registers saved by the operating system.
    public var avx: Bool
    public var avx2: Bool
    public var fma: Bool
    /// AVX-512 F, BW, DQ and VL, with the operating system saving their registers.
    public var avx512: Bool
    public var avx512BF16: Bool

    public init(
        vendor: Vendor = .other,
        avx: Bool = false,
        avx2: Bool = false,
        fma: Bool = false,
        avx512: Bool = false,
        avx512BF16: Bool = false
    ) {
        self.vendor = vendor
        self.avx = avx
        self.avx2 = avx2
        self.fma = fma
        self.avx512 = avx512
        self.avx512BF16 = avx512BF16
    }

    /// This machine's CPU.
    public static var current: CPUFeatures {
        func cpuid(_ leaf: UInt32, _ subleaf: UInt32 = 0) -> [UInt32] {
            var registers: [UInt32] = [0, 0, 0, 0]
            guard isosweep_cpuid(leaf, subleaf, &registers) != 0 else { return [0, 0, 0, 0] }
            return registers
        }
        func bit(_ value: UInt32, _ index: UInt32) -> Bool { value >> index & 1 == 1 }
        let leaf0 = cpuid(0)
        // The vendor string is EBX, EDX, ECX: "GenuineIntel", "AuthenticAMD", "HygonGenuine".
        let vendorBytes = [leaf0[1], leaf0[3], leaf0[2]].flatMap { word in
            (0..<4).map { UInt8(word >> ($0 * 8) & 0xFF) }
        }
        let vendorName = String(decoding: vendorBytes, as: UTF8.self)
        let vendor: Vendor =
            vendorName == "GenuineIntel"
            ? .intel : (["AuthenticAMD", "HygonGenuine"].contains(vendorName) ? .amd : .other)
        let leaf1 = cpuid(1)
        let osSaves = bit(leaf1[2], 27)
        let xcr0 = osSaves ? isosweep_xcr0() : 0
        let avxState = xcr0 & 0x6 == 0x6
        let avx512State = avxState && xcr0 & 0xE0 == 0xE0
        let maximumLeaf = leaf0[0]
        let leaf7 = maximumLeaf >= 7 ? cpuid(7) : [0, 0, 0, 0]
        let leaf7s1 = maximumLeaf >= 7 && leaf7[0] >= 1 ? cpuid(7, 1) : [0, 0, 0, 0]
        let avx = avxState && bit(leaf1[2], 28)
        let avx512 = avx512State && [16, 17, 30, 31].allSatisfy { bit(leaf7[1], $0) }
        return CPUFeatures(
            vendor: vendor,
            avx: avx,
            avx2: avx && bit(leaf7[1], 5),
            fma: avx && bit(leaf1[2], 12),
            avx512: avx512,
            avx512BF16: avx512 && bit(leaf7s1[0], 5)
        )
    }

    /// "AVX-512 with BF16", "AVX2 and FMA", ... for logs.
    public var summary: String {
        if avx512 { return avx512BF16 ? "AVX-512 with BF16" : "AVX-512" }
        if avx2 && fma { return "AVX2 and FMA" }
        return avx ? "AVX" : "no AVX"
    }
}
