import CPosix
import Diagnostics
import Foundation
import SweepCore
import Synchronization
import TrainingCore

/// The cell-runner process (`isosweep runner`, started by a worker, never by hand): runs one cell
/// at a time for its worker, read from fd 3, and writes each outcome to fd 4, until the worker
/// closes the channel. A crash, an out-of-memory kill or a hang here costs the worker one attempt
/// of one cell, never itself or its other cells.
public enum CellRunner {
    /// Serves cells until the channel closes; returns the process's exit status.
    public static func serve() -> Int32 {
        // Writing to a worker that went away must end this process quietly, not kill it with SIGPIPE
        // halfway through a write: the write fails and the loop ends.
        signal(SIGPIPE, SIG_IGN)
        // The worker decides when a cell stops: a Ctrl-C or a SIGTERM sent to the whole process
        // group (a terminal, systemd) must let the worker's grace period run, not kill the cell.
        // A SIGTERM (from the group, or from the worker when it stops) asks the running cell for
        // a checkpoint instead.
        signal(SIGINT, SIG_IGN)
        if isosweep_catch_sigterm() != 0 { signal(SIGTERM, SIG_IGN) }
        // A worker killed with SIGKILL cannot stop its runners: each notices that its parent is
        // gone (it is re-parented) within a second and ends, even in the middle of a cell.
        let parent = getppid()
        let watcher = Thread {
            while getppid() == parent { sleep(1) }
            _exit(0)
        }
        watcher.name = "isosweep-runner-parent-watch"
        watcher.start()
        let reporter = ProgressReporter()
        reporter.start()
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let decoder = JSONDecoder()
        var jobs = RunnerChannel.Reader(RunnerChannel.runnerInput)
        while true {
            var read = jobs.next(until: nil)
            switch read {
            case .frame(.job(var job)):
                // The frame's copy of the job (and of the checkpoint it resumes from) is not kept
                // through the cell: its memory estimate does not count it.
                read = .endOfFile
                if Int(job.threads) != BLAS.threads { BLAS.setThreads(Int(job.threads)) }
                // A fresh start, so that no report of the previous cell goes out under this one.
                // (A SIGTERM that came since the last cell is kept: the worker may have sent it
                // for this one before the runner read the job.)
                reporter.progress.reset(maxSteps: 0)
                reporter.running.store(true, ordering: .sequentiallyConsistent)
                let (ok, payload) = run(&job, reporter: reporter, encoder: encoder, decoder: decoder)
                // Give freed heap back to the system before the outcome goes out, so that the
                // worker sees the runner's baseline before its next cell (no-op cells have none).
                if !CellWork.isNoop(job.work) { trimHeap() }
                let done = RunnerChannel.Done(ok: ok, payload: payload)
                do {
                    try reporter.writing {
                        $0.running.store(false, ordering: .sequentiallyConsistent)
                        try RunnerChannel.write(.done(done), to: RunnerChannel.runnerOutput)
                    }
                } catch {
                    return 1
                }
            case .endOfFile:
                return 0
            case .frame(.done), .frame(.progress), .frame(.checkpoint), .timedOut, .failed:
                FileHandle.standardError.write(Data("isosweep runner: the worker's channel is broken; exiting\n".utf8))
                return 1
            }
        }
    }

    /// The checkpoint `job` resumes from, taken out of it (its bytes are freed on return),
    /// decoded and checked against the cell; nil, said on standard error, for one that is
    /// damaged or of another cell: the cell then starts from step 0.
    static func resumeCheckpoint(
        taking job: inout RunnerChannel.Job,
        for parameters: CellParameters
    )
        -> TrainingCheckpoint?
    {
        guard !job.resume.isEmpty else { return nil }
        let bytes = job.resume
        job.resume = []
        do {
            let checkpoint = try TrainingCheckpoint(
                decoding: bytes,
                name: "the checkpoint of cell \(job.key.prefix(12))"
            )
            try checkpoint.check(for: parameters)
            if checkpoint.threads != Int(job.threads) || checkpoint.blasCore != BLAS.core {
                // It resumes all the same: the result is then bit for bit neither run's.
                let note = """
                    isosweep runner: cell \(job.key.prefix(12)) resumes a checkpoint computed with \(checkpoint.threads) BLAS \
                    threads and \(checkpoint.blasCore) kernels on \(job.threads) and \(BLAS.core)

                    """
                FileHandle.standardError.write(Data(note.utf8))
            }
            return checkpoint
        } catch {
            FileHandle.standardError.write(Data("isosweep runner: \(error); starting from step 0\n".utf8))
            return nil
        }
    }

    /// Trains and measures a study cell, resumed and checkpointed as its job says.
    static func train(
        _ parameters: CellParameters,
        job: inout RunnerChannel.Job,
        timeLimit: Duration?,
        reporter: ProgressReporter?
    ) throws(IsosweepError) -> CellResult {
        let checkpoint = resumeCheckpoint(taking: &job, for: parameters)
        let progress = reporter?.progress
        let every = job.checkpointEveryMilliseconds
        let options = reporter.map { reporter in
            CheckpointOptions(
                interval: every > 0 ? .milliseconds(Int64(clamping: every)) : nil,
                requested: { isosweep_take_sigterm() != 0 },
                save: { checkpoint in reporter.send(checkpoint) }
            )
        }
        return try Cell.run(
            parameters,
            threads: Int(job.threads),
            timeLimit: timeLimit,
            progress: progress,
            resume: checkpoint,
            checkpoints: options,
            // Polled between steps and search iterations: each poll is progress.
            shouldStop: {
                progress?.tick()
                return false
            }
        ).result
    }

    /// glibc's malloc_trim(0), found at run time (Swift does not import this GNU extension).
    static func trimHeap() {
        typealias Trim = @convention(c) (Int) -> Int32
        guard let symbol = dlsym(dlopen(nil, RTLD_NOW), "malloc_trim") else { return }
        _ = unsafeBitCast(symbol, to: Trim.self)(0)
    }

    /// Runs one cell: its result JSON (a study cell's with the peak RSS it reached; no-op cells
    /// are not measured, reading /proc would be most of their cost), or the error's text. A study
    /// cell resumes from `resume` (a checkpoint; a damaged one, or another cell's, is set aside
    /// and the cell starts from step 0) and saves checkpoints to the worker as its job says.
    static func run(
        _ job: inout RunnerChannel.Job,
        reporter: ProgressReporter? = nil,
        encoder: JSONEncoder,
        decoder: JSONDecoder
    ) -> (ok: Bool, payload: [UInt8]) {
        do {
            guard let work = CellWork(json: job.work, decoder: decoder) else {
                let text = String(decoding: job.work.prefix(200), as: UTF8.self)
                throw IsosweepError(.malformedMessage, "the cell's work is not cell work JSON: \(text)")
            }
            switch work {
            case .train(let parameters):
                ProcessMemory.resetPeak()
                let limit =
                    job.timeLimitMilliseconds > 0 ? Duration.milliseconds(Int64(job.timeLimitMilliseconds)) : nil
                var result = try train(parameters, job: &job, timeLimit: limit, reporter: reporter)
                result.metrics.peakRSSBytes = ProcessMemory.peakBytes
                return (true, Array(try encoder.encode(result)))
            case .diagnostic(let cell):
                switch cell.behaviour {
                case .succeed:
                    return (true, [])
                case .fail:
                    throw IsosweepError(.invalidParameter, "this diagnostic cell always fails (test cell)")
                case .crash:
                    // It takes its runner down, as a real crash would.
                    abort()
                case .hog:
                    // Far more than its allowance: its worker must stop it. Every page is
                    // touched, so that it is resident.
                    let bytes = DiagnosticCell.hogBytes
                    let block = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 4096)
                    for offset in stride(from: 0, to: bytes, by: 4096) {
                        block.storeBytes(of: 1, toByteOffset: offset, as: UInt8.self)
                    }
                    while true { sleep(3600) }
                case .hang:
                    // It ignores its time limit: only a kill ends it.
                    while true { sleep(3600) }
                }
            }
        } catch let error as IsosweepError {
            return (false, Array(error.description.utf8))
        } catch {
            return (false, Array("cannot run the cell: \(error)".utf8))
        }
    }
}

/// Reports the running cell's progress to the worker about once a second, on its own thread, so
/// that a long step or a long Lipschitz search does not silence it. Its frames and the cell's
/// outcome share fd 4, so each write holds a lock, and no progress follows an outcome.
final class ProgressReporter: Sendable {
    let progress = CellProgress()
    /// A cell is running (set before it starts; cleared, under the lock, with its outcome).
    let running = Atomic<Bool>(false)
    private let lock = Mutex(())
    static let interval = 1.0

    /// Runs `body` holding the channel's write lock.
    func writing<T>(_ body: (ProgressReporter) throws -> T) rethrows -> T {
        try lock.withLock { _ in try body(self) }
    }

    /// Sends a checkpoint of the running cell to the worker (on the computing thread, which
    /// waits for it: the worker reads it at once). A checkpoint that cannot be encoded or sent is
    /// reported and skipped: the cell goes on.
    func send(_ checkpoint: TrainingCheckpoint) {
        do {
            let bytes = try checkpoint.encoded()
            guard UInt64(bytes.count) <= Wire.maximumCheckpointBytes else {
                throw IsosweepError(
                    .worker,
                    "a checkpoint of \(bytes.count) bytes exceeds the \(Wire.maximumCheckpointBytes) a worker accepts"
                )
            }
            try writing { reporter in
                guard reporter.running.load(ordering: .sequentiallyConsistent) else { return }
                try RunnerChannel.writeCheckpoint(
                    step: UInt64(checkpoint.step),
                    bytes,
                    to: RunnerChannel.runnerOutput
                )
            }
            progress.tick()
        } catch {
            FileHandle.standardError.write(Data("isosweep runner: cannot send a checkpoint: \(error)\n".utf8))
        }
    }

    func start() {
        let thread = Thread { [self] in
            while true {
                Thread.sleep(forTimeInterval: Self.interval)
                let failed = writing { reporter -> Bool in
                    guard reporter.running.load(ordering: .sequentiallyConsistent) else { return false }
                    let now = reporter.progress.snapshot
                    let frame = RunnerChannel.Progress(
                        phase: now.phase.rawValue,
                        step: UInt32(clamping: now.step),
                        maxSteps: UInt32(clamping: now.maxSteps),
                        trainMSE: now.trainMSE ?? .nan,
                        work: now.work
                    )
                    return (try? RunnerChannel.write(.progress(frame), to: RunnerChannel.runnerOutput)) == nil
                }
                // The worker is gone; the main loop notices it too.
                if failed { return }
            }
        }
        thread.name = "isosweep-runner-progress"
        thread.start()
    }
}

/// The resident memory of this process, from /proc/self (Linux).
public enum ProcessMemory {
    /// Restarts the peak-RSS count (VmHWM) at the current RSS, so that each cell of a reused runner
    /// reports its own peak. Where the kernel refuses it, the peak stays the process's lifetime
    /// peak: still never below the cell's.
    public static func resetPeak() {
        let fd = open("/proc/self/clear_refs", O_WRONLY)
        guard fd >= 0 else { return }
        _ = "5".withCString { write(fd, $0, 1) }
        close(fd)
    }

    /// The peak resident set (VmHWM) in bytes, or nil where /proc cannot tell.
    public static var peakBytes: Int? {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return nil }
        for line in status.split(separator: "\n") where line.hasPrefix("VmHWM:") {
            let kilobytes = line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first.flatMap {
                Int($0)
            }
            return kilobytes.map { $0 * 1024 }
        }
        return nil
    }
}
