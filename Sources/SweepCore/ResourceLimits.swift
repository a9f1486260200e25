/// What a cell may use, from the sweep file's `resources:` section: never part of its
/// identity, so changing it never changes a cell key.
public struct ResourceLimits: Sendable, Equatable {
    /// OpenBLAS threads (0: the worker's `--threads`; in a sweep file's `resources:`, 0 is
    /// `auto`, which the coordinator resolves per cell).
    public var threads: UInt16
    /// Wall-clock limit in milliseconds (0: none).
    public var timeLimitMilliseconds: UInt64
    /// Most resident memory the cell's runner may reach, in bytes (0: not enforced; in a
    /// sweep file's `resources:`, 0 is `auto`: the cell's estimate).
    public var memoryBytes: UInt64

    /// Limits as given; 0 leaves each one to its default (see each property).
    public init(threads: UInt16 = 0, timeLimitMilliseconds: UInt64 = 0, memoryBytes: UInt64 = 0) {
        self.threads = threads
        self.timeLimitMilliseconds = timeLimitMilliseconds
        self.memoryBytes = memoryBytes
    }
}
