public import Diagnostics

/// Certified bounds on a network's Lipschitz constant (Euclidean norms).
public struct LipschitzBounds: Sendable, Equatable, Codable {
    /// Largest input-gradient norm or difference quotient found anywhere in R^d (near the data,
    /// and far out along rays): Lip(f) >= this.
    public var lower: Double
    /// The smallest of the certified upper bounds below: Lip(f) <= this.
    public var upper: Double
    /// ||W||_op ||a||_2, sum_j |a_j| ||w_j|| and the centred bound (`UpperBounds`), each with
    /// its rounding margin; infinite where a bound does not apply.
    public var upperProduct: Double
    public var upperPath: Double
    public var upperCentred: Double
    /// Lower bound of the constant on the data's support (`Support`): the largest tangential
    /// gradient or chordal quotient on the sphere, the largest quotient between two hypercube
    /// vertices, or `lower` in R^d.
    public var supportLower: Double
    /// Mean input-gradient norm over fresh points: typical, not worst-case, sensitivity (their
    /// gradients taken in float32, so to about 1e-6 relative).
    public var gradientMean: Double

    enum CodingKeys: String, CodingKey {
        case lower = "lip_lower"
        case upper = "lip_upper"
        case upperProduct = "lip_upper_product"
        case upperPath = "lip_upper_path"
        case upperCentred = "lip_upper_centred"
        case supportLower = "lip_support_lower"
        case gradientMean = "grad_mean"
    }
}

/// How hard the lower bounds search.
public struct LipschitzOptions: Sendable, Equatable {
    /// Fresh points drawn from the data distribution (also the points of `gradientMean`).
    public var freshPoints: Int = 1000
    /// How many of the best probes are improved by ascent on the gradient norm (of each kind:
    /// free, and tangential on the sphere; one float32 batch, `GradientAscent`).
    public var ascentStarts: Int = 96
    /// Ascent iterations from each start (the float64 polish of the best takes at most 50 more).
    public var ascentSteps: Int = 150
    /// Half-width of the difference quotients taken along the best gradients.
    public var pairStep: Double = 1e-4
    /// Rows evaluated per BLAS call, bounding memory for wide networks.
    public var batchRows: Int = 256
    /// Threads the search runs on (the cell's): above 1 the ascent's rows and the rays are split
    /// over that many threads, each with single-threaded BLAS calls (OpenBLAS is set to one
    /// thread for the search and restored after it: it is process-wide, so only a caller that
    /// owns the process's BLAS, as a cell does, should ask for more than 1). The bounds are
    /// deterministic for a given number; they differ between numbers only by where the searches
    /// end.
    public var threads: Int = 1

    /// The defaults.
    public init() {}
}

/// Computes the Lipschitz bounds of a trained network.
public enum Lipschitz {
    /// Relative margin added to the upper bound to cover the rounding of its double-precision
    /// computation (far above the accumulated error of an SVD and k-term sums).
    static let upperBoundMargin = 1e-9

    /// ||W||_op ||a||_2 and sum_j |a_j| ||w_j|| (without margin), with the row norms ||w_j||.
    static func productAndPath(
        _ network: Network<Double>
    ) throws(IsosweepError) -> (
        product: Double, path: Double, rowNorms: [Double]
    ) {
        let w = network.weights
        let a = network.outputWeights
        var aSquares = 0.0
        var path = 0.0
        var rowNorms = [Double](repeating: 0, count: network.width)
        for j in 0..<network.width {
            aSquares += a[j] * a[j]
            var norm = 0.0
            for i in 0..<network.inputDimension { norm += w[j, i] * w[j, i] }
            rowNorms[j] = norm.squareRoot()
            path += abs(a[j]) * rowNorms[j]
        }
        return (try BLAS.largestSingularValue(w) * aSquares.squareRoot(), path, rowNorms)
    }

    /// All bounds. The probe set is `trainingInputs`, fresh points from `distribution`, and the
    /// best of them improved by ascent on the gradient norm (on the sphere too, for sphere and
    /// file data); difference quotients along the best gradients and between consecutive training
    /// points count as well, then rays far from the data (`rayLowerBound`) and, for hypercube
    /// data, quotients between vertices (`vertexQuotients`). Deterministic for a given seed.
    public static func bounds(
        of network: Network<Double>,
        trainingInputs: Matrix<Double>?,
        distribution: InputDistribution,
        seed: UInt64,
        options: LipschitzOptions = LipschitzOptions(),
        stopAt: ContinuousClock.Instant? = nil,
        shouldStop: @Sendable () -> Bool = { false }
    ) throws(IsosweepError) -> LipschitzBounds {
        let restore = singleThreadedBLAS(options.threads)
        defer { restore() }
        // With more than one thread the upper bounds (single-threaded LAPACK and loops) run on a
        // thread of their own beside the search, filling the time its threads wait on each other.
        let parts = ParallelRows.map(options.threads > 1 ? 2 : 1) { part in
            (
                lower: part == 1
                    ? nil
                    : Result { () throws(IsosweepError) in
                        try lowerBounds(
                            of: network,
                            trainingInputs: trainingInputs,
                            distribution: distribution,
                            seed: seed,
                            options: options,
                            stopAt: stopAt,
                            shouldStop: shouldStop
                        )
                    },
                upper: part == 0 && options.threads > 1
                    ? nil : Result { () throws(IsosweepError) in try upperBounds(network) }
            )
        }
        let lower = try parts[0].lower!.get()
        let upper = try parts[parts.count - 1].upper!.get()
        return LipschitzBounds(
            lower: lower.lower,
            upper: upper.best,
            upperProduct: upper.product,
            upperPath: upper.path,
            upperCentred: upper.centred,
            supportLower: lower.support,
            gradientMean: lower.gradientMean
        )
    }

    /// The lower bounds of `bounds`: in R^d, on the support, and the mean gradient norm. With
    /// `supportOnly`, only the searches the support bound needs run (the baseline
    /// `lip_init_support_lower` wants no more): on the sphere no free ascent and no rays, on
    /// hypercube vertices no ascent at all. For vertices and R^d `support` is then exactly the full
    /// search's; on the sphere it is as strong a search with other random draws (the free rows
    /// no longer draw first). `lower` is then only what those searches found.
    public static func lowerBounds(
        of network: Network<Double>,
        trainingInputs: Matrix<Double>?,
        distribution: InputDistribution,
        seed: UInt64,
        options: LipschitzOptions = LipschitzOptions(),
        supportOnly: Bool = false,
        stopAt: ContinuousClock.Instant? = nil,
        shouldStop: @Sendable () -> Bool = { false }
    ) throws(IsosweepError) -> (lower: Double, support: Double, gradientMean: Double) {
        let restore = singleThreadedBLAS(options.threads)
        defer { restore() }
        let d = network.inputDimension
        var rng = SeededGenerator(seed: seed, stream: .probes)
        let fresh = distribution.sample(options.freshPoints, d: d, using: &rng)
        let support = distribution.support
        let onSphere = support == .sphere
        var search = GradientSearch(
            network: network,
            onSphere: onSphere,
            onVertices: support == .vertices,
            batchRows: options.batchRows,
            threads: options.threads
        )

        var gradientSum = 0.0
        search.probe(fresh) { norm in gradientSum += norm }
        if let trainingInputs {
            precondition(trainingInputs.columns == d)
            let probed = search.probe(trainingInputs) { _ in }
            // On the sphere their quotients count in R^d only, which a support-only search skips.
            if !(supportOnly && onSphere) { search.consecutivePairs(probed.points, screening: probed.outputs) }
        }
        if support == .vertices {
            // Before the ascent moves the pool off the vertices.
            var vertices = fresh
            if let trainingInputs { vertices = vertices.appendingRows(trainingInputs) }
            search.vertexQuotients(vertices, starts: options.ascentStarts)
        }
        // Searches in R^d count for the support only when the support is R^d.
        let free = !supportOnly || support == .space
        func wanted(
            _ starts: (free: Matrix<Double>, tangential: Matrix<Double>)
        ) -> (
            free: Matrix<Double>, tangential: Matrix<Double>
        ) {
            (free ? starts.free : Matrix(rows: 0, columns: d), starts.tangential)
        }
        if free || onSphere {
            try search.ascend(
                from: wanted(search.bestProbes(options.ascentStarts)),
                steps: options.ascentSteps,
                rng: &rng,
                stopAt: stopAt,
                shouldStop: shouldStop
            )
            search.differenceQuotients(at: wanted(search.bestProbes(options.ascentStarts)), step: options.pairStep)
        }

        let rays = free ? rayLowerBound(network, seed: seed, threads: options.threads).value : 0
        // Every support bound is a quotient or gradient at real points, so also a bound in R^d.
        let supportValue: Double
        switch support {
        case .space: supportValue = max(search.bestFree, rays)
        case .sphere: supportValue = search.bestTangential
        case .vertices: supportValue = search.bestVertex
        }
        return (
            max(search.bestFree, rays, supportValue),
            supportValue,
            options.freshPoints > 0 ? gradientSum / Double(options.freshPoints) : 0
        )
    }
}

extension Lipschitz {
    /// With more than one search thread, sets OpenBLAS to one thread (the search's threads make
    /// their own calls) and returns what puts it back; with one, changes nothing.
    static func singleThreadedBLAS(_ threads: Int) -> () -> Void {
        let saved = BLAS.threads
        guard threads > 1, saved != 1 else { return {} }
        BLAS.setThreads(1)
        return { BLAS.setThreads(saved) }
    }
}

/// The state of a search for large gradients: the best values so far and a pool of the best points.
struct GradientSearch {
    let network: Network<Double>
    let onSphere: Bool
    /// Whether the training points are hypercube vertices (their quotients are support bounds).
    let onVertices: Bool
    let batchRows: Int
    /// Threads the ascent's rows are split over (`LipschitzOptions.threads`).
    let threads: Int
    /// Best full gradient norm or difference quotient found (a lower bound of Lip(f)).
    var bestFree = 0.0
    /// Best tangential gradient norm or chordal quotient found on the unit sphere.
    var bestTangential = 0.0
    /// Best quotient |f(x) - f(y)| / ||x - y|| between two hypercube vertices.
    var bestVertex = 0.0
    /// Candidate starting points, with their free and tangential norms.
    var pool: [(point: [Double], free: Double, tangential: Double)] = []
    let poolLimit = 256

    init(network: Network<Double>, onSphere: Bool, onVertices: Bool, batchRows: Int, threads: Int = 1) {
        self.network = network
        self.threads = max(1, threads)
        self.onSphere = onSphere
        self.onVertices = onVertices
        self.batchRows = max(1, batchRows)
    }

    /// Gradient norms (free, tangential) of every row of `x`, in float64.
    func norms(_ x: Matrix<Double>) -> (free: [Double], tangential: [Double]) {
        let g = network.evaluate(x).gradients
        // |P_x g| (x is on the sphere up to rounding).
        return ((0..<x.rows).map { g.rowNorm($0) }, (0..<x.rows).map { g.rowNorm($0, orthogonalTo: x) })
    }

    /// Probes certified in float64 of each kind, by their float32 norms (`probe`): the pool
    /// keeps half its limit of each kind, so no other probe could enter it.
    var screenedProbes: Int { poolLimit / 2 }

    /// Evaluates every row of `points` in float32 and offers the most promising to the pool;
    /// `visit` sees each free norm (float32's, to about 1e-6: the mean gradient norm needs no
    /// more). The `screenedProbes` rows with the largest free norms, and on the sphere the largest
    /// tangential ones, are evaluated again in float64: only those values enter the bounds and
    /// the pool. For sphere data each point is first put exactly on the sphere (stored data may be
    /// off by rounding), so that its tangential norm belongs to the support. Returns the points as
    /// evaluated and the network's float32 outputs there (`consecutivePairs` screens with them).
    @discardableResult
    mutating func probe(
        _ points: Matrix<Double>,
        visit: (Double) -> Void
    ) -> (points: Matrix<Double>, outputs: [Float]) {
        var x = points
        if onSphere { for i in 0..<x.rows { x.normaliseRow(i) } }
        let batches = stride(from: 0, to: x.rows, by: batchRows).map { x.rows($0..<min(x.rows, $0 + batchRows)) }
        let ranges = ParallelRows.ranges(batches.count, parts: threads)
        let single = network.converted(to: Float.self)
        let screened = ParallelRows.map(ranges.count) { p in
            ranges[p].map { b in
                let evaluated = single.evaluate(batches[b].converted(to: Float.self))
                let g = evaluated.gradients.converted(to: Double.self)
                return (
                    free: (0..<g.rows).map { g.rowNorm($0) },
                    tangential: (0..<g.rows).map { g.rowNorm($0, orthogonalTo: batches[b]) },
                    outputs: evaluated.outputs
                )
            }
        }.flatMap { $0 }
        let free = screened.flatMap(\.free)
        let tangential = screened.flatMap(\.tangential)
        free.forEach(visit)
        func top(_ values: [Double]) -> [Int] {
            Array(values.indices.filter { !values[$0].isNaN }.sorted { values[$0] > values[$1] }.prefix(screenedProbes))
        }
        let chosen = Array(Set(top(free)).union(onSphere ? top(tangential) : [])).sorted()
        let candidates = x.gathering(rows: chosen)
        let certifiedBatches = stride(from: 0, to: candidates.rows, by: batchRows).map {
            candidates.rows($0..<min(candidates.rows, $0 + batchRows))
        }
        var r = 0
        for (batch, certified) in zip(certifiedBatches, evaluated(certifiedBatches)) {
            for i in 0..<batch.rows {
                offer(candidates.row(r), free: certified.free[i], tangential: certified.tangential[i])
                r += 1
            }
        }
        return (x, screened.flatMap(\.outputs))
    }

    /// `norms` of every batch, the batches split over the search's threads (each batch's norms
    /// are the same whichever thread computes them).
    func evaluated(_ batches: [Matrix<Double>]) -> [(free: [Double], tangential: [Double])] {
        let ranges = ParallelRows.ranges(batches.count, parts: threads)
        return ParallelRows.map(ranges.count) { p in ranges[p].map { norms(batches[$0]) } }.flatMap { $0 }
    }

    /// Records a visited point; `tangential` is nil for points off the sphere, which say nothing
    /// about the support.
    mutating func offer(_ point: [Double], free: Double, tangential: Double?) {
        guard free.isFinite else { return }
        bestFree = max(bestFree, free)
        if onSphere, let tangential { bestTangential = max(bestTangential, tangential) }
        pool.append((point, free, onSphere ? tangential ?? -1 : 0))
        if pool.count > 2 * poolLimit { prunePool() }
    }

    /// Keeps the best points by either norm.
    mutating func prunePool() {
        let half = poolLimit / 2
        let byFree = pool.indices.sorted { pool[$0].free > pool[$1].free }.prefix(half)
        let byTangential = pool.indices.sorted { pool[$0].tangential > pool[$1].tangential }.prefix(half)
        let keep = Set(byFree).union(byTangential).sorted()
        pool = keep.map { pool[$0] }
    }

    /// The `count` best points by free and by tangential norm.
    func bestProbes(_ count: Int) -> (free: Matrix<Double>, tangential: Matrix<Double>) {
        let d = network.inputDimension
        func top(_ key: (Int) -> Double) -> Matrix<Double> {
            let chosen = pool.indices.sorted { key($0) > key($1) }.prefix(count)
            return Matrix(rows: chosen.count, columns: d, storage: chosen.flatMap { pool[$0].point })
        }
        return (top { pool[$0].free }, top { pool[$0].tangential })
    }

    /// Pairs of consecutive training points whose quotients are certified (`consecutivePairs`).
    static let screenedPairs = 16

    /// |f(x_i) - f(x_{i+1})| / ||x_i - x_{i+1}|| over consecutive training points: the
    /// `screenedPairs` largest by the float32 outputs `screening` (`probe`'s, at the same
    /// points) are computed again with float64 outputs, and only those count.
    mutating func consecutivePairs(_ x: Matrix<Double>, screening f32: [Float]) {
        precondition(f32.count == x.rows)
        guard x.rows >= 2 else { return }
        var distances = [Double](repeating: 0, count: x.rows - 1)
        for i in 0..<(x.rows - 1) {
            var distance = 0.0
            for j in 0..<x.columns { distance += (x[i, j] - x[i + 1, j]) * (x[i, j] - x[i + 1, j]) }
            distances[i] = distance.squareRoot()
        }
        let screened = distances.indices.filter { distances[$0] > 0 }.map {
            (pair: $0, quotient: abs(Double(f32[$0]) - Double(f32[$0 + 1])) / distances[$0])
        }
        let chosen = screened.filter { !$0.quotient.isNaN }.sorted { $0.quotient > $1.quotient }
            .prefix(Self.screenedPairs).map(\.pair)
        guard !chosen.isEmpty else { return }
        let f = network.outputs(x.gathering(rows: chosen.flatMap { [$0, $0 + 1] }))
        for (c, i) in chosen.enumerated() {
            // A global lower bound only on the sphere: over far-apart points a chordal quotient can
            // exceed the largest tangential gradient (by up to pi/2), which is what the support
            // bound is there. Between two hypercube vertices it is a support quotient.
            let quotient = abs(f[2 * c] - f[2 * c + 1]) / distances[i]
            bestFree = max(bestFree, quotient)
            if onVertices { bestVertex = max(bestVertex, quotient) }
        }
    }

    /// Symmetric difference quotients along the gradient at the best points (projected and
    /// retracted to the sphere for the support bound): certified lower bounds by themselves. On
    /// the sphere the chord of the step is shorter than its arc by a factor 1 - O(step^2), so the
    /// quotient stays a lower bound of the tangential constant to 1e-9.
    mutating func differenceQuotients(at starts: (free: Matrix<Double>, tangential: Matrix<Double>), step: Double) {
        quotients(starts.free, tangential: false, step: step)
        if onSphere { quotients(starts.tangential, tangential: true, step: step) }
    }

    private mutating func quotients(_ x: Matrix<Double>, tangential: Bool, step: Double) {
        guard x.rows > 0 else { return }
        let g = network.evaluate(x).gradients
        var plus = x
        var minus = x
        for i in 0..<x.rows {
            var u = g.row(i)
            if tangential { u = project(u, onto: x.row(i)) }
            let norm = u.norm
            guard norm > 0 else { continue }
            for j in 0..<x.columns {
                plus[i, j] += step * u[j] / norm
                minus[i, j] -= step * u[j] / norm
            }
            if tangential {
                plus.normaliseRow(i)
                minus.normaliseRow(i)
            }
        }
        let fPlus = network.outputs(plus)
        let fMinus = network.outputs(minus)
        for i in 0..<x.rows {
            var distance = 0.0
            for j in 0..<x.columns { distance += (plus[i, j] - minus[i, j]) * (plus[i, j] - minus[i, j]) }
            guard distance > 0 else { continue }
            let quotient = abs(fPlus[i] - fMinus[i]) / distance.squareRoot()
            bestFree = max(bestFree, quotient)
            if tangential { bestTangential = max(bestTangential, quotient) }
        }
    }

    /// Rows of the float64 polish: the best points of each kind after the float32 ascent.
    static let polishRows = 16
    /// Iterations of the polish.
    static let polishSteps = 50

    /// Ascent of the gradient norm from the best probes by free norm and, on the sphere, of the
    /// tangential norm from the best by tangential norm: all of them in one float32 batch
    /// (`GradientAscent<Float>`). Then the best `polishRows` points of each kind are polished in
    /// float64, whose steps still move where float32's no longer do (relu's maxima sit on region
    /// boundaries). Where each row ends is certified: its float64 gradient norms, at the point
    /// itself (put back exactly on the sphere for tangential rows), are what the bounds and the
    /// pool record.
    mutating func ascend(
        from starts: (free: Matrix<Double>, tangential: Matrix<Double>),
        steps: Int,
        rng: inout SeededGenerator,
        stopAt: ContinuousClock.Instant?,
        shouldStop: @Sendable () -> Bool
    ) throws(IsosweepError) {
        try ascendAndCertify(
            GradientAscent<Float>(network, threads: threads),
            from: starts,
            steps: steps,
            rng: &rng,
            stopAt: stopAt,
            shouldStop: shouldStop
        )
        // As many rows of each kind as the ascent had, at most `polishRows`.
        let best = bestProbes(Self.polishRows)
        try ascendAndCertify(
            GradientAscent<Double>(network, threads: threads),
            from: (
                best.free.rows(0..<min(best.free.rows, starts.free.rows)),
                best.tangential.rows(0..<min(best.tangential.rows, starts.tangential.rows))
            ),
            steps: min(steps, Self.polishSteps),
            rng: &rng,
            stopAt: stopAt,
            shouldStop: shouldStop
        )
    }

    private mutating func ascendAndCertify<Scalar>(
        _ ascent: GradientAscent<Scalar>,
        from starts: (free: Matrix<Double>, tangential: Matrix<Double>),
        steps: Int,
        rng: inout SeededGenerator,
        stopAt: ContinuousClock.Instant?,
        shouldStop: @Sendable () -> Bool
    ) throws(IsosweepError) {
        let tangentialStarts = onSphere ? starts.tangential : Matrix(rows: 0, columns: network.inputDimension)
        // Free and tangential rows alternate (then the longer kind's rest), so that every part of
        // a split search gets as many of each: the kinds accept and steer at different rates.
        var order: [(kind: Bool, row: Int)] = []
        for r in 0..<max(starts.free.rows, tangentialStarts.rows) {
            if r < starts.free.rows { order.append((false, r)) }
            if r < tangentialStarts.rows { order.append((true, r)) }
        }
        let tangential = order.map(\.kind)
        var rowsInOrder: [Double] = []
        rowsInOrder.reserveCapacity(order.count * network.inputDimension)
        for (kind, r) in order { rowsInOrder += kind ? tangentialStarts.row(r) : starts.free.row(r) }
        let starting = Matrix(rows: order.count, columns: network.inputDimension, storage: rowsInOrder)
            .converted(to: Scalar.self)
        let ends = try ascent.ascend(
            from: starting,
            tangential: tangential,
            steps: steps,
            rng: &rng,
            stopAt: stopAt,
            shouldStop: shouldStop
        )
        // A row that never moved is its start, already in the pool.
        let moved = (0..<ends.rows).filter { ends.row($0) != starting.row($0) }
        var points = ends.gathering(rows: moved).converted(to: Double.self)
        let movedTangential = moved.map { tangential[$0] }
        for i in 0..<points.rows where movedTangential[i] { points.normaliseRow(i) }
        let starts = Array(stride(from: 0, to: points.rows, by: batchRows))
        let batches = starts.map { points.rows($0..<min(points.rows, $0 + batchRows)) }
        for (start, (batch, certified)) in zip(starts, zip(batches, evaluated(batches))) {
            for i in 0..<batch.rows {
                offer(
                    batch.row(i),
                    free: certified.free[i],
                    tangential: movedTangential[start + i] ? certified.tangential[i] : nil
                )
            }
        }
    }

    func project(_ u: [Double], onto x: [Double]) -> [Double] {
        let xx = x.reduce(0) { $0 + $1 * $1 }
        guard xx > 0 else { return u }
        let ux = zip(u, x).reduce(0) { $0 + $1.0 * $1.1 }
        return zip(u, x).map { $0 - ux / xx * $1 }
    }
}

extension Array where Element == Double {
    var norm: Double { reduce(0) { $0 + $1 * $1 }.squareRoot() }
}
