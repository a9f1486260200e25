public import Diagnostics
import Foundation
import Synchronization

/// A cell's training state at a step boundary: everything its remaining steps depend on, so that
/// a run resumed from it (at the same thread count and kernels) ends bit for bit where an
/// uninterrupted run would. Saved as safetensors (`encoded()`), the arrays as F32 tensors and the
/// scalars as metadata (floating-point values by their bit patterns).
///
/// Data, labels, the initial network and smoothing's fresh points are not saved: they are drawn
/// again from the cell's seed. The Lipschitz phase is not saved either: a checkpoint taken during
/// it holds the trained network (`Stage.measuring`), and the phase runs again from its start.
public struct TrainingCheckpoint: Sendable, Equatable {
    /// Where training stood.
    public enum Stage: String, Sendable {
        /// Training to target_mse (and extra steps).
        case fitting
        /// smooth_after_fit's smoothing steps.
        case smoothing
        /// Training is over; the network is being measured.
        case measuring
    }

    /// The fitting trainer's loop state (`Trainer.iterate`).
    struct Fitting: Equatable, Sendable {
        var parameters: [Float]
        var optimizer: Optimizer<Float>.State
        /// The step at which target_mse was first reached, during extra steps.
        var extraStart: Int?
        /// The last network that fitted, during extra steps.
        var lastFit: [Float]
    }

    /// What fitting ended with, once it is over.
    struct FitOutcome: Equatable, Sendable {
        var parameters: [Float]
        var steps: Int
        var stopReason: StopReason
        var flops: Double
        var finalMSE: Double?
    }

    /// The smoothing loop's state (`SmoothingSession.smooth`).
    struct Smoothing: Equatable, Sendable {
        var parameters: [Float]
        var optimizer: Optimizer<Float>.State
        /// The steepest points as the last refresh left them (rows of d).
        var worst: [Float]
        var rng: [UInt64]
        var multiplier: Double
        var lastMSE: Double
        var violation: Double
        var taken: Int
        var best: (penalty: Double, parameters: [Float])?
        var flops: Double

        static func == (a: Smoothing, b: Smoothing) -> Bool {
            a.parameters == b.parameters && a.optimizer == b.optimizer && a.worst == b.worst && a.rng == b.rng
                && a.multiplier.bitPattern == b.multiplier.bitPattern && a.lastMSE.bitPattern == b.lastMSE.bitPattern
                && a.violation.bitPattern == b.violation.bitPattern && a.taken == b.taken
                && a.best?.penalty.bitPattern == b.best?.penalty.bitPattern && a.best?.parameters == b.best?.parameters
                && a.flops.bitPattern == b.flops.bitPattern
        }
    }

    /// Training's outcome, once it is over (`Stage.measuring`).
    struct Trained: Equatable, Sendable {
        var parameters: [Float]
        var steps: Int
        var stopReason: StopReason
        var flops: Double
        var smoothing: SmoothingRecord?
    }

    /// Where training stood.
    public internal(set) var stage: Stage
    /// Training steps taken (fitting and smoothing): what a resumed result reports as
    /// `resumed_from_step`.
    public internal(set) var step: Int
    /// Seconds spent training before this checkpoint, over every attempt.
    public internal(set) var trainSeconds: Double
    /// The resolved parameters of the cell, as JSON: a checkpoint resumes only its own cell.
    public internal(set) var cell: String
    /// The BLAS threads and kernels it was computed with (a run resumed on others goes on, but
    /// is then bit for bit neither run).
    public internal(set) var threads = 0
    public internal(set) var blasCore = ""
    var fitting: Fitting?
    var fitOutcome: FitOutcome?
    var smoothing: Smoothing?
    var trained: Trained?
}

extension TrainingCheckpoint {
    /// The format's name in the file's metadata.
    static let formatName = "isosweep-checkpoint-v1"

    /// The cell's resolved parameters as the checkpoint names them.
    static func cellText(_ parameters: CellParameters) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let data = (try? encoder.encode(parameters.resolved())) ?? Data()
        return String(decoding: data, as: UTF8.self)
    }

    /// The checkpoint as a safetensors file.
    public func encoded() throws(IsosweepError) -> [UInt8] {
        var tensors: [String: Float32Tensor] = [:]
        var meta: [String: String] = [
            "format": Self.formatName, "science_version": String(scienceVersion), "stage": stage.rawValue,
            "step": String(step), "train_seconds": Self.bits(trainSeconds), "cell": cell,
            "threads": String(threads), "blas_core": blasCore,
        ]
        if let fitting {
            tensors["fitting.parameters"] = Float32Tensor(fitting.parameters)
            tensors["fitting.last_fit"] = Float32Tensor(fitting.lastFit)
            Self.put(fitting.optimizer, "fitting.optimizer", &tensors, &meta)
            meta["fitting.extra_start"] = fitting.extraStart.map(String.init) ?? ""
        }
        if let fit = fitOutcome {
            tensors["fit.parameters"] = Float32Tensor(fit.parameters)
            meta["fit.steps"] = String(fit.steps)
            meta["fit.stop_reason"] = fit.stopReason.rawValue
            meta["fit.flops"] = Self.bits(fit.flops)
            meta["fit.final_mse"] = fit.finalMSE.map(Self.bits) ?? ""
        }
        if let smoothing {
            tensors["smoothing.parameters"] = Float32Tensor(smoothing.parameters)
            tensors["smoothing.worst"] = Float32Tensor(smoothing.worst)
            Self.put(smoothing.optimizer, "smoothing.optimizer", &tensors, &meta)
            meta["smoothing.rng"] = smoothing.rng.map { String($0, radix: 16) }.joined(separator: ",")
            meta["smoothing.multiplier"] = Self.bits(smoothing.multiplier)
            meta["smoothing.last_mse"] = Self.bits(smoothing.lastMSE)
            meta["smoothing.violation"] = Self.bits(smoothing.violation)
            meta["smoothing.taken"] = String(smoothing.taken)
            meta["smoothing.flops"] = Self.bits(smoothing.flops)
            if let best = smoothing.best {
                tensors["smoothing.best"] = Float32Tensor(best.parameters)
                meta["smoothing.best_penalty"] = Self.bits(best.penalty)
            }
        }
        if let trained {
            tensors["trained.parameters"] = Float32Tensor(trained.parameters)
            meta["trained.steps"] = String(trained.steps)
            meta["trained.stop_reason"] = trained.stopReason.rawValue
            meta["trained.flops"] = Self.bits(trained.flops)
            if let record = trained.smoothing {
                meta["trained.smoothing_steps"] = String(record.steps)
                meta["trained.fit_held"] = record.fitHeld ? "1" : "0"
            }
        }
        return try SafeTensors.encodeFloat32(tensors, metadata: meta)
    }

    /// Reads a checkpoint written by `encoded()`; `name` names it in errors.
    public init(decoding bytes: [UInt8], name: String = "the checkpoint") throws(IsosweepError) {
        let (tensors, meta) = try SafeTensors.decodeFloat32(bytes, name: name)
        let reader = CheckpointReader(tensors: tensors, meta: meta, name: name)
        guard meta["format"] == Self.formatName else {
            throw reader.bad("it is not an isosweep checkpoint (format \(meta["format"] ?? "none"))")
        }
        guard meta["science_version"] == String(scienceVersion) else {
            throw reader.bad(
                "it was written by science version \(meta["science_version"] ?? "?"), this isosweep computes \(scienceVersion)"
            )
        }
        guard let stage = Stage(rawValue: meta["stage"] ?? "") else { throw reader.bad("its stage is unknown") }
        self.stage = stage
        step = try reader.int("step")
        trainSeconds = try reader.double("train_seconds")
        cell = meta["cell"] ?? ""
        threads = Int(meta["threads"] ?? "") ?? 0
        blasCore = meta["blas_core"] ?? ""
        if tensors["fitting.parameters"] != nil {
            let extra = meta["fitting.extra_start"] ?? ""
            fitting = Fitting(
                parameters: try reader.tensor("fitting.parameters"),
                optimizer: try reader.optimizer("fitting.optimizer"),
                extraStart: extra.isEmpty ? nil : try reader.int("fitting.extra_start"),
                lastFit: try reader.tensor("fitting.last_fit")
            )
        }
        if tensors["fit.parameters"] != nil {
            fitOutcome = FitOutcome(
                parameters: try reader.tensor("fit.parameters"),
                steps: try reader.int("fit.steps"),
                stopReason: try reader.stopReason("fit.stop_reason"),
                flops: try reader.double("fit.flops"),
                finalMSE: (meta["fit.final_mse"] ?? "").isEmpty ? nil : try reader.double("fit.final_mse")
            )
        }
        if tensors["smoothing.parameters"] != nil {
            let rng = (meta["smoothing.rng"] ?? "").split(separator: ",").compactMap { UInt64($0, radix: 16) }
            guard rng.count == 4 else { throw reader.bad("its smoothing random stream is not 4 words") }
            let best: (Double, [Float])? =
                tensors["smoothing.best"] == nil
                ? nil : (try reader.double("smoothing.best_penalty"), try reader.tensor("smoothing.best"))
            smoothing = Smoothing(
                parameters: try reader.tensor("smoothing.parameters"),
                optimizer: try reader.optimizer("smoothing.optimizer"),
                worst: try reader.tensor("smoothing.worst"),
                rng: rng,
                multiplier: try reader.double("smoothing.multiplier"),
                lastMSE: try reader.double("smoothing.last_mse"),
                violation: try reader.double("smoothing.violation"),
                taken: try reader.int("smoothing.taken"),
                best: best.map { (penalty: $0.0, parameters: $0.1) },
                flops: try reader.double("smoothing.flops")
            )
        }
        if tensors["trained.parameters"] != nil {
            let smoothingSteps = meta["trained.smoothing_steps"]
            trained = Trained(
                parameters: try reader.tensor("trained.parameters"),
                steps: try reader.int("trained.steps"),
                stopReason: try reader.stopReason("trained.stop_reason"),
                flops: try reader.double("trained.flops"),
                smoothing: smoothingSteps == nil
                    ? nil
                    : SmoothingRecord(
                        steps: try reader.int("trained.smoothing_steps"),
                        fitHeld: meta["trained.fit_held"] == "1"
                    )
            )
        }
        let complete: Bool
        switch stage {
        case .fitting: complete = fitting != nil
        case .smoothing: complete = fitOutcome != nil && smoothing != nil
        case .measuring: complete = trained != nil
        }
        guard complete else { throw reader.bad("it lacks the state of its stage (\(stage.rawValue))") }
    }

    /// Checks that the checkpoint is of `parameters`' cell and that every array has the size
    /// that cell's network and trainer need (a damaged file that still parses must not reach the
    /// trainer); the error says what to do.
    public func check(for parameters: CellParameters) throws(IsosweepError) {
        func bad(_ why: String) -> IsosweepError {
            IsosweepError(
                .badFile,
                "the checkpoint \(why)",
                remedy: "delete the checkpoint; the cell then starts from step 0"
            )
        }
        let resolved = parameters.resolved()
        guard cell == Self.cellText(resolved) else {
            throw bad("is of another cell, not of \(Self.cellText(resolved))")
        }
        let p = resolved.parameterCount
        let moments = resolved.trainer == .adam ? p : 0
        func sized(_ values: [Float], _ count: Int, _ name: String) throws(IsosweepError) {
            guard values.count == count else { throw bad("holds \(values.count) values of \(name), not \(count)") }
        }
        func sized(_ state: Optimizer<Float>.State, _ name: String) throws(IsosweepError) {
            try sized(state.firstMoment, moments, "\(name)'s first moment")
            try sized(state.secondMoment, moments, "\(name)'s second moment")
        }
        if let fitting {
            try sized(fitting.parameters, p, "the network")
            try sized(fitting.optimizer, "the optimiser")
            if !fitting.lastFit.isEmpty { try sized(fitting.lastFit, p, "the last fitting network") }
        }
        if let fit = fitOutcome { try sized(fit.parameters, p, "the fitted network") }
        if let smoothing {
            try sized(smoothing.parameters, p, "the smoothed network")
            try sized(smoothing.optimizer, "the smoothing optimiser")
            try sized(smoothing.worst, SmoothingUnderFit.worstPoints * resolved.d, "the steepest points")
            if let best = smoothing.best { try sized(best.parameters, p, "the smoothest network") }
        }
        if let trained { try sized(trained.parameters, p, "the trained network") }
    }

    /// A double's exact bit pattern in hex.
    static func bits(_ value: Double) -> String { String(value.bitPattern, radix: 16) }

    private static func put(
        _ state: Optimizer<Float>.State,
        _ prefix: String,
        _ tensors: inout [String: Float32Tensor],
        _ meta: inout [String: String]
    ) {
        tensors["\(prefix).m"] = Float32Tensor(state.firstMoment)
        tensors["\(prefix).v"] = Float32Tensor(state.secondMoment)
        meta["\(prefix).steps"] = String(state.steps)
        meta["\(prefix).beta1_power"] = bits(state.beta1Power)
        meta["\(prefix).beta2_power"] = bits(state.beta2Power)
    }
}

/// Reads a checkpoint's fields, each missing or malformed one an error that names it.
private struct CheckpointReader {
    let tensors: [String: Float32Tensor]
    let meta: [String: String]
    let name: String

    func bad(_ why: String) -> IsosweepError {
        IsosweepError(
            .badFile,
            "\(name) cannot be resumed from: \(why)",
            remedy: "delete the checkpoint; the cell then starts from step 0"
        )
    }

    func int(_ key: String) throws(IsosweepError) -> Int {
        guard let text = meta[key], let value = Int(text), value >= 0 else {
            throw bad("\(key) is missing or not a count")
        }
        return value
    }

    func double(_ key: String) throws(IsosweepError) -> Double {
        guard let text = meta[key], let bits = UInt64(text, radix: 16) else {
            throw bad("\(key) is missing or malformed")
        }
        return Double(bitPattern: bits)
    }

    func stopReason(_ key: String) throws(IsosweepError) -> StopReason {
        guard let reason = StopReason(rawValue: meta[key] ?? "") else { throw bad("\(key) is not a stop reason") }
        return reason
    }

    func tensor(_ key: String) throws(IsosweepError) -> [Float] {
        guard let tensor = tensors[key] else { throw bad("tensor \(key) is missing") }
        return tensor.values
    }

    func optimizer(_ prefix: String) throws(IsosweepError) -> Optimizer<Float>.State {
        Optimizer<Float>.State(
            steps: try int("\(prefix).steps"),
            firstMoment: try tensor("\(prefix).m"),
            secondMoment: try tensor("\(prefix).v"),
            beta1Power: try double("\(prefix).beta1_power"),
            beta2Power: try double("\(prefix).beta2_power")
        )
    }
}

/// When and where a running cell saves its checkpoints: every `interval` of its run (counted from
/// its start or its last checkpoint) and whenever `requested` says so (its runner was handed a
/// SIGTERM), at the next step boundary.
public struct CheckpointOptions: Sendable {
    /// Time between checkpoints (nil: only when requested).
    public var interval: Duration?
    /// Polled at every step boundary; true asks for a checkpoint now (it should return true once
    /// per request).
    public var requested: @Sendable () -> Bool
    /// Takes each checkpoint as it is made (on the computing thread: the cell waits for it).
    public var save: @Sendable (TrainingCheckpoint) -> Void

    public init(
        interval: Duration?,
        requested: @escaping @Sendable () -> Bool = { false },
        save: @escaping @Sendable (TrainingCheckpoint) -> Void
    ) {
        self.interval = interval
        self.requested = requested
        self.save = save
    }

    /// Whether a checkpoint is due `now`, the last one taken at `last`: asked for, or its
    /// interval over. (Asks `requested` first and always: a request is taken once.)
    func isDue(since last: ContinuousClock.Instant, now: ContinuousClock.Instant = .now) -> Bool {
        requested() || interval.map { now - last >= $0 } ?? false
    }
}

/// A cell's checkpointing as it runs: decides at each step boundary whether one is due, and
/// carries what the stages before the current one left (their outcomes).
final class Checkpointer {
    let options: CheckpointOptions
    let cell: String
    /// Seconds trained in earlier attempts.
    let earlierSeconds: Double
    let started: ContinuousClock.Instant
    private var lastSaved: ContinuousClock.Instant
    /// When the last checkpoint was saved (the start, before any).
    var lastSavedAt: ContinuousClock.Instant { lastSaved }
    /// Fitting's outcome, once fitting is over (smoothing's checkpoints carry it).
    var fitOutcome: TrainingCheckpoint.FitOutcome?

    /// The cell's BLAS threads, recorded in its checkpoints.
    let threads: Int

    init(_ options: CheckpointOptions, cell: String, earlierSeconds: Double, threads: Int) {
        self.options = options
        self.threads = threads
        self.cell = cell
        self.earlierSeconds = earlierSeconds
        started = .now
        lastSaved = started
    }

    /// Saves the checkpoint `make` builds if one is due (its interval has passed, or one was
    /// requested); `make` runs only then.
    func poll(stage: TrainingCheckpoint.Stage, step: Int, _ make: (inout TrainingCheckpoint) -> Void) {
        guard options.isDue(since: lastSaved) else { return }
        save(stage: stage, step: step, make)
    }

    /// Saves a checkpoint now.
    func save(stage: TrainingCheckpoint.Stage, step: Int, _ make: (inout TrainingCheckpoint) -> Void) {
        var checkpoint = TrainingCheckpoint(
            stage: stage,
            step: step,
            trainSeconds: earlierSeconds + (ContinuousClock.now - started).seconds,
            cell: cell,
            threads: threads,
            blasCore: BLAS.core
        )
        checkpoint.fitOutcome = fitOutcome
        make(&checkpoint)
        options.save(checkpoint)
        lastSaved = .now
    }
}

// Checkpoints hold float32, the precision cells train in; the trainers are generic over the
// scalar, so their state crosses with these (no copy when the scalar is Float).
extension Array where Element: BLASScalar {
    /// The values as float32.
    var floats: [Float] { (self as? [Float]) ?? map { Float($0) } }

    /// Float32 values as this array's scalar.
    init(floats: [Float]) { self = (floats as? [Element]) ?? floats.map { Element($0) } }
}

extension Optimizer.State {
    /// The state with float32 moments.
    var floats: Optimizer<Float>.State {
        .init(
            steps: steps,
            firstMoment: firstMoment.floats,
            secondMoment: secondMoment.floats,
            beta1Power: beta1Power,
            beta2Power: beta2Power
        )
    }

    /// A saved float32 state in this optimiser's scalar.
    init(floats: Optimizer<Float>.State) {
        self.init(
            steps: floats.steps,
            firstMoment: [Scalar](floats: floats.firstMoment),
            secondMoment: [Scalar](floats: floats.secondMoment),
            beta1Power: floats.beta1Power,
            beta2Power: floats.beta2Power
        )
    }
}

/// A cell's checkpointing during its Lipschitz search: the trained network, saved when one is
/// due. Polled from the search's threads (through its `shouldStop`), so it takes a lock.
final class MeasuringCheckpoint: Sendable {
    private let options: CheckpointOptions
    private let trained: TrainingCheckpoint.Trained
    private let template: TrainingCheckpoint
    private let lastSaved: Mutex<ContinuousClock.Instant>

    init(_ checkpointer: Checkpointer, outcome: TrainingOutcome<Float>) {
        options = checkpointer.options
        trained = TrainingCheckpoint.Trained(
            parameters: outcome.network.parameters,
            steps: outcome.steps,
            stopReason: outcome.stopReason,
            flops: outcome.flops,
            smoothing: outcome.smoothing
        )
        template = TrainingCheckpoint(
            stage: .measuring,
            step: outcome.steps,
            trainSeconds: outcome.seconds,
            cell: checkpointer.cell,
            threads: checkpointer.threads,
            blasCore: BLAS.core
        )
        lastSaved = Mutex(checkpointer.lastSavedAt)
    }

    /// Saves the trained network if a checkpoint is due.
    func poll() {
        lastSaved.withLock { last in
            guard options.isDue(since: last) else { return }
            var checkpoint = template
            checkpoint.trained = trained
            options.save(checkpoint)
            last = .now
        }
    }
}

extension TrainingCheckpoint {
    /// A checkpoint as large as `cell`'s largest (the smoothing stage's, for a cell that smooths
    /// after its fit; the fitting stage's otherwise), filled with seeded values: what a
    /// benchmark times writing.
    public static func largest(for cell: CellParameters) -> TrainingCheckpoint {
        let p = cell.parameterCount
        var rng = SeededGenerator(seed: 1, stream: .testing)
        func vector(_ count: Int) -> [Float] { (0..<count).map { _ in Float(rng.nextUniform()) } }
        let adam = cell.trainer == .adam
        let optimizer = Optimizer<Float>.State(
            steps: 1000,
            firstMoment: adam ? vector(p) : [],
            secondMoment: adam ? vector(p) : [],
            beta1Power: 0.5,
            beta2Power: 0.5
        )
        var checkpoint = TrainingCheckpoint(
            stage: .fitting,
            step: 1000,
            trainSeconds: 1,
            cell: cellText(cell)
        )
        if (cell.smoothAfterFit ?? 0) > 0 {
            checkpoint.stage = .smoothing
            checkpoint.fitOutcome = FitOutcome(
                parameters: vector(p),
                steps: 1000,
                stopReason: .targetReached,
                flops: 1,
                finalMSE: 0.001
            )
            checkpoint.smoothing = Smoothing(
                parameters: vector(p),
                optimizer: optimizer,
                worst: vector(SmoothingUnderFit.worstPoints * cell.d),
                rng: [1, 2, 3, 4],
                multiplier: 1,
                lastMSE: 0.001,
                violation: 0,
                taken: 10,
                best: (penalty: 1, parameters: vector(p)),
                flops: 1
            )
        } else {
            checkpoint.fitting = Fitting(
                parameters: vector(p),
                optimizer: optimizer,
                extraStart: nil,
                lastFit: (cell.extraSteps ?? 0) > 0 ? vector(p) : []
            )
        }
        return checkpoint
    }
}
