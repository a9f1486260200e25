import Diagnostics
import Foundation
import TrainingCore

/// `method: random`, in the Weights & Biases format: `run_cap` cells drawn from per-parameter
/// distributions, reproducible from the sweep's `seed`.
///
/// ```yaml
/// method: random
/// run_cap: 50
/// seed: 7
/// parameters:
///   n:     {value: 256}
///   d:     {distribution: categorical, values: [16, 32, 64]}
///   width: {distribution: q_log_uniform_values, min: 8, max: 2048, q: 8}
///   lr:    {distribution: log_uniform_values, min: 0.0001, max: 0.1}
///   seed:  {distribution: int_uniform, min: 0, max: 1000}
/// ```
/// `values` without a distribution is categorical as well. The cells are distinct: draws that
/// repeat a cell are drawn again.
public enum Distribution: Sendable, Equatable {
    /// An integer uniform in [min, max].
    case intUniform(min: Int, max: Int)
    /// A number uniform in [min, max].
    case uniform(min: Double, max: Double)
    /// exp(u), u uniform in [log min, log max].
    case logUniformValues(min: Double, max: Double)
    /// round(X / q) q, X log-uniform in [min, max].
    case qLogUniformValues(min: Double, max: Double, q: Double)

    /// The W&B names isosweep understands.
    static let names = ["int_uniform", "uniform", "log_uniform_values", "q_log_uniform_values", "categorical"]

    /// One draw, as a value of `kind` (int parameters get whole numbers).
    func draw(_ kind: CellParameter.Kind, _ rng: inout SeededGenerator) -> ParameterValue {
        let number: Double
        switch self {
        case .intUniform(let low, let high):
            return .int(low + Int(rng.next() % UInt64(high - low + 1)))
        case .uniform(let low, let high):
            number = low + (high - low) * rng.nextUniform()
        case .logUniformValues(let low, let high):
            number = exp(log(low) + (log(high) - log(low)) * rng.nextUniform())
        case .qLogUniformValues(let low, let high, let q):
            let x = exp(log(low) + (log(high) - log(low)) * rng.nextUniform())
            number = (x / q).rounded() * q
        }
        if case .int = kind { return .int(Int(number.rounded())) }
        return .double(number)
    }
}

extension SweepSpec {
    /// `run_cap` distinct cells drawn with the sweep's seed: parameter by parameter in file order,
    /// a fixed value as it is, `values` uniformly, a distribution by its law.
    func randomCombos(file: String) throws(IsosweepError) -> [[String: ParameterValue]] {
        guard let cap = runCap else {
            throw IsosweepError.sweepFile(file, line: nil, key: "run_cap", "is required with method: random")
        }
        var rng = SeededGenerator(seed: UInt64(seed ?? 0), stream: .sweepDraws)
        var combos: [[String: ParameterValue]] = []
        var seen = Set<[String: ParameterValue]>()
        var draws = 0
        // Draws that repeat a cell are drawn again, up to a bound that says the space is too small.
        let bound = 1000 + 100 * cap
        while combos.count < cap {
            draws += 1
            guard draws <= bound else {
                throw IsosweepError.sweepFile(
                    file,
                    line: nil,
                    key: "run_cap",
                    "\(cap) distinct cells were asked for but \(bound) draws gave only \(combos.count): widen the distributions or lower run_cap"
                )
            }
            var combo: [String: ParameterValue] = [:]
            for parameter in parameters {
                guard let kind = CellParameters.parameter(named: parameter.name)?.kind else { continue }
                if let distribution = parameter.distribution {
                    combo[parameter.name] = distribution.draw(kind, &rng)
                } else if parameter.values.count == 1 {
                    combo[parameter.name] = parameter.values[0]
                } else {
                    combo[parameter.name] = parameter.values[Int(rng.next() % UInt64(parameter.values.count))]
                }
            }
            // The cell as it resolves (defaults made explicit) decides what is a repeat.
            let resolved = CellParameters(values: combo).resolved()
            var canonical: [String: ParameterValue] = [:]
            for parameter in CellParameters.catalogue {
                if let value = parameter.value(resolved) { canonical[parameter.name] = value }
            }
            if seen.insert(canonical).inserted { combos.append(combo) }
        }
        return combos
    }
}
