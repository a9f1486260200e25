public import Diagnostics
import Foundation

/// CURVE key files: `NAME.pub` holds the public key (Z85, one line, mode 0644) and
/// `NAME.secret` holds `public <key>` and `secret <key>` lines (mode 0600).
public enum KeyFiles {
    /// A key pair read from a secret file.
    public struct KeyPair: Sendable, Equatable {
        public var publicKey: String
        public var secretKey: String
    }

    /// Writes a new key pair as DIR/NAME.pub and DIR/NAME.secret; refuses to overwrite.
    public static func generate(
        directory: String,
        name: String
    ) throws(IsosweepError) -> (publicFile: String, secretFile: String) {
        guard !name.isEmpty, name.allSatisfy({ $0.isLetter || $0.isNumber || "-_.".contains($0) }) else {
            throw IsosweepError(.security, "key name \(name) must be letters, digits, '-', '_' or '.'")
        }
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw IsosweepError(.badFile, "cannot create the folder \(directory): \(error.localizedDescription)")
        }
        let publicFile = (directory as NSString).appendingPathComponent("\(name).pub")
        let secretFile = (directory as NSString).appendingPathComponent("\(name).secret")
        for file in [publicFile, secretFile] where FileManager.default.fileExists(atPath: file) {
            throw IsosweepError(
                .security,
                "\(file) already exists: choose another --name or remove the old key pair first"
            )
        }
        let keys = try Curve.keyPair()
        // Create the secret file with mode 0600 from the start: never readable by others, even briefly.
        let fd = open(secretFile, O_WRONLY | O_CREAT | O_EXCL, 0o600)
        guard fd >= 0 else {
            throw IsosweepError(.security, "cannot create \(secretFile): \(String(cString: strerror(errno)))")
        }
        let text = "public \(keys.publicKey)\nsecret \(keys.secretKey)\n"
        let written = text.withCString { write(fd, $0, strlen($0)) }
        close(fd)
        guard written == text.utf8.count else { throw IsosweepError(.security, "cannot write \(secretFile)") }
        do {
            try (keys.publicKey + "\n").write(toFile: publicFile, atomically: true, encoding: .utf8)
        } catch {
            throw IsosweepError(.badFile, "cannot write \(publicFile): \(error.localizedDescription)")
        }
        chmod(publicFile, 0o644)
        return (publicFile, secretFile)
    }

    /// Reads a secret key file, refusing one that others can read.
    public static func readSecret(_ path: String) throws(IsosweepError) -> KeyPair {
        var info = stat()
        guard stat(path, &info) == 0 else {
            throw IsosweepError(
                .security,
                "cannot read the secret key \(path): \(String(cString: strerror(errno))); make one with: isosweep keygen --out DIR"
            )
        }
        guard info.st_mode & 0o077 == 0 else {
            let mode = String(info.st_mode & 0o777, radix: 8)
            throw IsosweepError(
                .security,
                "the secret key \(path) is readable by others (mode \(mode)): chmod 600 \(path)"
            )
        }
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw IsosweepError(.security, "cannot read the secret key \(path) as text")
        }
        var publicKey: String?
        var secretKey: String?
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: " ", maxSplits: 1).map(String.init)
            guard parts.count == 2 else { continue }
            if parts[0] == "public" { publicKey = parts[1] }
            if parts[0] == "secret" { secretKey = parts[1] }
        }
        guard let secretKey, Curve.isValidKey(secretKey) else {
            throw IsosweepError(
                .security,
                "\(path) holds no valid 'secret <40 Z85 characters>' line: make a key pair with isosweep keygen"
            )
        }
        let derived = try Curve.publicKey(ofSecret: secretKey)
        if let publicKey, publicKey != derived {
            throw IsosweepError(.security, "\(path): its public key does not belong to its secret key")
        }
        return KeyPair(publicKey: derived, secretKey: secretKey)
    }

    /// Reads a public key file (one Z85 key).
    public static func readPublic(_ path: String) throws(IsosweepError) -> String {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw IsosweepError(.security, "cannot read the public key \(path)")
        }
        let key = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard Curve.isValidKey(key) else {
            throw IsosweepError(.security, "\(path) is not a CURVE public key (40 Z85 characters)")
        }
        return key
    }

    /// The public keys of every `*.pub` file in `directory`, by key, with the file each came from.
    public static func readAllowList(_ directory: String) throws(IsosweepError) -> [String: String] {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else {
            throw IsosweepError(
                .security,
                "cannot read the allow-list folder \(directory): give a folder of worker *.pub files"
            )
        }
        var keys: [String: String] = [:]
        for name in names.sorted() where name.hasSuffix(".pub") {
            let path = (directory as NSString).appendingPathComponent(name)
            keys[try readPublic(path)] = name
        }
        return keys
    }
}
