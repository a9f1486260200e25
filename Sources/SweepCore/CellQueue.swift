/// The scheduler's queue: a binary max-heap of cell indices by (estimated cost, then seed order),
/// so that taking the most expensive cell and putting one back each cost O(log n), whatever the
/// queue's size. A million re-enqueues (workers leaving) do not move a million entries each.
///
/// It does not know cells' states: the scheduler skips entries that are no longer queued when
/// it pops them (removal by marking), so removing a cell from the middle costs nothing here.
struct CellQueue {
    struct Entry {
        var cost: Double
        var index: Int32

        /// Before `other` in the queue: more expensive, or as expensive and seeded earlier.
        @inline(__always)
        func precedes(_ other: Entry) -> Bool {
            cost > other.cost || (cost == other.cost && index < other.index)
        }
    }

    private(set) var entries: [Entry] = []

    /// No entries left, counting those the scheduler has marked out but not yet popped.
    var isEmpty: Bool { entries.isEmpty }

    /// Replaces the entries with `entries` in any order (heapified in O(n)), keeping the room
    /// reserved.
    mutating func replace(with new: [Entry]) {
        entries.removeAll(keepingCapacity: true)
        entries.append(contentsOf: new)
        guard entries.count > 1 else { return }
        for i in stride(from: entries.count / 2 - 1, through: 0, by: -1) { siftDown(i) }
    }

    /// The first entry, without taking it.
    var first: Entry? { entries.first }

    mutating func push(_ entry: Entry) {
        entries.append(entry)
        siftUp(entries.count - 1)
    }

    /// Takes the first entry.
    mutating func pop() -> Entry? {
        guard !entries.isEmpty else { return nil }
        let top = entries[0]
        let last = entries.removeLast()
        if !entries.isEmpty {
            entries[0] = last
            siftDown(0)
        }
        return top
    }

    mutating func reserveCapacity(_ n: Int) { entries.reserveCapacity(n) }

    private mutating func siftUp(_ start: Int) {
        var child = start
        let entry = entries[child]
        while child > 0 {
            let parent = (child - 1) / 2
            guard entry.precedes(entries[parent]) else { break }
            entries[child] = entries[parent]
            child = parent
        }
        entries[child] = entry
    }

    private mutating func siftDown(_ start: Int) {
        let count = entries.count
        var parent = start
        let entry = entries[parent]
        while true {
            var child = 2 * parent + 1
            guard child < count else { break }
            if child + 1 < count && entries[child + 1].precedes(entries[child]) { child += 1 }
            guard entries[child].precedes(entry) else { break }
            entries[parent] = entries[child]
            parent = child
        }
        entries[parent] = entry
    }
}
