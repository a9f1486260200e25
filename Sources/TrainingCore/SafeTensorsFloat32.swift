import Diagnostics
import Foundation

/// Float32 tensors kept as float arrays, for files written and read in bulk (checkpoints): no
/// widening to double, one copy of the bytes.
struct Float32Tensor: Equatable, Sendable {
    var shape: [Int]
    var values: [Float]

    init(shape: [Int], values: [Float]) {
        precondition(shape.reduce(1, *) == values.count, "a tensor's shape must match its values")
        self.shape = shape
        self.values = values
    }

    /// A vector.
    init(_ values: [Float]) { self.init(shape: [values.count], values: values) }
}

extension SafeTensors {
    /// Encodes float32 tensors and string metadata, the data laid out in name order (the same
    /// layout as `encode`), copying each array's bytes once.
    static func encodeFloat32(
        _ tensors: [String: Float32Tensor],
        metadata: [String: String]
    ) throws(IsosweepError)
        -> [UInt8]
    {
        var header: [String: Any] = [:]
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        var offset = 0
        let names = tensors.keys.sorted()
        for name in names {
            let bytes = tensors[name]!.values.count * 4
            header[name] = ["dtype": "F32", "shape": tensors[name]!.shape, "data_offsets": [offset, offset + bytes]]
            offset += bytes
        }
        var json: [UInt8]
        do {
            json = [UInt8](try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys]))
        } catch {
            throw IsosweepError(.invalidParameter, "cannot encode the safetensors header: \(error)")
        }
        while json.count % 8 != 0 { json.append(UInt8(ascii: " ")) }
        var file = [UInt8]()
        file.reserveCapacity(8 + json.count + offset)
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { file.append(contentsOf: $0) }
        file.append(contentsOf: json)
        for name in names {
            // Little-endian hosts only (x86-64, arm64): the array's bytes are the file's.
            tensors[name]!.values.withUnsafeBytes { file.append(contentsOf: $0) }
        }
        return file
    }

    /// Decodes a file whose tensors are all F32 into float arrays, validating it as `decode` does.
    static func decodeFloat32(
        _ bytes: [UInt8],
        name: String
    ) throws(IsosweepError) -> (tensors: [String: Float32Tensor], metadata: [String: String]) {
        let (entries, metadata, dataStart) = try header(of: bytes, name: name)
        var tensors: [String: Float32Tensor] = [:]
        for entry in entries {
            guard entry.dtype == .f32 else {
                throw IsosweepError(.badFile, "\(name): tensor \(entry.name) is \(entry.dtype.rawValue), not F32")
            }
            var values = [Float](repeating: 0, count: entry.count)
            values.withUnsafeMutableBytes { destination in
                bytes.withUnsafeBytes { source in
                    let start = dataStart + entry.start
                    destination.copyMemory(
                        from: UnsafeRawBufferPointer(rebasing: source[start..<(start + entry.count * 4)])
                    )
                }
            }
            tensors[entry.name] = Float32Tensor(shape: entry.shape, values: values)
        }
        return (tensors, metadata)
    }
}
