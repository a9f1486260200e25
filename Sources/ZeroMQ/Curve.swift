import CZeroMQ
public import Diagnostics

/// CURVE keys in libzmq's Z85 text form (40 characters for 32 bytes).
public enum Curve {
    /// Whether this libzmq was built with CURVE.
    public static var isAvailable: Bool { zmq_has("curve") != 0 }

    /// A new key pair.
    public static func keyPair() throws(IsosweepError) -> (publicKey: String, secretKey: String) {
        var publicKey = [CChar](repeating: 0, count: 41)
        var secretKey = [CChar](repeating: 0, count: 41)
        guard zmq_curve_keypair(&publicKey, &secretKey) == 0 else { throw IsosweepError.zeroMQ("zmq_curve_keypair") }
        return (string(publicKey), string(secretKey))
    }

    /// The public key of a secret key.
    public static func publicKey(ofSecret secretKey: String) throws(IsosweepError) -> String {
        var publicKey = [CChar](repeating: 0, count: 41)
        guard zmq_curve_public(&publicKey, secretKey) == 0 else { throw IsosweepError.zeroMQ("zmq_curve_public") }
        return string(publicKey)
    }

    /// Whether `key` is 40 Z85 characters that decode to 32 bytes.
    public static func isValidKey(_ key: String) -> Bool {
        guard key.utf8.count == 40 else { return false }
        var bytes = [UInt8](repeating: 0, count: 32)
        return zmq_z85_decode(&bytes, key) != nil
    }

    /// The Z85 text of 32 raw key bytes (as ZAP hands them over).
    public static func z85(_ raw: [UInt8]) -> String? {
        guard raw.count == 32 else { return nil }
        var text = [CChar](repeating: 0, count: 41)
        guard zmq_z85_encode(&text, raw, 32) != nil else { return nil }
        return string(text)
    }

    private static func string(_ chars: [CChar]) -> String {
        String(decoding: chars.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

extension Socket {
    /// Makes this socket a CURVE server that consults the ZAP handler for every handshake and
    /// fails closed when none approves (ZMQ_ZAP_ENFORCE_DOMAIN).
    public func makeCurveServer(secretKey: String, zapDomain: String) throws(IsosweepError) {
        try setOption(ZMQ_CURVE_SERVER, Int32(1))
        try setOption(ZMQ_CURVE_SECRETKEY, Array(secretKey.utf8))
        try setOption(ZMQ_ZAP_DOMAIN, Array(zapDomain.utf8))
        try setOption(CZMQ_ZAP_ENFORCE_DOMAIN, Int32(1))
    }

    /// Makes this socket a CURVE client of the server with `serverKey`.
    public func makeCurveClient(serverKey: String, publicKey: String, secretKey: String) throws(IsosweepError) {
        try setOption(ZMQ_CURVE_SERVERKEY, Array(serverKey.utf8))
        try setOption(ZMQ_CURVE_PUBLICKEY, Array(publicKey.utf8))
        try setOption(ZMQ_CURVE_SECRETKEY, Array(secretKey.utf8))
    }
}
