/// The work payloads (cell JSON) of the scheduler's cells, packed into 1 MiB pages: one
/// allocation per page instead of one array per cell, and no doubling copy of everything while
/// a large sweep loads.
struct WorkArena {
    /// Where a payload is: its page, offset and length.
    struct Slice {
        var page: UInt32
        var offset: UInt32
        var length: UInt32

        static let empty = Slice(page: 0, offset: 0, length: 0)
    }

    static let pageSize = 1 << 20
    private var pages: [[UInt8]] = []

    /// Stores `bytes` and says where.
    mutating func append(_ bytes: [UInt8]) -> Slice {
        guard !bytes.isEmpty else { return .empty }
        if pages.isEmpty || pages[pages.count - 1].count + bytes.count > pages[pages.count - 1].capacity {
            var page: [UInt8] = []
            page.reserveCapacity(max(Self.pageSize, bytes.count))
            pages.append(page)
        }
        let last = pages.count - 1
        let slice = Slice(page: UInt32(last), offset: UInt32(pages[last].count), length: UInt32(bytes.count))
        pages[last].append(contentsOf: bytes)
        return slice
    }

    /// The payload at `slice`.
    subscript(slice: Slice) -> [UInt8] {
        guard slice.length > 0 else { return [] }
        let start = Int(slice.offset)
        return Array(pages[Int(slice.page)][start..<start + Int(slice.length)])
    }
}
