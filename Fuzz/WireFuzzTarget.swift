// libFuzzer entry point for the wire codec (built by scripts/fuzz-wire.sh, not by SwiftPM).
// Input: first byte = type frame, the rest = payload frame. Whatever decodes must re-encode to
// a message that decodes to the same value; nothing may crash, hang or read out of bounds.

@_cdecl("LLVMFuzzerTestOneInput")
public func wireFuzzTestOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    guard let type = bytes.first else { return 0 }
    let frames = [[type], Array(bytes.dropFirst())]
    if let message = try? Message.decode(frames) {
        let again = try? Message.decode(message.encode())
        precondition(again == message, "re-encoding changed \(message.name)")
    }
    // Also as arbitrary frame counts: split the payload where it holds a zero byte.
    let split = bytes.split(separator: 0, maxSplits: 4, omittingEmptySubsequences: false).map(Array.init)
    _ = try? Message.decode(split)
    return 0
}
