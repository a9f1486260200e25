import Foundation
import Testing
import TrainingCore

/// The Lipschitz search holds its ground: on a committed set of saved networks (relu, tanh and
/// softplus; widths 16 to 2048; sphere and gaussian data; trained, and one step from
/// initialisation), today's search finds lower bounds never more than 1% below, and upper bounds
/// never above, the ones the float64 search of commit 069e5e3 found (`Fixtures/lipschitz`, made by
/// its `make_lipschitz_fixtures.sh`).
@Suite struct LipschitzRegressionTests {
    struct Expected: Decodable {
        var file: String
        var lipLower: Double
        var lipSupportLower: Double
        var lipUpper: Double
        var gradMean: Double

        enum CodingKeys: String, CodingKey {
            case file
            case lipLower = "lip_lower"
            case lipSupportLower = "lip_support_lower"
            case lipUpper = "lip_upper"
            case gradMean = "grad_mean"
        }
    }

    static func fixture(_ name: String) throws -> URL {
        try #require(Bundle.module.url(forResource: name, withExtension: nil, subdirectory: "Fixtures/lipschitz"))
    }

    static let expected: [Expected] = {
        guard let url = try? fixture("expected.json"), let data = try? Data(contentsOf: url) else { return [] }
        return (try? JSONDecoder().decode([Expected].self, from: data)) ?? []
    }()

    @Test func theFixtureCoversEveryActivationWidthAndSupport() throws {
        #expect(Self.expected.count == 24)
        for activation in ["relu", "tanh", "softplus"] {
            for data in ["sphere", "gaussian"] {
                for width in ["w16", "w256", "w2048", "w256-init"] {
                    #expect(Self.expected.contains { $0.file == "\(activation)-\(data)-\(width).safetensors" })
                }
            }
        }
    }

    @Test(arguments: expected)
    func boundsAreNoWorseThanTheFloat64Search(_ expected: Expected) throws {
        let saved = try SavedNetwork.load(path: try Self.fixture(expected.file).path)
        let distribution: InputDistribution = saved.metadata["data"] == "gaussian" ? .gaussian : .sphere
        let seed = try #require(saved.metadata["seed"].flatMap(UInt64.init))
        let bounds = try Lipschitz.bounds(
            of: saved.network,
            trainingInputs: saved.inputs,
            distribution: distribution,
            seed: seed
        )
        #expect(bounds.lower >= 0.99 * expected.lipLower, "\(expected.file): lip_lower \(bounds.lower)")
        #expect(
            bounds.supportLower >= 0.99 * expected.lipSupportLower,
            "\(expected.file): lip_support_lower \(bounds.supportLower)"
        )
        #expect(bounds.upper <= expected.lipUpper, "\(expected.file): lip_upper \(bounds.upper)")
        // The mean gradient norm over the fresh points is an average, not a search: of float32
        // gradients (float32 rounding, ~1e-7 relative; the fixture's are float64).
        #expect(abs(bounds.gradientMean - expected.gradMean) <= 1e-6 * expected.gradMean)
        #expect(bounds.supportLower <= bounds.lower && bounds.lower <= bounds.upper)
    }
}

extension LipschitzRegressionTests.Expected: CustomTestStringConvertible {
    var testDescription: String { file }
}
