public import Diagnostics
public import Foundation
import RealModule

/// One tensor of a safetensors file.
public struct Tensor: Sendable, Equatable {
    /// Element types isosweep reads (it writes F32).
    public enum DType: String, Sendable {
        case f64 = "F64"
        case f32 = "F32"
        case f16 = "F16"
        case bf16 = "BF16"

        var size: Int {
            switch self {
            case .f64: 8
            case .f32: 4
            case .f16, .bf16: 2
            }
        }
    }

    /// Element type in the file.
    public var dtype: DType
    /// Shape, outermost first.
    public var shape: [Int]
    /// Values, row-major, widened to double (exact for every supported type).
    public var values: [Double]

    /// A tensor of float32 values.
    public init(shape: [Int], float32 values: [Float]) {
        dtype = .f32
        self.shape = shape
        self.values = values.map { Double($0) }
    }

    /// A tensor of any supported type.
    public init(dtype: DType, shape: [Int], values: [Double]) {
        self.dtype = dtype
        self.shape = shape
        self.values = values
    }
}

/// The safetensors format (huggingface/safetensors): an 8-byte little-endian header length, a
/// JSON header of {name: {dtype, shape, data_offsets}} plus string `__metadata__`, then the data.
public enum SafeTensors {
    /// The largest header accepted (the Python package's own limit is 100 MB).
    static let maximumHeaderBytes = 100_000_000

    /// Encodes tensors and string metadata; data is laid out contiguously in name order.
    public static func encode(_ tensors: [String: Tensor], metadata: [String: String]) throws(IsosweepError) -> Data {
        var header: [String: Any] = [:]
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        var body = Data()
        for name in tensors.keys.sorted() {
            let tensor = tensors[name]!
            let count = tensor.shape.reduce(1, *)
            guard count == tensor.values.count else {
                throw IsosweepError(
                    .invalidParameter,
                    "tensor \(name) has shape \(tensor.shape) but \(tensor.values.count) values"
                )
            }
            let start = body.count
            for value in tensor.values {
                switch tensor.dtype {
                case .f32: withUnsafeBytes(of: Float(value).bitPattern.littleEndian) { body.append(contentsOf: $0) }
                case .f64: withUnsafeBytes(of: value.bitPattern.littleEndian) { body.append(contentsOf: $0) }
                case .f16, .bf16:
                    throw IsosweepError(.invalidParameter, "isosweep writes F32 and F64 tensors only")
                }
            }
            header[name] = [
                "dtype": tensor.dtype.rawValue, "shape": tensor.shape, "data_offsets": [start, body.count],
            ]
        }
        var json: Data
        do {
            json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        } catch {
            throw IsosweepError(.invalidParameter, "cannot encode the safetensors header: \(error)")
        }
        // Pad with spaces so the data starts 8-byte aligned, as the Python package does.
        while json.count % 8 != 0 { json.append(UInt8(ascii: " ")) }
        var file = Data()
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { file.append(contentsOf: $0) }
        file.append(json)
        file.append(body)
        return file
    }

    /// Decodes a safetensors file, validating every offset, size and type.
    public static func decode(
        _ data: Data,
        name: String = "the file"
    ) throws(IsosweepError) -> (tensors: [String: Tensor], metadata: [String: String]) {
        let bytes = [UInt8](data)
        let (entries, metadata, dataStart) = try header(of: bytes, name: name)
        var tensors: [String: Tensor] = [:]
        for entry in entries {
            let dtype = entry.dtype
            var values = [Double](repeating: 0, count: entry.count)
            let base = dataStart + entry.start
            for index in 0..<entry.count {
                let o = base + index * dtype.size
                switch dtype {
                case .f64:
                    var bits: UInt64 = 0
                    for b in 0..<8 { bits |= UInt64(bytes[o + b]) << (8 * UInt64(b)) }
                    values[index] = Double(bitPattern: bits)
                case .f32:
                    var bits: UInt32 = 0
                    for b in 0..<4 { bits |= UInt32(bytes[o + b]) << (8 * UInt32(b)) }
                    values[index] = Double(Float(bitPattern: bits))
                case .f16:
                    values[index] = halfToDouble(UInt16(bytes[o]) | UInt16(bytes[o + 1]) << 8)
                case .bf16:
                    let bits = UInt32(UInt16(bytes[o]) | UInt16(bytes[o + 1]) << 8) << 16
                    values[index] = Double(Float(bitPattern: bits))
                }
            }
            tensors[entry.name] = Tensor(dtype: dtype, shape: entry.shape, values: values)
        }
        return (tensors, metadata)
    }

    /// One tensor's place in a file: its data is bytes start..<start + count * dtype.size of the
    /// data section.
    struct Entry {
        var name: String
        var dtype: Tensor.DType
        var shape: [Int]
        var count: Int
        var start: Int
    }

    /// Reads and validates a file's header: its tensors (every offset within the data, every size
    /// matching its shape and type), its metadata and where its data starts.
    static func header(
        of bytes: [UInt8],
        name: String
    ) throws(IsosweepError) -> (entries: [Entry], metadata: [String: String], dataStart: Int) {
        func bad(_ why: String) -> IsosweepError {
            IsosweepError(.badFile, "\(name) is not a valid safetensors file: \(why)")
        }
        guard bytes.count >= 8 else { throw bad("it is shorter than the 8-byte header length") }
        var headerLength: UInt64 = 0
        for i in 0..<8 { headerLength |= UInt64(bytes[i]) << (8 * UInt64(i)) }
        guard headerLength <= UInt64(maximumHeaderBytes), Int(headerLength) <= bytes.count - 8 else {
            throw bad("the header length \(headerLength) exceeds the file (\(bytes.count) bytes)")
        }
        let headerEnd = 8 + Int(headerLength)
        let object: Any
        do {
            object = try JSONSerialization.jsonObject(with: Data(bytes[8..<headerEnd]))
        } catch {
            throw bad("the header is not JSON")
        }
        guard let header = object as? [String: Any] else { throw bad("the header is not a JSON object") }
        let bufferLength = bytes.count - headerEnd
        var metadata: [String: String] = [:]
        var entries: [Entry] = []
        for (key, entry) in header {
            if key == "__metadata__" {
                guard let values = entry as? [String: Any] else { throw bad("__metadata__ is not an object") }
                for (k, v) in values {
                    guard let s = v as? String else { throw bad("metadata value \(k) is not a string") }
                    metadata[k] = s
                }
                continue
            }
            guard let info = entry as? [String: Any],
                let dtypeName = info["dtype"] as? String,
                let shapeValues = info["shape"] as? [Any],
                let offsetValues = info["data_offsets"] as? [Any], offsetValues.count == 2
            else { throw bad("tensor \(key) lacks dtype, shape or data_offsets") }
            guard let dtype = Tensor.DType(rawValue: dtypeName) else {
                throw bad("tensor \(key) has dtype \(dtypeName); isosweep reads F64, F32, F16 and BF16")
            }
            let shape = try shapeValues.map { (value: Any) throws(IsosweepError) -> Int in
                guard let number = value as? NSNumber, let dimension = Int(exactly: number.doubleValue), dimension >= 0,
                    dimension < 1 << 40
                else {
                    throw bad("tensor \(key) has an invalid shape")
                }
                return dimension
            }
            let offsets = try offsetValues.map { (value: Any) throws(IsosweepError) -> Int in
                guard let number = value as? NSNumber, let offset = Int(exactly: number.doubleValue), offset >= 0 else {
                    throw bad("tensor \(key) has invalid data_offsets")
                }
                return offset
            }
            var count = 1
            for dimension in shape {
                let (product, overflow) = count.multipliedReportingOverflow(by: dimension)
                guard !overflow, product <= bufferLength else {
                    throw bad("tensor \(key)'s shape \(shape) is larger than the file")
                }
                count = product
            }
            guard offsets[0] <= offsets[1], offsets[1] <= bufferLength, offsets[1] - offsets[0] == count * dtype.size
            else {
                throw bad(
                    "tensor \(key)'s data_offsets \(offsets) do not match its shape \(shape) and dtype \(dtypeName) within \(bufferLength) data bytes"
                )
            }
            entries.append(Entry(name: key, dtype: dtype, shape: shape, count: count, start: offsets[0]))
        }
        return (entries, metadata, headerEnd)
    }

    /// IEEE 754 binary16 to double (portable: Float16 is not available on every platform).
    public static func halfToDouble(_ bits: UInt16) -> Double {
        let sign: Double = bits & 0x8000 != 0 ? -1 : 1
        let exponent = Int((bits >> 10) & 0x1F)
        let fraction = Double(bits & 0x3FF)
        switch exponent {
        case 0: return sign * fraction * 0x1p-24
        case 31: return fraction == 0 ? sign * .infinity : .nan
        default: return sign * (1 + fraction / 1024) * Double.pow(2, Double(exponent - 15))
        }
    }
}

/// A trained network with what it was trained on, as saved in a `.safetensors` file.
public struct SavedNetwork: Sendable {
    /// The network, widened to double.
    public var network: Network<Double>
    /// The training inputs, when saved (`X` [n, d]).
    public var inputs: Matrix<Double>?
    /// The training labels, when saved (`y` [n]).
    public var labels: [Double]?
    /// The header's string metadata.
    public var metadata: [String: String]

    /// Metadata key of the format marker.
    public static let formatKey = "format"
    /// Format marker value.
    public static let formatName = "isosweep-network-v1"

    /// Encodes a network (tensors W, b, a, c as F32) with optional training data and metadata.
    public static func encode(
        _ network: Network<Float>,
        trainingData: Dataset<Float>?,
        metadata: [String: String]
    ) throws(IsosweepError) -> Data {
        var tensors: [String: Tensor] = [
            "W": Tensor(shape: [network.width, network.inputDimension], float32: network.weights.storage),
            "b": Tensor(shape: [network.width], float32: network.biases),
            "a": Tensor(shape: [network.width], float32: network.outputWeights),
            "c": Tensor(shape: [1], float32: [network.outputBias]),
        ]
        if let trainingData {
            tensors["X"] = Tensor(
                shape: [trainingData.count, network.inputDimension],
                float32: trainingData.inputs.storage
            )
            tensors["y"] = Tensor(shape: [trainingData.count], float32: trainingData.labels)
        }
        var meta = metadata
        meta[formatKey] = formatName
        meta["activation"] = network.activation.rawValue
        return try SafeTensors.encode(tensors, metadata: meta)
    }

    /// Reads a network from a safetensors file. Tensors named W, b, a, c are used as they are;
    /// otherwise a PyTorch `Sequential(Linear(d, k), act, Linear(k, 1))` state dict is recognised
    /// (two `.weight` tensors of shapes [k, d] and [1, k] with their `.bias`es). The activation
    /// comes from `activation`, else from the metadata.
    public static func load(
        path: String,
        activation override: ActivationKind? = nil
    ) throws(IsosweepError) -> SavedNetwork {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw IsosweepError(.badFile, "cannot read \(path): check that it exists and is readable")
        }
        let (tensors, metadata) = try SafeTensors.decode(data, name: path)
        func bad(_ why: String) -> IsosweepError { IsosweepError(.badFile, "\(path): \(why)") }
        let activation: ActivationKind
        if let override {
            activation = override
        } else if let name = metadata["activation"] {
            guard let kind = ActivationKind(rawValue: name) else {
                throw bad("metadata activation \(name) is not one of relu, tanh, softplus")
            }
            activation = kind
        } else {
            throw bad("the file does not say its activation: pass --activation relu|tanh|softplus")
        }
        let (w, b, a, c) = try layers(tensors, bad)
        guard w.shape.count == 2, w.shape[0] >= 1, w.shape[1] >= 1 else {
            throw bad("W must have shape [k, d], has \(w.shape)")
        }
        let k = w.shape[0]
        let d = w.shape[1]
        guard b.values.count == k, a.values.count == k, c.values.count == 1 else {
            throw bad(
                "b and a must have \(k) values and c one (W is [\(k), \(d)]); found \(b.values.count), \(a.values.count), \(c.values.count)"
            )
        }
        let network = Network<Double>(
            weights: Matrix(rows: k, columns: d, storage: w.values),
            biases: b.values,
            outputWeights: a.values,
            outputBias: c.values[0],
            activation: activation
        )
        guard network.parameters.allFinite else { throw bad("some weights are NaN or infinite") }
        var inputs: Matrix<Double>?
        if let x = tensors["X"] {
            guard x.shape.count == 2, x.shape[1] == d else { throw bad("X must have shape [n, \(d)], has \(x.shape)") }
            guard x.values.allFinite else { throw bad("X holds NaN or infinite values") }
            inputs = Matrix(rows: x.shape[0], columns: d, storage: x.values)
        }
        var labels: [Double]?
        if let y = tensors["y"] {
            guard y.values.count == inputs?.rows else { throw bad("y must have one label per row of X") }
            labels = y.values
        }
        return SavedNetwork(network: network, inputs: inputs, labels: labels, metadata: metadata)
    }

    private static func layers(
        _ tensors: [String: Tensor],
        _ bad: (String) -> IsosweepError
    ) throws(IsosweepError) -> (Tensor, Tensor, Tensor, Tensor) {
        if let w = tensors["W"], let b = tensors["b"], let a = tensors["a"], let c = tensors["c"] {
            return (w, b, a, c)
        }
        let weights = tensors.keys.filter { $0.hasSuffix(".weight") }.sorted {
            $0.compare($1, options: .numeric) == .orderedAscending
        }
        guard weights.count == 2 else {
            throw bad(
                "expected tensors W, b, a, c (or a PyTorch state dict of two Linear layers); found \(tensors.keys.sorted())"
            )
        }
        let first = tensors[weights[0]]!
        let second = tensors[weights[1]]!
        guard first.shape.count == 2, second.shape.count == 2, second.shape[0] == 1, second.shape[1] == first.shape[0]
        else {
            throw bad(
                "Linear layers \(weights[0]) \(first.shape) and \(weights[1]) \(second.shape) are not [k, d] then [1, k]"
            )
        }
        let k = first.shape[0]
        let firstBias =
            tensors[String(weights[0].dropLast(6)) + "bias"]
            ?? Tensor(dtype: .f32, shape: [k], values: .init(repeating: 0, count: k))
        let secondBias =
            tensors[String(weights[1].dropLast(6)) + "bias"] ?? Tensor(dtype: .f32, shape: [1], values: [0])
        let a = Tensor(dtype: second.dtype, shape: [k], values: second.values)
        return (first, firstBias, a, secondBias)
    }
}
