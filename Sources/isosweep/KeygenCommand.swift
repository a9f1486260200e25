import ArgumentParser
import CommandSupport
import Foundation
import ZeroMQ

/// `isosweep keygen`: a CURVE key pair for a coordinator or a worker.
struct Keygen: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a CURVE key pair: NAME.pub (share it) and NAME.secret (mode 0600, keep it).",
        discussion: """
            The coordinator takes --curve-secret coordinator.secret --allow FOLDER (the workers' .pub files); \
            each worker takes --curve-secret worker.secret --server-key coordinator.pub.
            """
    )

    @Option(help: "Folder to write the keys to.") var out: String
    @Option(help: "Name of the key pair (default: this host's name).") var name: String?

    func run() throws {
        guard Curve.isAvailable else {
            Output.error(
                "this libzmq was built without CURVE: install a libzmq with libsodium (Debian's libzmq5 has it)"
            )
            throw ExitCode.failure
        }
        let files = try KeyFiles.generate(directory: out, name: name ?? ProcessInfo.processInfo.hostName)
        print("public key: \(files.publicFile)")
        print("secret key: \(files.secretFile) (mode 0600)")
    }
}
