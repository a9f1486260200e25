import Foundation
import TrainingCore
import Worker

/// A command that runs BLAS in its own process, or starts the cell runners that do: before it
/// runs, its process gets the OpenBLAS kernels this CPU allows (`BLASSetup.prepare`).
public protocol RunsBLAS {
    /// Whether this is a cell runner, which says nothing unless it falls back (its worker reports
    /// the kernels) and whose self-check `ISOSWEEP_BLAS_SELF_CHECK=corrupt` makes fail.
    static var isCellRunner: Bool { get }
}

extension RunsBLAS {
    public static var isCellRunner: Bool { false }
}

/// Puts `BLASKernel.plan` into effect for this process: runs itself again with better kernels,
/// checks kernels isosweep chose (`BLASSelfCheck`) and falls back to OpenBLAS's own choice if
/// they fail. A user's `OPENBLAS_CORETYPE` is kept, and said so.
public enum BLASSetup {
    /// Decides and, where needed, re-executes this process (then it does not return).
    public static func prepare(cellRunner: Bool) {
        let environment = ProcessInfo.processInfo.environment
        let loaded = BLASKernel.loaded
        let cpu = CPUFeatures.current
        switch BLASKernel.plan(environment: environment, loaded: loaded, features: cpu) {
        case .keep(.user(let core)):
            if !cellRunner, let best = BLASKernel.best(for: cpu), best.lowercased() != core.lowercased() {
                note(
                    "OPENBLAS_CORETYPE=\(core) is set: isosweep keeps it (OpenBLAS runs \(loaded); this CPU, with \(cpu.summary), allows \(best))"
                )
            }
        case .keep:
            break
        case .switchTo(let core, let replacing):
            var changed = environment
            changed[BLASKernel.coreTypeVariable] = core
            changed[BLASKernel.chosenVariable] = core
            changed[BLASKernel.replacedVariable] = replacing
            reexecute(with: changed)
            // Only reached if exec failed: what is loaded still works.
            note("cannot run again with the \(core) kernels (\(String(cString: strerror(errno)))): running \(loaded)")
        case .check(let core, _):
            let corrupt = cellRunner && environment[BLASKernel.selfCheckVariable] == "corrupt"
            if let mismatch = BLASSelfCheck.run(threadCounts: [1, 2], corrupt: corrupt) {
                fallBack(environment, reason: "isosweep's choice \(core) failed its self-check (\(mismatch))")
            }
        case .unavailable(let core, let loadedInstead):
            fallBack(
                environment,
                reason: "isosweep chose \(core), which this OpenBLAS does not have (it ran \(loadedInstead))"
            )
        }
    }

    /// Runs again without isosweep's choice, recording why (`ISOSWEEP_BLAS_FALLBACK`), so that
    /// this process and the runners it starts keep OpenBLAS's own kernels.
    private static func fallBack(_ environment: [String: String], reason: String) {
        note("\(reason): running OpenBLAS's own choice instead")
        var changed = environment
        changed[BLASKernel.coreTypeVariable] = nil
        changed[BLASKernel.chosenVariable] = nil
        changed[BLASKernel.replacedVariable] = nil
        changed[BLASKernel.fallbackVariable] = reason
        reexecute(with: changed)
        note("cannot run again without the chosen kernels (\(String(cString: strerror(errno)))); stopping")
        exit(70)
    }

    /// execve of this same executable with the same arguments and `environment`. File
    /// descriptors stay open (a cell runner's channel is on 3 and 4) and the process keeps its id.
    private static func reexecute(with environment: [String: String]) {
        let path = OwnExecutable.path
        let arguments = [path] + CommandLine.arguments.dropFirst()
        var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        var envp: [UnsafeMutablePointer<CChar>?] = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            for pointer in argv { free(pointer) }
            for pointer in envp { free(pointer) }
        }
        // Whatever stdio buffered must not be written twice.
        fflush(nil)
        execve(path, &argv, &envp)
    }

    private static func note(_ message: String) {
        FileHandle.standardError.write(Data("isosweep: BLAS kernels: \(message)\n".utf8))
    }
}
