public import Diagnostics

/// Inputs with their labels, one row per point.
public struct Dataset<Scalar: BLASScalar>: Sendable, Equatable {
    /// Inputs, n x d.
    public var inputs: Matrix<Scalar>
    /// Labels in [-1, 1], n of them.
    public var labels: [Scalar]

    /// Creates a dataset; rows and labels must agree.
    public init(inputs: Matrix<Scalar>, labels: [Scalar]) {
        precondition(inputs.rows == labels.count, "\(inputs.rows) inputs but \(labels.count) labels")
        self.inputs = inputs
        self.labels = labels
    }

    /// Number of points.
    public var count: Int { labels.count }

    /// The same data in another precision.
    public func converted<Other: BLASScalar>(to: Other.Type = Other.self) -> Dataset<Other> {
        Dataset<Other>(inputs: inputs.converted(), labels: labels.map { Other($0) })
    }
}

/// A distribution of inputs that fresh points can be drawn from.
public enum InputDistribution: Sendable, Equatable {
    /// Uniform on the unit sphere.
    case sphere
    /// N(0, I_d / d).
    case gaussian
    /// Uniform on the scaled hypercube's corners.
    case hypercube
    /// Draws rows of a fixed matrix (held-out rows of a data file).
    case empirical(Matrix<Double>)

    /// Draws `count` points in dimension `d`.
    public func sample(_ count: Int, d: Int, using rng: inout SeededGenerator) -> Matrix<Double> {
        var x = Matrix<Double>(rows: count, columns: d)
        switch self {
        case .sphere:
            for i in 0..<count {
                var norm = 0.0
                repeat {
                    norm = 0
                    for j in 0..<d {
                        let g = rng.nextGaussian()
                        x[i, j] = g
                        norm += g * g
                    }
                } while norm == 0
                let scale = 1 / norm.squareRoot()
                for j in 0..<d { x[i, j] *= scale }
            }
        case .gaussian:
            let scale = 1 / Double(d).squareRoot()
            for index in 0..<(count * d) { x.storage[index] = rng.nextGaussian() * scale }
        case .hypercube:
            let value = 1 / Double(d).squareRoot()
            for index in 0..<(count * d) { x.storage[index] = rng.next() & 1 == 0 ? value : -value }
        case .empirical(let rows):
            precondition(rows.rows > 0 && rows.columns == d)
            for i in 0..<count {
                let source = Int(rng.next() % UInt64(rows.rows))
                for j in 0..<d { x[i, j] = rows[source, j] }
            }
        }
        return x
    }

    /// Where the data lives, so where the law's Lipschitz constant is measured. File rows are
    /// scaled to unit norm, so their support is the sphere as well.
    public var support: Support {
        switch self {
        case .sphere, .empirical: .sphere
        case .gaussian: .space
        case .hypercube: .vertices
        }
    }
}

/// The set the support bound `lip_support_lower` is measured on.
public enum Support: String, Sendable {
    /// R^d: gaussian data.
    case space = "R^d"
    /// The unit sphere, with tangential gradients and geodesic distances: sphere and file data.
    case sphere = "unit sphere"
    /// The vertices of the hypercube {-1/sqrt(d), 1/sqrt(d)}^d, with quotients between vertices.
    case vertices = "hypercube vertices"
}

/// The training and test data of one cell, with the noise level its labels carry.
public struct CellData: Sendable {
    /// The n training points.
    public var train: Dataset<Double>
    /// Fresh points from the same distribution (or held-out file rows), with labels made the same way.
    public var test: Dataset<Double>
    /// sigma^2 = E[Var(y | x)].
    public var noiseLevel: Double
    /// Where fresh probe points for the Lipschitz bounds come from.
    public var distribution: InputDistribution

    /// The seed of a cell's training and test points and their labels: its seed mixed with n and
    /// d, so that every (n, d, seed) has a dataset of its own (science version 5): the points of
    /// n = 512 are not n = 256's and more, and fits over n and intervals over seeds see independent
    /// samples. The teacher (a direction of the task, not a sample) depends on the seed only.
    public static func dataSeed(of p: CellParameters) -> UInt64 {
        SeededGenerator.seed(mixing: [UInt64(p.seed), UInt64(p.n), UInt64(p.d)])
    }

    /// Makes the data of a cell from its seed (synthetic) or its data file.
    public static func make(for parameters: CellParameters) throws(IsosweepError) -> CellData {
        let p = parameters.resolved()
        let seed = dataSeed(of: p)
        let labels = p.resolvedLabels
        switch p.data {
        case .sphere, .gaussian, .hypercube:
            let distribution: InputDistribution =
                p.data == .sphere ? .sphere : p.data == .gaussian ? .gaussian : .hypercube
            var dataRNG = SeededGenerator(seed: seed, stream: .trainingData)
            var testRNG = SeededGenerator(seed: seed, stream: .testData)
            let trainX = distribution.sample(p.n, d: p.d, using: &dataRNG)
            let testX = distribution.sample(p.nTest, d: p.d, using: &testRNG)
            var teacherRNG = SeededGenerator(seed: UInt64(p.seed), stream: .teacher)
            let teacher = InputDistribution.sphere.sample(1, d: p.d, using: &teacherRNG).storage
            var labelRNG = SeededGenerator(seed: seed, stream: .labels)
            var testLabelRNG = SeededGenerator(seed: seed, stream: .testLabels)
            let makeLabels = { (x: Matrix<Double>, rng: inout SeededGenerator) -> [Double] in
                switch labels {
                case .random, .file:
                    return (0..<x.rows).map { _ in rng.next() & 1 == 0 ? -1.0 : 1.0 }
                case .teacher:
                    return (0..<x.rows).map { i in
                        var dot = 0.0
                        for j in 0..<x.columns { dot += x[i, j] * teacher[j] }
                        let clean: Double = dot >= 0 ? 1 : -1
                        return rng.nextUniform() < p.eta ? -clean : clean
                    }
                }
            }
            let train = Dataset(inputs: trainX, labels: makeLabels(trainX, &labelRNG))
            let test = Dataset(inputs: testX, labels: makeLabels(testX, &testLabelRNG))
            let noise = labels == .random ? 1.0 : 4 * p.eta * (1 - p.eta)
            return CellData(train: train, test: test, noiseLevel: noise, distribution: distribution)
        case .file:
            let table = try LabeledTable.load(parameters: p)
            return try fromFile(table, parameters: p)
        }
    }

    private static func fromFile(_ table: LabeledTable, parameters p: CellParameters) throws(IsosweepError) -> CellData
    {
        guard table.features.columns == p.d else {
            throw IsosweepError(
                .invalidParameter,
                "d = \(p.d) does not match \(p.dataFile ?? "the data file"), whose rows have \(table.features.columns) features: set d to \(table.features.columns)"
            )
        }
        let classes = p.classes ?? []
        var kept: [Int] = []
        var classOf: [Double] = []
        for (index, label) in table.labels.enumerated() {
            if p.resolvedLabels == .file {
                if label == classes[0] {
                    kept.append(index)
                    classOf.append(-1)
                } else if label == classes[1] {
                    kept.append(index)
                    classOf.append(1)
                }
            } else {
                kept.append(index)
                classOf.append(0)
            }
        }
        if p.resolvedLabels == .file {
            for c in classes where !table.labels.contains(c) {
                let seen = Array(Set(table.labels)).sorted().prefix(12).joined(separator: ", ")
                throw IsosweepError(
                    .invalidParameter,
                    "class \(c) does not occur in \(p.dataFile ?? "the data file"); its classes include: \(seen)"
                )
            }
        }
        guard p.n < kept.count || (p.n == kept.count) else {
            throw IsosweepError(
                .invalidParameter,
                "n = \(p.n) is larger than the \(kept.count) usable rows of \(p.dataFile ?? "the data file"): lower n"
            )
        }
        // Shuffle the usable rows by the seed; the first n train, the rest (up to n_test) test.
        var order = Array(kept.indices)
        var rng = SeededGenerator(seed: dataSeed(of: p), stream: .fileSelection)
        for i in stride(from: order.count - 1, to: 0, by: -1) {
            let j = Int(rng.next() % UInt64(i + 1))
            order.swapAt(i, j)
        }
        var labelRNG = SeededGenerator(seed: dataSeed(of: p), stream: .labels)
        var teacherRNG = SeededGenerator(seed: UInt64(p.seed), stream: .teacher)
        let teacher = InputDistribution.sphere.sample(1, d: p.d, using: &teacherRNG).storage
        func take(_ positions: ArraySlice<Int>) -> Dataset<Double> {
            var x = Matrix<Double>(rows: positions.count, columns: p.d)
            var y: [Double] = []
            for (row, position) in positions.enumerated() {
                let source = kept[position]
                var dot = 0.0
                for j in 0..<p.d {
                    x[row, j] = table.features[source, j]
                    dot += x[row, j] * teacher[j]
                }
                switch p.resolvedLabels {
                case .random:
                    y.append(labelRNG.next() & 1 == 0 ? -1 : 1)
                case .teacher:
                    let clean: Double = dot >= 0 ? 1 : -1
                    y.append(labelRNG.nextUniform() < p.eta ? -clean : clean)
                case .file:
                    y.append(labelRNG.nextUniform() < p.eta ? -classOf[position] : classOf[position])
                }
            }
            return Dataset(inputs: x, labels: y)
        }
        let train = take(order[0..<p.n])
        let testEnd = min(order.count, p.n + p.nTest)
        let test = take(order[p.n..<testEnd])
        let noise = p.resolvedLabels == .random ? 1.0 : 4 * p.eta * (1 - p.eta)
        // Fresh probes are held-out rows when there are any, else the training rows themselves.
        let pool = test.count > 0 ? test.inputs : train.inputs
        return CellData(train: train, test: test, noiseLevel: noise, distribution: .empirical(pool))
    }
}
