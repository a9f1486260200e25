import Foundation
import SweepAnalysis
import SweepCore
import Testing
import TrainingCore

/// Every parameter of `CellParameters.catalogue` is accepted by sweep files, set in the cell, and
/// shown by the table when it varies (`isosweep train`'s options: IntegrationTests/CLITests).
@Suite struct ParameterCatalogueTests {
    /// Two valid values of each parameter, in sweep-file YAML and as the cell holds them. Adding a
    /// parameter to the catalogue without adding it here fails `everyParameterHasExamples`.
    static let examples: [String: (yaml: [String], values: [ParameterValue])] = [
        "n": (["16", "24"], [.int(16), .int(24)]),
        "d": (["3", "5"], [.int(3), .int(5)]),
        "width": (["4", "8"], [.int(4), .int(8)]),
        "seed": (["7", "8"], [.int(7), .int(8)]),
        "data": (["file", "sphere"], [.string("file"), .string("sphere")]),
        "data_file": (["a.csv", "b.csv"], [.string("a.csv"), .string("b.csv")]),
        "label_file": (["a.idx", "b.idx"], [.string("a.idx"), .string("b.idx")]),
        "classes": (
            ["[a, b]", "[3, 8]"], [.list([.string("a"), .string("b")]), .list([.string("3"), .string("8")])]
        ),
        "label_column": (["3", "0"], [.int(3), .int(0)]),
        "labels": (["file", "teacher"], [.string("file"), .string("teacher")]),
        "eta": (["0.1", "0.2"], [.double(0.1), .double(0.2)]),
        "activation": (["tanh", "softplus"], [.string("tanh"), .string("softplus")]),
        "trainer": (["gd", "adam"], [.string("gd"), .string("adam")]),
        "lr": (["0.05", "0.02"], [.double(0.05), .double(0.02)]),
        "max_steps": (["10", "20"], [.int(10), .int(20)]),
        "target_mse": (["0.01", "0.02"], [.double(0.01), .double(0.02)]),
        "n_test": (["5", "6"], [.int(5), .int(6)]),
        "weight_decay": (["0.001", "0.01"], [.double(0.001), .double(0.01)]),
        "grad_penalty": (["0.1", "0.2"], [.double(0.1), .double(0.2)]),
        "init_scale": (["0.5", "2"], [.double(0.5), .double(2)]),
        "extra_steps": (["5", "6"], [.int(5), .int(6)]),
        "smooth_after_fit": (["5", "6"], [.int(5), .int(6)]),
    ]

    @Test func everyParameterHasExamplesAndItsJSONKey() throws {
        #expect(Set(Self.examples.keys) == Set(CellParameters.catalogue.map(\.name)))
        // The catalogue's names are the JSON keys of a cell (store, wire, table --format json).
        var cell = CellParameters(n: 1, d: 1, width: 1)
        for parameter in CellParameters.catalogue {
            parameter.assign(try #require(Self.examples[parameter.name]).values[0], to: &cell)
        }
        let json = try JSONSerialization.jsonObject(with: JSONEncoder().encode(cell)) as? [String: Any]
        #expect(Set(json?.keys.map { $0 } ?? []) == Set(CellParameters.catalogue.map(\.name)))
    }

    @Test func aSweepFileAcceptsEveryParameter() throws {
        var lines = ["name: everything", "parameters:"]
        for parameter in CellParameters.catalogue {
            lines.append("  \(parameter.name): {value: \(try #require(Self.examples[parameter.name]).yaml[0])}")
        }
        let cells = try SweepSpec.parse(lines.joined(separator: "\n"), file: "everything.yaml").cells()
        let cell = try #require(cells.first?.parameters)
        #expect(cells.count == 1)
        for parameter in CellParameters.catalogue {
            #expect(parameter.value(cell) == Self.examples[parameter.name]?.values[0], "\(parameter.name)")
        }
    }

    @Test func theTableShowsEveryParameterThatVaries() throws {
        var base = CellParameters(n: 1, d: 1, width: 1)
        for parameter in CellParameters.catalogue {
            parameter.assign(try #require(Self.examples[parameter.name]).values[0], to: &base)
        }
        let metrics = CellMetrics(
            p: 1,
            trainMSE: 0.1,
            noiseLevel: 1,
            eps: 0.9,
            fitFraction: 1,
            testMSE: 1,
            lipLower: 1,
            lipUpper: 2,
            lipSupportLower: 1,
            gradMean: 1,
            lawScale: 1,
            lawRatio: 1,
            steps: 1,
            stopReason: .maxSteps,
            trainSeconds: 0,
            lipSeconds: 0,
            flops: 0,
            gflops: 0,
            scienceVersion: scienceVersion,
            initialisation: "test",
            host: "h",
            blas: "b"
        )
        for parameter in CellParameters.catalogue {
            let values = try #require(Self.examples[parameter.name]).values
            var other = base
            parameter.assign(values[1], to: &other)
            let table = SweepTable(results: [
                CellResult(parameters: base, metrics: metrics), CellResult(parameters: other, metrics: metrics),
            ])
            let csv = try table.render(.csv)
            let header = csv.split(separator: "\n").first.map { $0.split(separator: ",").map(String.init) } ?? []
            #expect(header.contains(parameter.name), "\(parameter.name) varies but is not a column: \(header)")
        }
        // Parameters that do not vary are not columns (besides n, d, width, p and seed).
        let fixed = try SweepTable(results: [CellResult(parameters: base, metrics: metrics)]).render(.csv)
        #expect(fixed.hasPrefix("n,d,width,p,seed,train_mse,"))
    }
}
