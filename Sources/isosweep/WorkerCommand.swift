import ArgumentParser
import CommandSupport
import Foundation
import Logging
import ServiceLifecycle
import SweepCore
import TrainingCore
import UnixSignals
import Worker
import ZeroMQ

/// `isosweep worker`: a worker daemon.
struct WorkerCommand: AsyncParsableCommand, RunsBLAS {
    static let configuration = CommandConfiguration(
        commandName: "worker",
        abstract: "Run cells for a coordinator; reconnects by itself, SIGTERM hands back its cells."
    )

    @Option(help: "The coordinator's endpoint.") var connect: String
    @Option(
        help:
            "Cores its cells may use together (default: the CPUs this process may use, after affinity and cgroup limits)."
    )
    var cores: Int?
    @Option(
        help:
            "Memory its cells may use together, e.g. 12GiB (default: the cgroup limit or physical memory, less 10% kept back, 512 MiB to 4 GiB)."
    )
    var memory: String?
    @Option(help: "Most cells run at once (default: --cores).") var slots: Int?
    @Option(help: "Extra cells kept queued (default: one per slot).") var prefetch: Int?
    @Option(help: "OpenBLAS threads of a cell that comes without a thread count (benchmark cells).") var threads = 1
    @Option(help: "On SIGTERM, seconds running cells may take before they are handed back.") var grace: Double = 10
    @Option(help: "This worker's CURVE secret key file (isosweep keygen).") var curveSecret: String?
    @Option(help: "The coordinator's CURVE public key file.") var serverKey: String?
    @Flag(help: "Allow plain TCP to a coordinator off loopback.") var insecure = false
    @OptionGroup var log: LogOptions

    func validate() throws {
        guard connect.hasPrefix("tcp://") || connect.hasPrefix("ipc://") else {
            throw ValidationError(
                "--connect takes a ZeroMQ endpoint such as tcp://coordinator-host:5555 (got \(connect))"
            )
        }
        if let slots, !(1...4096).contains(slots) { throw ValidationError("--slots must be between 1 and 4096") }
        if let cores, !(1...4096).contains(cores) { throw ValidationError("--cores must be between 1 and 4096") }
        if let memory {
            guard let bytes = Units.parseSize(memory), bytes >= Wire.minimumWorkerMemory else {
                throw ValidationError(
                    "--memory takes a size of at least 1MiB such as 512MiB, 12GiB or 2.5GB (got \(memory))"
                )
            }
        }
        if let prefetch, !(0...100_000).contains(prefetch) {
            throw ValidationError("--prefetch must be between 0 and 100000")
        }
        guard (1...256).contains(threads) else { throw ValidationError("--threads must be between 1 and 256") }
        guard grace >= 0 else { throw ValidationError("--grace must be non-negative") }
        if (curveSecret == nil) != (serverKey == nil) {
            throw ValidationError(
                "--curve-secret and --server-key go together: this worker's key pair and the coordinator's public key"
            )
        }
    }

    func run() async throws {
        let logger = log.bootstrap(label: "isosweep.worker")
        let cores = cores ?? MachineResources.cores()
        var options = WorkerOptions(connect: connect, slots: slots ?? cores, prefetch: prefetch)
        options.cores = cores
        if let memory, let bytes = Units.parseSize(memory) { options.memoryBytes = bytes }
        options.blasThreads = threads
        options.grace = .milliseconds(Int64(grace * 1000))
        if let curveSecret, let serverKey {
            options.security = .curve(
                try KeyFiles.readSecret(curveSecret),
                serverKey: try KeyFiles.readPublic(serverKey)
            )
        } else {
            options.security = .plaintext(insecure: insecure)
        }
        let engine = try WorkerEngine(options: options, logger: logger)
        if case .plaintext(true) = options.security, !Endpoint.isLocal(connect) {
            logger.warning(
                "INSECURE: plain TCP to \(connect): traffic is readable and anyone can pose as the coordinator"
            )
        }
        logger.info(
            "worker starting",
            metadata: [
                "id": "\(options.workerID)", "slots": "\(options.slots)", "cores": "\(options.cores)",
                "memory": "\(Units.formatSize(options.memoryBytes))", "coordinator": "\(connect)",
                "blas_core": "\(options.blasCore) (\(BLAS.coreProvenance.description))",
            ]
        )
        let group = ServiceGroup(
            configuration: ServiceGroupConfiguration(
                services: [WorkerService(engine: engine)],
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger
            )
        )
        try await group.run()
    }
}
