import Diagnostics
import Foundation
import Testing
import TrainingCore

/// Cells on data files: CSV and MNIST's IDX format, and every way such a file can be wrong.
@Suite struct DataFileTests {
    /// A CSV of two Gaussian blobs (classes "cat" and "dog") plus a third class, with a header.
    func writeCSV(rows: Int = 120, features: Int = 5) throws -> URL {
        var rng = SeededGenerator(seed: 1, stream: .trainingData)
        var text = (0..<features).map { "f\($0)" }.joined(separator: ",") + ",label\n"
        for i in 0..<rows {
            let label = ["cat", "dog", "bird"][i % 3]
            let shift = label == "cat" ? 2.0 : -2.0
            text += (0..<features).map { j in String(rng.nextGaussian() + (j == 0 ? shift : 0)) }.joined(separator: ",")
            text += ",\(label)\n"
        }
        let url = try temporaryDirectory().appendingPathComponent("blobs.csv")
        try text.write(to: url, atomically: true, encoding: .utf8)
        return url
    }

    /// IDX images (unsigned bytes, n x 3 x 3) and labels, as MNIST stores them.
    func writeIDX(count: Int = 60) throws -> (URL, URL) {
        let dir = try temporaryDirectory()
        var images: [UInt8] = [0, 0, 0x08, 3]
        for dimension in [count, 3, 3] { images += withUnsafeBytes(of: UInt32(dimension).bigEndian, Array.init) }
        var labels: [UInt8] = [0, 0, 0x08, 1] + withUnsafeBytes(of: UInt32(count).bigEndian, Array.init)
        for i in 0..<count {
            let digit = UInt8(i % 4)
            labels.append(digit)
            for pixel in 0..<9 { images.append(UInt8((Int(digit) * 40 + pixel * 7 + i) % 256) | 1) }
        }
        let imageURL = dir.appendingPathComponent("images-idx3-ubyte")
        let labelURL = dir.appendingPathComponent("labels-idx1-ubyte")
        try Data(images).write(to: imageURL)
        try Data(labels).write(to: labelURL)
        return (imageURL, labelURL)
    }

    @Test func csvCellTrainsOnTwoClassesScaledToUnitNorm() throws {
        let url = try writeCSV()
        let cell = CellParameters(
            n: 50,
            d: 5,
            width: 16,
            data: .file,
            dataFile: url.path,
            classes: ["cat", "dog"],
            maxSteps: 500
        )
        let data = try CellData.make(for: cell)
        #expect(data.train.count == 50)
        #expect(data.test.count == 30)  // 80 rows of the two classes, 50 train, the rest test
        #expect(data.noiseLevel == 0)
        for i in 0..<50 {
            #expect(abs(data.train.inputs.row(i).reduce(0) { $0 + $1 * $1 } - 1) < 1e-12)
            // cat (first class) -> -1: its first feature is shifted up.
            #expect(
                data.train.labels[i] == (data.train.inputs[i, 0] > 0 ? -1 : 1) || abs(data.train.inputs[i, 0]) < 0.5
            )
        }
        let m = try Cell.run(cell).result.metrics
        #expect(m.fitFraction! > 0.95)
        #expect(m.testMSE != nil)
        // File rows are unit vectors: the support bound is tangential on the sphere, the floor geodesic.
        #expect(m.lipSupportLower! > 0 && m.lipSupportLower! <= m.lipLower!)
        let floor = InterpolationFloor.value(
            inputs: data.train.inputs.converted(to: Float.self).converted(to: Double.self),
            labels: data.train.labels,
            metric: .geodesic
        )
        #expect(m.interpFloor == floor)
    }

    @Test func idxCellReadsMNISTFormat() throws {
        let (images, labels) = try writeIDX()
        let cell = CellParameters(
            n: 20,
            d: 9,
            width: 8,
            data: .file,
            dataFile: images.path,
            labelFile: labels.path,
            classes: ["1", "3"],
            eta: 0.1,
            maxSteps: 50
        )
        let data = try CellData.make(for: cell)
        #expect(data.train.count == 20 && data.test.count == 10)
        #expect(abs(data.noiseLevel - 0.36) < 1e-15)
        let result = try Cell.run(cell).result.metrics
        #expect(result.p == 8 * 11 + 1)
    }

    @Test func badFilesAreRefusedWithTheReason() throws {
        let csv = try writeCSV()
        let (images, labels) = try writeIDX()
        let dir = try temporaryDirectory()
        let ragged = dir.appendingPathComponent("ragged.csv")
        try "1,2,3,a\n1,2,b\n".write(to: ragged, atomically: true, encoding: .utf8)
        let text = dir.appendingPathComponent("text.csv")
        try "x,y\n1,hello,a\n".write(to: text, atomically: true, encoding: .utf8)
        let truncated = dir.appendingPathComponent("truncated-idx")
        try Data(try Data(contentsOf: images).prefix(40)).write(to: truncated)
        let gzip = dir.appendingPathComponent("x.gz")
        try Data([0x1F, 0x8B, 8, 0]).write(to: gzip)
        let zeros = dir.appendingPathComponent("zeros.csv")
        try "0,0,a\n1,1,b\n".write(to: zeros, atomically: true, encoding: .utf8)

        func expectError(_ cell: CellParameters, _ words: String...) {
            do {
                _ = try CellData.make(for: cell)
                Issue.record("no error for \(cell)")
            } catch {
                for word in words { #expect(error.message.contains(word), "\(error.message)") }
            }
        }
        let cats = ["cat", "dog"]
        expectError(
            CellParameters(n: 10, d: 4, width: 1, data: .file, dataFile: csv.path, classes: cats),
            "d = 4",
            "5 features"
        )
        expectError(
            CellParameters(n: 81, d: 5, width: 1, data: .file, dataFile: csv.path, classes: cats),
            "n = 81",
            "80 usable rows"
        )
        expectError(
            CellParameters(n: 10, d: 5, width: 1, data: .file, dataFile: csv.path, classes: ["cat", "cow"]),
            "class cow",
            "bird"
        )
        expectError(
            CellParameters(n: 10, d: 5, width: 1, data: .file, dataFile: dir.path + "/missing.csv", classes: cats),
            "does not exist"
        )
        expectError(
            CellParameters(n: 1, d: 3, width: 1, data: .file, dataFile: ragged.path, classes: ["a", "b"]),
            "line 2",
            "2 features"
        )
        expectError(
            CellParameters(n: 1, d: 1, width: 1, data: .file, dataFile: text.path, classes: ["a", "b"]),
            "line 2",
            "numeric"
        )
        expectError(
            CellParameters(
                n: 1,
                d: 9,
                width: 1,
                data: .file,
                dataFile: truncated.path,
                labelFile: labels.path,
                classes: ["1", "2"]
            ),
            "not a valid IDX file"
        )
        expectError(
            CellParameters(n: 1, d: 9, width: 1, data: .file, dataFile: images.path, classes: ["1", "2"]),
            "label_file"
        )
        expectError(
            CellParameters(n: 1, d: 9, width: 1, data: .file, dataFile: gzip.path, classes: ["1", "2"]),
            "gunzip"
        )
        expectError(
            CellParameters(n: 1, d: 2, width: 1, data: .file, dataFile: zeros.path, classes: ["a", "b"]),
            "row 1",
            "all zeros"
        )
        expectError(
            CellParameters(n: 1, d: 2, width: 1, data: .file, dataFile: dir.path, classes: ["a", "b"]),
            "directory"
        )
    }
}
