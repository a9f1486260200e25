import Diagnostics
import Foundation
import Glibc
import SweepCore
import SweepStore

/// The checkpoints of a sweep's unfinished cells, beside its database (`DB.checkpoints/`), one
/// file per cell: `KEY.STEP.safetensors`, the latest its workers sent. A checkpoint arrives in
/// chunks (`Message.CheckpointChunk`), is assembled in `KEY.partial` and takes the place of the
/// cell's previous one only once whole and on disk (fsync, rename, fsync of the folder): a
/// coordinator or disk failure part-way leaves the previous checkpoint. Files of committed cells
/// are deleted.
final class CheckpointFiles {
    let directory: String
    /// The stored checkpoints: their step and size, by cell key.
    private(set) var stored: [String: (step: UInt64, bytes: UInt64)] = [:]
    /// Checkpoints being received, by cell key.
    private var partial: [String: Partial] = [:]

    private struct Partial {
        var lease: UInt64
        var attempt: UInt16
        var step: UInt64
        var total: UInt64
        var written: UInt64
        var fd: Int32
    }

    /// The folder for the database at `database` (made when the first checkpoint arrives: a sweep
    /// of short cells has none), and the checkpoints it already holds (partial ones from an
    /// interrupted run are removed).
    init(database: String) {
        directory = CheckpointFolder.path(database: database)
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        for name in names {
            if let (key, step) = CheckpointFolder.parse(name),
                let size = try? FileManager.default.attributesOfItem(atPath: path(name))[.size] as? NSNumber
            {
                // Two of one cell (a crash between a rename and the unlink of the one before):
                // the later step stays.
                if let other = stored[key] {
                    unlink(file(key, step: min(other.step, step)))
                    if other.step > step { continue }
                }
                stored[key] = (step, size.uint64Value)
            } else if name.hasSuffix(".partial") {
                unlink(path(name))
            }
        }
    }

    deinit {
        for (_, receiving) in partial { close(receiving.fd) }
    }

    private func path(_ name: String) -> String { directory + "/" + name }

    private func file(_ key: String, step: UInt64) -> String { path(CheckpointFolder.name(key: key, step: step)) }

    /// Adds a chunk (from the worker that holds the cell: the scheduler checked it). Returns the
    /// step of the checkpoint it completed, if it completed one. A chunk out of order drops the
    /// checkpoint being received (the next one starts afresh); a write that fails (a full disk)
    /// drops it too, and the previous checkpoint stays.
    func add(_ chunk: Message.CheckpointChunk) throws(IsosweepError) -> UInt64? {
        if chunk.offset == 0 {
            discard(chunk.key)
            if mkdir(directory, 0o700) != 0 && errno != EEXIST { throw failure("keep", chunk.key) }
            let fd = open(path("\(chunk.key).partial"), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
            guard fd >= 0 else { throw failure("create", chunk.key) }
            partial[chunk.key] = Partial(
                lease: chunk.lease,
                attempt: chunk.attempt,
                step: chunk.step,
                total: chunk.total,
                written: 0,
                fd: fd
            )
        }
        guard var receiving = partial[chunk.key], receiving.lease == chunk.lease, receiving.attempt == chunk.attempt,
            receiving.step == chunk.step, receiving.total == chunk.total, receiving.written == chunk.offset
        else {
            discard(chunk.key)
            return nil
        }
        var offset = 0
        while offset < chunk.bytes.count {
            let count = chunk.bytes[offset...].withUnsafeBytes { write(receiving.fd, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else {
                let error = failure("write", chunk.key)
                discard(chunk.key)
                throw error
            }
            offset += count
        }
        receiving.written += UInt64(chunk.bytes.count)
        partial[chunk.key] = receiving
        guard receiving.written == receiving.total else { return nil }
        return try complete(chunk.key, receiving)
    }

    /// Puts a whole checkpoint in place of the cell's previous one.
    private func complete(_ key: String, _ receiving: Partial) throws(IsosweepError) -> UInt64 {
        partial.removeValue(forKey: key)
        let synced = fsync(receiving.fd) == 0
        close(receiving.fd)
        let target = file(key, step: receiving.step)
        guard synced, rename(path("\(key).partial"), target) == 0 else {
            let error = failure("save", key)
            unlink(path("\(key).partial"))
            throw error
        }
        let folder = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if folder >= 0 {
            fsync(folder)
            close(folder)
        }
        if let previous = stored[key], previous.step != receiving.step { unlink(file(key, step: previous.step)) }
        stored[key] = (receiving.step, receiving.total)
        return receiving.step
    }

    /// Whether a cell has a checkpoint here, whole or arriving.
    func holds(_ key: String) -> Bool { stored[key] != nil || partial[key] != nil }

    /// Whether no cell has one.
    var isEmpty: Bool { stored.isEmpty && partial.isEmpty }

    /// Drops a checkpoint being received (its attempt is over: the next one sends its own).
    func discard(_ key: String) {
        guard let receiving = partial.removeValue(forKey: key) else { return }
        close(receiving.fd)
        unlink(path("\(key).partial"))
    }

    /// A stored checkpoint's bytes, or nil (logged by the caller) when it cannot be read.
    func read(_ key: String) -> (step: UInt64, bytes: [UInt8])? {
        guard let entry = stored[key], let data = FileManager.default.contents(atPath: file(key, step: entry.step))
        else { return nil }
        return (entry.step, [UInt8](data))
    }

    /// Deletes a cell's checkpoints (its result is committed).
    func delete(_ key: String) {
        discard(key)
        guard let entry = stored.removeValue(forKey: key) else { return }
        unlink(file(key, step: entry.step))
    }

    private func failure(_ what: String, _ key: String) -> IsosweepError {
        IsosweepError(
            .store,
            "cannot \(what) the checkpoint of cell \(key.prefix(12)) in \(directory): \(String(cString: strerror(errno)))",
            remedy: "free disk space there; the cell keeps its previous checkpoint"
        )
    }
}
