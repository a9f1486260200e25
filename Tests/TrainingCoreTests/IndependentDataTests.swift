import Testing

@testable import TrainingCore

/// Every (n, d, seed) has a dataset of its own (science version 5): a cell of n = 512 does not
/// hold n = 256's points and more, so fits over n and intervals over seeds see independent samples.
@Suite struct IndependentDataTests {
    func data(n: Int, d: Int = 16, seed: Int = 0, labels: LabelKind = .random) throws -> CellData {
        try CellData.make(for: CellParameters(n: n, d: d, width: 8, seed: seed, labels: labels))
    }

    @Test(arguments: [DataKind.sphere, .gaussian, .hypercube])
    func anotherNDrawsOtherPoints(_ kind: DataKind) throws {
        let small = try CellData.make(for: CellParameters(n: 256, d: 16, width: 8, seed: 0, data: kind))
        let large = try CellData.make(for: CellParameters(n: 512, d: 16, width: 8, seed: 0, data: kind))
        #expect(small.train.inputs.row(0) != large.train.inputs.row(0), "\(kind): the first row is shared")
        // Not shifted either: none of n = 256's points is among n = 512's.
        let largeRows = Set((0..<large.train.count).map { large.train.inputs.row($0) })
        let shared = (0..<small.train.count).filter { largeRows.contains(small.train.inputs.row($0)) }
        #expect(kind == .hypercube || shared.isEmpty, "\(kind): \(shared.count) points shared")
        #expect(small.test.inputs.row(0) != large.test.inputs.row(0))
    }

    @Test func theSameCellHasTheSameDataAndAnotherDOrSeedDoesNot() throws {
        let a = try data(n: 256)
        let again = try data(n: 256)
        #expect(a.train.inputs == again.train.inputs && a.train.labels == again.train.labels)
        #expect(a.test.inputs == again.test.inputs && a.test.labels == again.test.labels)
        #expect(try data(n: 256, seed: 1).train.inputs.row(0) != a.train.inputs.row(0))
        // The labels are drawn anew too, not only the points.
        let labelsOf512 = try data(n: 512).train.labels
        #expect(Array(labelsOf512.prefix(256)) != a.train.labels)
        #expect(
            CellData.dataSeed(of: CellParameters(n: 256, d: 16, width: 8, seed: 0))
                != CellData.dataSeed(of: CellParameters(n: 256, d: 17, width: 8, seed: 0))
        )
    }

    /// The teacher is the task, not a sample: at one seed and d it is the same direction t at every
    /// n, so both datasets are labelled sign(<x, t>) by the seed's teacher stream (eta = 0).
    @Test func theTeacherIsTheSameAtEveryN() throws {
        var rng = SeededGenerator(seed: 0, stream: .teacher)
        let teacher = InputDistribution.sphere.sample(1, d: 16, using: &rng).row(0)
        for n in [256, 512] {
            let data = try data(n: n, labels: .teacher)
            for i in 0..<data.train.count {
                let dot = zip(data.train.inputs.row(i), teacher).reduce(0) { $0 + $1.0 * $1.1 }
                #expect(data.train.labels[i] == (dot >= 0 ? 1 : -1), "n = \(n), row \(i)")
            }
        }
    }
}
