import Diagnostics
import Foundation
import Testing
import TrainingCore

/// The safetensors reader and writer, against files written by Python's safetensors package.
@Suite struct SafeTensorsTests {
    func fixture(_ name: String) throws -> URL {
        try #require(Bundle.module.url(forResource: name, withExtension: nil, subdirectory: "Fixtures"))
    }

    func expected() throws -> [String: Any] {
        let data = try Data(contentsOf: try fixture("expected.json"))
        return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    @Test func trainedNetworkRoundTripsExactly() throws {
        let run = try Cell.run(CellParameters(n: 40, d: 6, width: 9, activation: .softplus, maxSteps: 100))
        let file = try SavedNetwork.encode(run.network, trainingData: run.trainingData, metadata: ["seed": "0"])
        let url = try temporaryDirectory().appendingPathComponent("net.safetensors")
        try file.write(to: url)
        let loaded = try SavedNetwork.load(path: url.path)
        #expect(loaded.network == run.network.converted(to: Double.self))
        #expect(loaded.network.converted(to: Float.self) == run.network)
        #expect(loaded.inputs == run.trainingData.inputs.converted(to: Double.self))
        #expect(loaded.labels == run.trainingData.labels.map(Double.init))
        #expect(loaded.metadata["activation"] == "softplus" && loaded.metadata["format"] == SavedNetwork.formatName)
        // The data section starts 8-byte aligned, as the Python package writes it.
        let headerLength = file.prefix(8).enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        #expect(headerLength % 8 == 0)
    }

    @Test func numpyWrittenFileGivesNumpysBounds() throws {
        let saved = try SavedNetwork.load(path: try fixture("numpy_tanh.safetensors").path)
        let values = try #require(try expected()["numpy_tanh"] as? [String: Any])
        #expect(saved.network.activation == .tanh && saved.network.width == 5 && saved.network.inputDimension == 6)
        #expect(saved.metadata["seed"] == "3")
        let inputs = try #require(saved.inputs)
        let outputs = saved.network.outputs(inputs.rows(0..<3))
        for (mine, theirs) in zip(outputs, try #require(values["outputs_first_rows"] as? [Double])) {
            #expect(abs(mine - theirs) < 1e-12)
        }
        let bounds = try Lipschitz.bounds(of: saved.network, trainingInputs: inputs, distribution: .sphere, seed: 3)
        let upper = try #require(values["lip_upper"] as? Double)
        let atX = try #require(values["max_gradient_norm_on_X"] as? Double)
        let tangentialAtX = try #require(values["max_tangential_gradient_norm_on_X"] as? Double)
        // numpy's is min(||W||_op ||a||, sum_j |a_j| ||w_j||); ours adds the centred bound.
        #expect(abs(min(bounds.upperProduct, bounds.upperPath) - upper) / upper < 1e-8)
        #expect(bounds.upper <= min(bounds.upperProduct, bounds.upperPath))
        // numpy's centred bound at q = |a| is one of the choices ours minimises over.
        let centredAtAbsA = try #require(values["lip_upper_centred_q_abs_a"] as? Double)
        #expect(bounds.upperCentred <= centredAtAbsA * (1 + 1e-8) && bounds.upperCentred >= atX)
        // The probe set contains X, so the lower bounds are at least numpy's maxima over X.
        #expect(bounds.lower >= atX * (1 - 1e-6))
        #expect(bounds.supportLower >= tangentialAtX * (1 - 1e-6))
        #expect(bounds.lower <= bounds.upper)
    }

    @Test func pytorchStateDictIsRecognised() throws {
        let path = try fixture("torch_relu.safetensors").path
        #expect(throws: IsosweepError.self) { try SavedNetwork.load(path: path) }  // no activation said
        let saved = try SavedNetwork.load(path: path, activation: .relu)
        let values = try #require(try expected()["torch_relu"] as? [String: Any])
        let probes = try #require(values["probe_points"] as? [[Double]])
        let outputs = saved.network.outputs(Matrix(rows: 3, columns: 4, storage: probes.flatMap { $0 }))
        for (mine, theirs) in zip(outputs, try #require(values["outputs_first_rows"] as? [Double])) {
            #expect(abs(mine - theirs) < 1e-12)
        }
        let upper = try #require(values["lip_upper"] as? Double)
        // The fixture's bound is numpy's min(||W||_op ||a||, sum_j |a_j| ||w_j||).
        let bounds = try Lipschitz.upperBounds(saved.network)
        #expect(abs(min(bounds.product, bounds.path) - upper) / upper < 1e-8)
        #expect(bounds.best <= min(bounds.product, bounds.path))
        let centredAtAbsA = try #require(values["lip_upper_centred_q_abs_a"] as? Double)
        #expect(bounds.centred <= centredAtAbsA * (1 + 1e-8))
        #expect(bounds.centred >= (values["max_gradient_norm_on_X"] as? Double ?? .infinity))
    }

    @Test func malformedFilesAreRefused() throws {
        let good = try Data(contentsOf: try fixture("numpy_tanh.safetensors"))
        var cases: [(Data, String)] = [
            (Data([1, 2, 3]), "shorter than"),
            (Data([255, 255, 255, 255, 0, 0, 0, 0]) + good.dropFirst(8), "header length"),
            (good.prefix(good.count - 4), "data_offsets"),
        ]
        var badJSON = good
        badJSON[8] = UInt8(ascii: "x")
        cases.append((badJSON, "not JSON"))
        func file(_ header: String, data: Int) -> Data {
            var json = Data(header.utf8)
            while json.count % 8 != 0 { json.append(UInt8(ascii: " ")) }
            return withUnsafeBytes(of: UInt64(json.count).littleEndian, { Data($0) }) + json + Data(count: data)
        }
        cases.append((file(#"{"W": {"dtype": "I64", "shape": [1], "data_offsets": [0, 8]}}"#, data: 8), "dtype I64"))
        cases.append((file(#"{"W": {"dtype": "F32", "shape": [4], "data_offsets": [0, 8]}}"#, data: 8), "do not match"))
        cases.append(
            (
                file(#"{"W": {"dtype": "F32", "shape": [4611686018427387904, 4], "data_offsets": [0, 8]}}"#, data: 8),
                "shape"
            )
        )
        cases.append(
            (file(#"{"W": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}"#, data: 8), "data_offsets")
        )
        cases.append((file(#"{"W": 5}"#, data: 0), "lacks"))
        for (bytes, words) in cases {
            do {
                _ = try SafeTensors.decode(bytes)
                Issue.record("accepted a malformed file expecting '\(words)'")
            } catch {
                #expect(error.code == .badFile)
                #expect(error.message.contains(words), "\(error.message)")
            }
        }
    }

    @Test func halfPrecisionValuesDecode() throws {
        #expect(SafeTensors.halfToDouble(0x3C00) == 1)
        #expect(SafeTensors.halfToDouble(0xC000) == -2)
        #expect(SafeTensors.halfToDouble(0x0001) == 0x1p-24)
        #expect(SafeTensors.halfToDouble(0x7C00) == .infinity)
        #expect(SafeTensors.halfToDouble(0x3555) == 0.333251953125)
    }
}
