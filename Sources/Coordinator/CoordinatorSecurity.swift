public import Diagnostics
import Logging
import Synchronization
import ZeroMQ

/// CURVE and the ZAP allow-list: fail closed, log every refusal (at most once a minute per peer).
extension CoordinatorEngine {
    /// The ROUTER socket, made a CURVE server behind a ZAP handler when keys are given, with
    /// bounded queues. The handler is bound before the socket listens, so no handshake escapes it.
    func secureRouter(_ context: Context) throws -> (Socket, ZAPHandler?) {
        let router = try Socket(context, .router)
        var zap: ZAPHandler?
        switch options.security {
        case .curve(let keys, let directory):
            let loaded = try KeyFiles.readAllowList(directory)
            allowList.withLock { $0 = loaded }
            zap = try ZAPHandler(context: context) { [self] request in authorize(request) }
            try router.makeCurveServer(secretKey: keys.secretKey, zapDomain: "isosweep")
            logger.info(
                "CURVE on",
                metadata: [
                    "server_key": "\(keys.publicKey)", "allowed_workers": "\(loaded.count)", "allow": "\(directory)",
                ]
            )
        case .plaintext(let insecure):
            if insecure && !Endpoint.isLocal(options.bind) {
                logger.warning(
                    "INSECURE: plain TCP on \(options.bind): anyone who reaches this port can take cells and send results. Use CURVE (isosweep keygen)."
                )
            }
        }
        try router.set(.routerMandatory(true))
        try router.set(.sendHighWaterMark(100_000))
        try router.set(.receiveHighWaterMark(100_000))
        // A thousand workers connect at once when a coordinator (re)starts: ZeroMQ's default
        // listen backlog of 100 drops their SYNs and TCP retries after 1 s, 3 s, ... (the kernel
        // caps this at net.core.somaxconn).
        try router.set(.backlog(4096))
        return (router, zap)
    }

    /// Re-reads the allow-list folder (on SIGHUP): new connections are judged by the new list.
    /// A folder that cannot be read leaves the old list in force.
    public func reloadAllowList() {
        guard case .curve(_, let directory) = options.security else { return }
        do {
            let keys = try KeyFiles.readAllowList(directory)
            let (added, removed) = allowList.withLock { current -> (Int, Int) in
                let added = keys.keys.filter { current[$0] == nil }.count
                let removed = current.keys.filter { keys[$0] == nil }.count
                current = keys
                return (added, removed)
            }
            logger.notice(
                "allow list reloaded",
                metadata: [
                    "keys": "\(keys.count)", "added": "\(added)", "removed": "\(removed)", "folder": "\(directory)",
                ]
            )
        } catch {
            logger.error("allow list not reloaded; the old one stays in force", metadata: ["error": "\(error)"])
        }
    }

    /// The ZAP decision: CURVE clients whose key is on the allow list.
    func authorize(_ request: ZAPHandler.Request) -> ZAPHandler.Decision {
        guard request.mechanism == "CURVE", let key = request.clientKey else {
            logRefusal(peer: request.address, reason: "mechanism \(request.mechanism) is not CURVE")
            return .refuse(reason: "CURVE required")
        }
        if let file = allowList.withLock({ $0[key] }) {
            logger.debug("admitted a worker key", metadata: ["peer": "\(request.address)", "key_file": "\(file)"])
            return .allow(userID: file)
        }
        logRefusal(peer: request.address, reason: "key \(key) is not in the allow list")
        return .refuse(reason: "key not allowed")
    }

    /// Logs a refused connection, at most once per peer host (and reason) per minute.
    func logRefusal(peer: String, reason: String) {
        let host = peer.split(separator: ":").first.map(String.init) ?? peer
        let due = refusals.withLock { $0.shouldLog(Array((host + reason.prefix(24)).utf8), now: .now) }
        if due {
            logger.warning("refused a connection", metadata: ["peer": "\(peer)", "reason": "\(reason)"])
        }
    }

    /// Why plain TCP off loopback is refused, and what to do instead.
    public static func plaintextRefusal(_ bind: String) -> IsosweepError {
        IsosweepError(
            .security,
            "refusing to listen on \(bind) without encryption: plain TCP is allowed only on loopback",
            remedy: """
                make keys with `isosweep keygen --out keys --name coordinator` (and one per worker), put the workers' \
                .pub files in a folder, and pass --curve-secret keys/coordinator.secret --allow FOLDER; \
                or pass --insecure if this network is truly private
                """
        )
    }
}
