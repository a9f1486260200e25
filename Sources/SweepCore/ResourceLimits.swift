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
    /// Time between the cell's checkpoints, in milliseconds (0: none). A cell that ends sooner
    /// writes none.
    public var checkpointEveryMilliseconds: UInt64
    /// How long the cell's runner may go without progress before its worker kills it, in
    /// milliseconds (0: never).
    public var stallLimitMilliseconds: UInt64

    /// The default `checkpoint_every`: 10 minutes, so that only cells that run longer than that
    /// write any, and an interruption costs at most 10 minutes of a long cell.
    public static let defaultCheckpointEveryMilliseconds: UInt64 = 10 * 60 * 1000
    /// The default `stall_limit`: 10 minutes. A healthy cell reports progress at every training
    /// step, every ascent iteration and every block of its longer passes; its longest silences
    /// (one LAPACK call, a step of the largest cells) are seconds to a minute.
    public static let defaultStallLimitMilliseconds: UInt64 = 10 * 60 * 1000

    /// What a sweep file's cells get where its `resources:` says nothing: the default
    /// checkpoint interval and stall limit, the rest at their defaults.
    public static let sweepFileDefaults = ResourceLimits(
        checkpointEveryMilliseconds: defaultCheckpointEveryMilliseconds,
        stallLimitMilliseconds: defaultStallLimitMilliseconds
    )

    /// Limits as given; 0 leaves each of the first three to its default (see each property).
    public init(
        threads: UInt16 = 0,
        timeLimitMilliseconds: UInt64 = 0,
        memoryBytes: UInt64 = 0,
        checkpointEveryMilliseconds: UInt64 = 0,
        stallLimitMilliseconds: UInt64 = 0
    ) {
        self.threads = threads
        self.timeLimitMilliseconds = timeLimitMilliseconds
        self.memoryBytes = memoryBytes
        self.checkpointEveryMilliseconds = checkpointEveryMilliseconds
        self.stallLimitMilliseconds = stallLimitMilliseconds
    }
}
