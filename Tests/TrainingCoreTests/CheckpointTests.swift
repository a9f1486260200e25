import Diagnostics
import Foundation
import Synchronization
import Testing

@testable import TrainingCore

/// Checkpoints: a cell resumed from one ends exactly where the uninterrupted run ends (every
/// metric but the timings, and the trained network's bits), for every iterative trainer, from
/// smoothing and from the Lipschitz phase; the file round-trips; a checkpoint of another cell or
/// a damaged one is refused with a remedy.
@Suite struct CheckpointTests {
    /// Small Lipschitz search: the test is about training state, not the bounds' quality.
    static var search: LipschitzOptions {
        var options = LipschitzOptions()
        options.freshPoints = 200
        options.ascentStarts = 8
        options.ascentSteps = 20
        return options
    }

    /// A cell of each kind: adam, gd, adam with a gradient penalty (tanh), adam with weight decay
    /// and extra steps, and smooth_after_fit (checkpoints during fitting and during smoothing).
    static let cells: [(String, CellParameters)] = {
        var adam = CellParameters(n: 64, d: 8, width: 24, seed: 1, maxSteps: 150, targetMSE: 0)
        adam.nTest = 50
        var gd = adam
        gd.trainer = .gd
        var penalised = adam
        penalised.activation = .tanh
        penalised.gradPenalty = 0.01
        var decayed = adam
        decayed.weightDecay = 0.001
        decayed.targetMSE = 0.05
        decayed.maxSteps = 2000
        decayed.extraSteps = 60
        var smoothed = adam
        smoothed.maxSteps = 3000
        smoothed.targetMSE = 0.01
        smoothed.smoothAfterFit = 120
        return [
            ("adam", adam), ("gd", gd), ("penalised", penalised), ("weight decay", decayed), ("smoothing", smoothed),
        ]
    }()

    /// Runs `cell`, asking for a checkpoint at each poll whose index is in `at` (polls come at every
    /// step boundary, then during the Lipschitz search); returns the run and its checkpoints.
    static func run(
        _ cell: CellParameters,
        checkpointingAt at: Set<Int> = [],
        resume: TrainingCheckpoint? = nil
    ) throws -> (CellRun, [TrainingCheckpoint]) {
        let polls = Atomic<Int>(0)
        let saved = Mutex<[TrainingCheckpoint]>([])
        let options = CheckpointOptions(
            interval: nil,
            requested: { at.contains(polls.add(1, ordering: .relaxed).oldValue) },
            save: { checkpoint in saved.withLock { $0.append(checkpoint) } }
        )
        let run = try Cell.run(cell, lipschitz: search, resume: resume, checkpoints: options)
        return (run, saved.withLock { $0 })
    }

    @Test(arguments: cells)
    func aResumedCellEndsAsTheUninterruptedOne(_ name: String, _ cell: CellParameters) throws {
        let (whole, _) = try Self.run(cell)
        let steps = whole.result.metrics.steps
        #expect(steps > 20, "\(name): the cell must train for a while")
        // Early, half way, the last step; for smoothing also inside the smoothing steps.
        var at: Set<Int> = [3, steps / 2, steps]
        if let smoothing = whole.result.metrics.smoothingSteps { at.insert(steps - smoothing / 2) }
        let (checked, checkpoints) = try Self.run(cell, checkpointingAt: at)
        // Saving checkpoints changes nothing.
        #expect(checked.result.metrics.withoutTimings == whole.result.metrics.withoutTimings)
        #expect(checkpoints.count == at.count, "\(name): \(checkpoints.map(\.step))")
        if cell.smoothAfterFit != nil { #expect(checkpoints.contains { $0.stage == .smoothing }) }
        for checkpoint in checkpoints {
            // Through the file format, as a checkpoint travels.
            let bytes = try checkpoint.encoded()
            let decoded = try TrainingCheckpoint(decoding: bytes)
            #expect(decoded == checkpoint)
            let (resumed, _) = try Self.run(cell, resume: decoded)
            let metrics = resumed.result.metrics
            #expect(metrics.resumedFromStep == checkpoint.step)
            #expect(
                metrics.withoutTimings == whole.result.metrics.withoutTimings,
                "\(name) from step \(checkpoint.step)"
            )
            #expect(resumed.network.parameters == whole.network.parameters, "\(name) from step \(checkpoint.step)")
        }
    }

    /// A checkpoint taken during the Lipschitz search holds the trained network; the search runs
    /// again from its start and gives the same bounds.
    @Test func aResumeDuringTheLipschitzPhaseGivesTheSameBounds() throws {
        let cell = Self.cells[0].1
        let (whole, _) = try Self.run(cell)
        let steps = whole.result.metrics.steps
        // Polls 0...steps come from training; the rest from the search.
        let (_, checkpoints) = try Self.run(cell, checkpointingAt: [steps + 5])
        let checkpoint = try #require(checkpoints.first)
        #expect(checkpoint.stage == .measuring)
        #expect(checkpoint.step == steps)
        let (resumed, _) = try Self.run(cell, resume: try TrainingCheckpoint(decoding: try checkpoint.encoded()))
        #expect(resumed.result.metrics.withoutTimings == whole.result.metrics.withoutTimings)
        #expect(resumed.result.metrics.lipSupportLower == whole.result.metrics.lipSupportLower)
        #expect(resumed.network.parameters == whole.network.parameters)
    }

    /// An interval saves checkpoints as time passes; none is written before the first interval.
    @Test func anIntervalSavesAsTimePasses() throws {
        var cell = Self.cells[0].1
        cell.maxSteps = 400
        let saved = Mutex<[TrainingCheckpoint]>([])
        let none = Mutex<Int>(0)
        _ = try Cell.run(
            cell,
            lipschitz: Self.search,
            checkpoints: CheckpointOptions(interval: .seconds(3600), save: { _ in none.withLock { $0 += 1 } })
        )
        #expect(none.withLock { $0 } == 0)
        _ = try Cell.run(
            cell,
            lipschitz: Self.search,
            checkpoints: CheckpointOptions(interval: .zero, save: { c in saved.withLock { $0.append(c) } })
        )
        let steps = saved.withLock { $0.filter { $0.stage == .fitting }.map(\.step) }
        #expect(steps.count == 401, "one at every step boundary at interval 0: \(steps.count)")
        #expect(steps == steps.sorted())
    }

    /// A checkpoint resumes only its own cell, of this science version, intact; each refusal says
    /// what to do.
    @Test func aForeignOrDamagedCheckpointIsRefused() throws {
        let cell = Self.cells[0].1
        let (_, checkpoints) = try Self.run(cell, checkpointingAt: [10])
        let checkpoint = try #require(checkpoints.first)
        var other = cell
        other.seed = 2
        do {
            _ = try Self.run(other, resume: checkpoint)
            Issue.record("a checkpoint of another cell was accepted")
        } catch let error as IsosweepError {
            #expect(error.description.contains("another cell"))
            #expect(error.description.contains("delete the checkpoint"))
        }
        // A damaged file that still parses: an array of the wrong size never reaches the trainer.
        var short = checkpoint
        short.fitting?.parameters.removeLast()
        do {
            try TrainingCheckpoint(decoding: try short.encoded()).check(for: cell)
            Issue.record("a checkpoint with a short network was accepted")
        } catch {
            #expect(error.description.contains("values of the network"), "\(error)")
        }
        #expect(throws: IsosweepError.self) { _ = try Self.run(cell, resume: short) }
        var bytes = try checkpoint.encoded()
        bytes.removeLast(4)
        #expect(throws: IsosweepError.self) { try TrainingCheckpoint(decoding: bytes) }
        let network = try SafeTensors.encodeFloat32(["x": Float32Tensor([1, 2])], metadata: ["format": "other"])
        do {
            _ = try TrainingCheckpoint(decoding: network)
            Issue.record("a file of another format was accepted")
        } catch {
            #expect(error.description.contains("not an isosweep checkpoint"))
        }
    }

    /// The float32 writer and reader agree with the general ones, bit for bit.
    @Test func float32TensorsRoundTrip() throws {
        let values: [Float] = [
            0, -0.0, 1.5, .infinity, -.leastNonzeroMagnitude, .greatestFiniteMagnitude, Float(bitPattern: 0x0020_0000),
        ]
        let bytes = try SafeTensors.encodeFloat32(
            ["a": Float32Tensor(shape: [7], values: values), "b": Float32Tensor(shape: [1, 2], values: [4, 5])],
            metadata: ["k": "v"]
        )
        let general = try SafeTensors.encode(
            ["a": Tensor(shape: [7], float32: values), "b": Tensor(shape: [1, 2], float32: [4, 5])],
            metadata: ["k": "v"]
        )
        #expect(bytes == [UInt8](general))
        let decoded = try SafeTensors.decodeFloat32(bytes, name: "test")
        #expect(decoded.tensors["a"]!.values.map(\.bitPattern) == values.map(\.bitPattern))
        #expect(decoded.tensors["b"]!.shape == [1, 2])
        #expect(decoded.metadata == ["k": "v"])
    }
}
