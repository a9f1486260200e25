import Diagnostics
import Foundation
public import TrainingCore
import Yams

/// `refine:` on a grid (isosweep's own): after the grid, and after each round, new cells at the
/// geometric midpoints of a numeric axis where a condition holds between neighbouring values.
///
/// ```yaml
/// refine:
///   axis: width                          # a numeric axis of the grid
///   where: fit_fraction crosses 0.99     # or: law_ratio ci_width > 0.2
///   rounds: 3
///   max_new_cells: 200                   # over all rounds
/// ```
/// `crosses`: the mean over seeds is below the threshold on one side and at or above it on the
/// other. `ci_width`: the 95% interval over seeds is wider than the threshold at either side.
public struct Refinement: Sendable, Equatable {
    public enum Condition: Sendable, Equatable {
        case crosses(metric: String, threshold: Double)
        case ciWidth(metric: String, above: Double)
    }

    public var axis: String
    public var condition: Condition
    public var rounds: Int
    public var maxNewCells: Int

    /// The metrics a condition may read.
    public static let metrics = [
        "fit_fraction", "eps", "law_ratio", "lip_support_lower", "lip_lower", "lip_upper", "train_mse", "test_mse",
    ]

    /// A metric of a result by its name.
    public static func metric(_ name: String, of m: CellMetrics) -> Double? {
        switch name {
        case "fit_fraction": m.fitFraction
        case "eps": m.eps
        case "law_ratio": m.lawRatio
        case "lip_support_lower": m.lipSupportLower
        case "lip_lower": m.lipLower
        case "lip_upper": m.lipUpper
        case "train_mse": m.trainMSE
        case "test_mse": m.testMSE
        default: nil
        }
    }

    static func parse(
        _ node: Node,
        parameters: [SweepSpec.Parameter],
        _ fail: (Node?, String?, String) -> IsosweepError
    ) throws(IsosweepError) -> Refinement {
        guard case .mapping(let mapping) = node else {
            throw fail(node, "refine", "expected a mapping with axis, where, rounds and max_new_cells")
        }
        var fields: [String: Node] = [:]
        for (key, value) in mapping {
            guard let k = key.string, ["axis", "where", "rounds", "max_new_cells"].contains(k) else {
                throw fail(
                    key,
                    "refine",
                    "unknown key \(key.string ?? ""); refine has axis, where, rounds and max_new_cells"
                )
            }
            fields[k] = value
        }
        guard let axis = fields["axis"]?.string else { throw fail(node, "refine.axis", "is required: a numeric axis") }
        guard let parameter = parameters.first(where: { $0.name == axis }), parameter.isAxis,
            parameter.values.count >= 2,
            parameter.values.allSatisfy({ if case .string = $0 { false } else { true } })
        else {
            throw fail(
                fields["axis"],
                "refine.axis",
                "\(axis) is not a numeric axis of the grid with at least two values"
            )
        }
        guard axis != "seed" else { throw fail(fields["axis"], "refine.axis", "seeds are not refined") }
        guard let text = fields["where"]?.string else {
            throw fail(node, "refine.where", "is required, e.g. fit_fraction crosses 0.99 or law_ratio ci_width > 0.2")
        }
        let words = text.split(separator: " ").map(String.init)
        let condition: Condition
        if words.count == 3, words[1] == "crosses", let threshold = Double(words[2]) {
            condition = .crosses(metric: words[0], threshold: threshold)
        } else if words.count == 4, words[1] == "ci_width", words[2] == ">", let threshold = Double(words[3]),
            threshold > 0
        {
            condition = .ciWidth(metric: words[0], above: threshold)
        } else {
            throw fail(
                fields["where"],
                "refine.where",
                "expected METRIC crosses VALUE or METRIC ci_width > VALUE (got \(text))"
            )
        }
        let metric = words[0]
        guard metrics.contains(metric) else {
            throw fail(
                fields["where"],
                "refine.where",
                "unknown metric \(metric); one of \(metrics.joined(separator: ", "))"
            )
        }
        let rounds = fields["rounds"]?.int ?? 1
        let cap = fields["max_new_cells"]?.int ?? 100
        guard rounds >= 1 && rounds <= 20 else { throw fail(fields["rounds"], "refine.rounds", "expected 1 to 20") }
        guard cap >= 1 else {
            throw fail(fields["max_new_cells"], "refine.max_new_cells", "expected a positive number")
        }
        return Refinement(axis: axis, condition: condition, rounds: rounds, maxNewCells: cap)
    }
}
