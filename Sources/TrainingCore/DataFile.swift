import Diagnostics
import Foundation

/// Rows of a data file with their class labels, each row scaled to unit norm.
struct LabeledTable {
    var features: Matrix<Double>
    var labels: [String]

    /// Reads the file named by the cell: CSV, or IDX images with an IDX labels file.
    static func load(parameters p: CellParameters) throws(IsosweepError) -> LabeledTable {
        guard let path = p.dataFile else {
            throw IsosweepError(.invalidParameter, "data: file needs data_file")
        }
        let bytes = try readBytes(path)
        if bytes.count >= 2 && bytes[0] == 0x1F && bytes[1] == 0x8B {
            throw IsosweepError(.badFile, "\(path) is gzip-compressed: decompress it first (gunzip \(path))")
        }
        var table: LabeledTable
        if isIDX(bytes) {
            guard let labelPath = p.labelFile else {
                throw IsosweepError(
                    .invalidParameter,
                    "\(path) is an IDX images file: give its labels with label_file (e.g. train-labels-idx1-ubyte)"
                )
            }
            let images = try IDXArray(bytes: bytes, path: path)
            let labels = try IDXArray(bytes: try readBytes(labelPath), path: labelPath)
            guard labels.dimensions.count == 1 else {
                throw IsosweepError(
                    .badFile,
                    "\(labelPath) should be a one-dimensional IDX labels file, but has dimensions \(labels.dimensions)"
                )
            }
            guard labels.dimensions[0] == images.dimensions[0] else {
                throw IsosweepError(
                    .badFile,
                    "\(path) has \(images.dimensions[0]) images but \(labelPath) has \(labels.dimensions[0]) labels"
                )
            }
            let rows = images.dimensions[0]
            let columns = images.dimensions.dropFirst().reduce(1, *)
            table = LabeledTable(
                features: Matrix(rows: rows, columns: columns, storage: images.values),
                labels: labels.values.map { canonicalLabel(String($0)) }
            )
        } else {
            table = try parseCSV(bytes, path: path, labelColumn: p.labelColumn)
        }
        try table.scaleRowsToUnitNorm(path: path)
        return table
    }

    private static func readBytes(_ path: String) throws(IsosweepError) -> [UInt8] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw IsosweepError(
                .badFile,
                "data file \(path) does not exist: check the path (relative paths start at the working directory)"
            )
        }
        guard !isDirectory.boolValue else { throw IsosweepError(.badFile, "\(path) is a directory, not a data file") }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw IsosweepError(.badFile, "cannot read \(path): check its permissions")
        }
        return [UInt8](data)
    }

    private static func isIDX(_ bytes: [UInt8]) -> Bool {
        bytes.count >= 4 && bytes[0] == 0 && bytes[1] == 0 && [0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E].contains(bytes[2])
            && bytes[3] >= 1
    }

    private static func parseCSV(
        _ bytes: [UInt8],
        path: String,
        labelColumn: Int?
    ) throws(IsosweepError) -> LabeledTable {
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw IsosweepError(.badFile, "\(path) is neither an IDX file nor UTF-8 CSV text")
        }
        var values: [Double] = []
        var labels: [String] = []
        var columns = -1
        var lineNumber = 0
        for rawLine in text.split(separator: "\n", omittingEmptySubsequences: false) {
            lineNumber += 1
            let line = rawLine.hasSuffix("\r") ? rawLine.dropLast() : rawLine
            if line.allSatisfy({ $0 == " " || $0 == "\t" }) { continue }
            let fields = line.split(separator: ",", omittingEmptySubsequences: false).map {
                $0.trimmingSpacesAndQuotes()
            }
            guard fields.count >= 2 else {
                throw IsosweepError(
                    .badFile,
                    "\(path) line \(lineNumber): a CSV row needs at least one feature and a label, found \(fields.count) field"
                )
            }
            let labelIndex = labelColumn ?? (fields.count - 1)
            guard labelIndex >= 0 && labelIndex < fields.count else {
                throw IsosweepError(
                    .invalidParameter,
                    "label_column \(labelIndex) is outside the \(fields.count) columns of \(path) (columns count from 0)"
                )
            }
            var row: [Double] = []
            var numeric = true
            for (index, field) in fields.enumerated() where index != labelIndex {
                guard let value = Double(field), value.isFinite else {
                    numeric = false
                    break
                }
                row.append(value)
            }
            if !numeric {
                if labels.isEmpty && columns < 0 {
                    columns = 0
                    continue
                }  // a header line
                throw IsosweepError(
                    .badFile,
                    "\(path) line \(lineNumber): a feature is not a finite number; every column but the label must be numeric"
                )
            }
            if columns <= 0 {
                columns = row.count
            } else if row.count != columns {
                throw IsosweepError(
                    .badFile,
                    "\(path) line \(lineNumber) has \(row.count) features where earlier rows have \(columns)"
                )
            }
            values += row
            labels.append(canonicalLabel(fields[labelIndex]))
        }
        guard !labels.isEmpty else { throw IsosweepError(.badFile, "\(path) holds no data rows") }
        return LabeledTable(features: Matrix(rows: labels.count, columns: columns, storage: values), labels: labels)
    }

    private mutating func scaleRowsToUnitNorm(path: String) throws(IsosweepError) {
        for i in 0..<features.rows {
            var norm = 0.0
            for j in 0..<features.columns { norm += features[i, j] * features[i, j] }
            guard norm > 0 && norm.isFinite else {
                throw IsosweepError(
                    .badFile,
                    "row \(i + 1) of \(path) is all zeros (or not finite) and cannot be scaled to unit norm: remove it"
                )
            }
            let scale = 1 / norm.squareRoot()
            for j in 0..<features.columns { features[i, j] *= scale }
        }
    }
}

/// Labels compare as text, with "3", "3.0" and " 3" the same class.
func canonicalLabel(_ text: String) -> String {
    let trimmed = Substring(text).trimmingSpacesAndQuotes()
    if let value = Double(trimmed), value.isFinite, value == value.rounded(), abs(value) < 1e15 {
        return String(Int64(value))
    }
    return trimmed
}

/// An IDX array (the format of the MNIST files): big-endian header, then the values.
struct IDXArray {
    var dimensions: [Int]
    var values: [Double]

    init(bytes: [UInt8], path: String) throws(IsosweepError) {
        func bad(_ why: String) -> IsosweepError { IsosweepError(.badFile, "\(path) is not a valid IDX file: \(why)") }
        guard bytes.count >= 4, bytes[0] == 0, bytes[1] == 0 else {
            throw bad("the magic number must start with two zero bytes")
        }
        let type = bytes[2]
        let rank = Int(bytes[3])
        let width: Int
        switch type {
        case 0x08, 0x09: width = 1
        case 0x0B: width = 2
        case 0x0C, 0x0D: width = 4
        case 0x0E: width = 8
        default: throw bad("unknown element type 0x\(String(type, radix: 16))")
        }
        guard rank >= 1, bytes.count >= 4 + 4 * rank else { throw bad("the header is truncated") }
        func u32(_ offset: Int) -> UInt32 {
            (UInt32(bytes[offset]) << 24) | (UInt32(bytes[offset + 1]) << 16) | (UInt32(bytes[offset + 2]) << 8)
                | UInt32(bytes[offset + 3])
        }
        dimensions = (0..<rank).map { Int(u32(4 + 4 * $0)) }
        var count = 1
        for dimension in dimensions {
            let (product, overflow) = count.multipliedReportingOverflow(by: dimension)
            guard !overflow, product <= 1 << 34 else { throw bad("dimensions \(dimensions) are too large") }
            count = product
        }
        let start = 4 + 4 * rank
        guard bytes.count - start == count * width else {
            throw bad(
                "dimensions \(dimensions) need \(count * width) bytes of data, the file has \(bytes.count - start)"
            )
        }
        values = [Double](repeating: 0, count: count)
        for index in 0..<count {
            let o = start + index * width
            switch type {
            case 0x08: values[index] = Double(bytes[o])
            case 0x09: values[index] = Double(Int8(bitPattern: bytes[o]))
            case 0x0B: values[index] = Double(Int16(bitPattern: UInt16(bytes[o]) << 8 | UInt16(bytes[o + 1])))
            case 0x0C: values[index] = Double(Int32(bitPattern: u32(o)))
            case 0x0D: values[index] = Double(Float(bitPattern: u32(o)))
            default:
                let bits = UInt64(u32(o)) << 32 | UInt64(u32(o + 4))
                values[index] = Double(bitPattern: bits)
            }
            guard values[index].isFinite else { throw bad("value \(index) is not finite") }
        }
    }
}

extension Substring {
    func trimmingSpacesAndQuotes() -> String {
        var s = self
        while let f = s.first, f == " " || f == "\t" || f == "\"" { s.removeFirst() }
        while let l = s.last, l == " " || l == "\t" || l == "\"" { s.removeLast() }
        return String(s)
    }
}
