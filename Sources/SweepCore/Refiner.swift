import Foundation
public import TrainingCore

/// One round of a sweep's `refine:` (`Refinement`): from the results so far, the cells to add.
/// Deterministic: the same results give the same cells.
extension Refinement {
    /// For each configuration (every parameter but the axis and the seed), in the order of their
    /// keys, each pair of neighbouring axis values where the condition holds gets the geometric
    /// midpoint (rounded for a whole-number axis; none when it would repeat a value), with every
    /// seed either side has; cells already in `existing` are skipped, and at most `budget` are
    /// returned.
    public func round(results: [CellResult], existing: Set<String>, budget: Int) -> [CellWork] {
        guard budget > 0, let parameter = CellParameters.parameter(named: axis) else { return [] }
        var groups: [String: [(value: Double, result: CellResult)]] = [:]
        for result in results {
            guard let value = parameter.value(result.parameters).flatMap(\.number) else { continue }
            var key = result.parameters
            parameter.assign(.int(0), to: &key)
            key.seed = 0
            groups[CellWork.train(key).key, default: []].append((value, result))
        }
        var added: [CellWork] = []
        var seen = existing
        for group in groups.keys.sorted() {
            let cells = groups[group]!
            let values = Set(cells.map(\.value)).sorted()
            for (a, b) in zip(values, values.dropFirst()) {
                let left = cells.filter { $0.value == a }.map(\.result)
                let right = cells.filter { $0.value == b }.map(\.result)
                guard holds(left, right) else { continue }
                var middle = (a * b).squareRoot()
                if case .int = parameter.kind { middle = middle.rounded() }
                guard middle > a && middle < b else { continue }
                let seeds = Set((left + right).map(\.parameters.seed)).sorted()
                for seed in seeds {
                    var cell = left[0].parameters
                    cell.seed = seed
                    if case .int = parameter.kind {
                        parameter.assign(.int(Int(middle)), to: &cell)
                    } else {
                        parameter.assign(.double(middle), to: &cell)
                    }
                    let work = CellWork.train(cell.resolved())
                    guard seen.insert(work.key).inserted else { continue }
                    added.append(work)
                    if added.count == budget { return added }
                }
            }
        }
        return added
    }

    /// Whether the condition holds between the seeds at two neighbouring axis values.
    func holds(_ left: [CellResult], _ right: [CellResult]) -> Bool {
        func values(_ cells: [CellResult], _ metric: String) -> [Double] {
            cells.compactMap { Refinement.metric(metric, of: $0.metrics) }.filter(\.isFinite)
        }
        switch condition {
        case .crosses(let metric, let threshold):
            guard let l = Statistics.summary(values(left, metric))?.mean,
                let r = Statistics.summary(values(right, metric))?.mean
            else { return false }
            return (l < threshold) != (r < threshold)
        case .ciWidth(let metric, let above):
            let widths = [left, right].map { Statistics.summary(values($0, metric))?.halfWidth95.map { 2 * $0 } }
            return widths.contains { ($0 ?? 0) > above }
        }
    }
}

extension ParameterValue {
    /// The value as a number, for int and number parameters.
    var number: Double? {
        switch self {
        case .int(let v): Double(v)
        case .double(let v): v
        default: nil
        }
    }
}
