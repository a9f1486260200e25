/// One part of a `GradientAscent` batch and everything its rows carry from step to step: where
/// each row is (its gradient, slopes and curvatures from the step that accepted it), its best
/// point, step size and failures, the direction it keeps until its point moves, and its own
/// random stream. A part steps alone (`step`), so the parts of a split search run concurrently.
struct AscentPart<Scalar: BLASScalar> {
    typealias Ascent = GradientAscent<Scalar>

    var current: Ascent.Batch
    let tangential: [Bool]
    var best: Matrix<Scalar>
    var bestValues: [Scalar]
    var stepSize: [Scalar]
    var failures: [Int]
    /// The direction of a row at its current point, once computed (nil after the point moves).
    var cachedDirection: [[Scalar]?]
    var generators: [SeededGenerator]

    init(_ ascent: Ascent, starts: Matrix<Scalar>, tangential: [Bool], seeds: [UInt64]) {
        current = ascent.evaluate(starts, tangential: tangential)
        self.tangential = tangential
        best = starts
        bestValues = current.values.map { $0.isFinite ? $0 : -.infinity }
        stepSize = [Scalar](repeating: 0.1, count: starts.rows)
        failures = [Int](repeating: 0, count: starts.rows)
        cachedDirection = [[Scalar]?](repeating: nil, count: starts.rows)
        generators = seeds.map { SeededGenerator(seed: $0, stream: .probes) }
    }

    /// The best point found so far of one kind (free or tangential rows) over every part, the
    /// first in row order among equals; nil when no row is of that kind.
    static func bestPoint(of parts: [AscentPart], tangential kind: Bool) -> [Scalar]? {
        var found: (value: Scalar, part: Int, row: Int)?
        for (p, part) in parts.enumerated() {
            for i in part.tangential.indices where part.tangential[i] == kind {
                if found == nil || part.bestValues[i] > found!.value { found = (part.bestValues[i], p, i) }
            }
        }
        return found.map { parts[$0.part].best.row($0.row) }
    }

    /// One step of every row: a converged row hops (from `hopFrom`, the best point of its kind),
    /// a row whose step count is even steers (along its kept direction, or a new one), the others
    /// try a random direction; then every candidate is evaluated at once and kept if it is higher.
    mutating func step(_ ascent: Ascent, hopFrom: [[Scalar]?]) {
        let rows = tangential.count
        let d = ascent.inputDimension
        let steers = (0..<rows).map { stepSize[$0] >= Ascent.minimumStep && failures[$0] % 2 == 0 }
        let fresh = (0..<rows).filter { steers[$0] && cachedDirection[$0] == nil }
        let directions = ascent.directions(current, tangential: tangential, rows: fresh)
        var freshRow = [Int?](repeating: nil, count: rows)
        for (r, i) in fresh.enumerated() { freshRow[i] = r }
        var candidate = current.points
        var hopping = [Bool](repeating: false, count: rows)
        var u = Matrix<Scalar>(rows: 1, columns: d)
        for i in 0..<rows {
            var length: Scalar = 0
            var move = stepSize[i]
            hopping[i] = stepSize[i] < Ascent.minimumStep
            if hopping[i], let from = hopFrom[tangential[i] ? 1 : 0] {
                stepSize[i] = 0.1
                failures[i] = 0
                candidate.storage.replaceSubrange((i * d)..<((i + 1) * d), with: from)
                move = Ascent.restartRadius
            } else if steers[i] {
                if let r = freshRow[i] {
                    u.copyRow(0, from: directions, row: r)
                    cachedDirection[i] = u.storage
                } else if let kept = cachedDirection[i] {
                    u.storage = kept
                }
                length = u.storage.reduce(0) { $0 + $1 * $1 }.squareRoot()
            }
            if !(length > 1e-12) {
                ascent.randomDirection(&u, at: candidate, row: i, tangential: tangential[i], rng: &generators[i])
                length = u.storage.reduce(0) { $0 + $1 * $1 }.squareRoot()
            }
            guard length > 0 else { continue }
            let scale = move / length
            candidate.storage.withUnsafeMutableBufferPointer { points in
                u.storage.withUnsafeBufferPointer { direction in
                    let row = points.baseAddress! + i * d
                    for j in 0..<d { row[j] += scale * direction[j] }
                }
            }
            if tangential[i] { candidate.normaliseRow(i) }
        }
        let trial = ascent.evaluate(candidate, tangential: tangential, reference: current)
        for i in 0..<rows {
            guard trial.values[i].isFinite else { continue }
            if hopping[i] || trial.values[i] > current.values[i] {
                ascent.copyRow(i, from: trial, into: &current)
                cachedDirection[i] = nil
                if !hopping[i] {
                    stepSize[i] = min(1, stepSize[i] * 1.5)
                    failures[i] = 0
                }
                if current.values[i] > bestValues[i] {
                    bestValues[i] = current.values[i]
                    best.copyRow(i, from: current.points, row: i)
                }
            } else {
                failures[i] += 1
                if failures[i] % 2 == 0 { stepSize[i] *= 0.5 }
            }
        }
    }
}
