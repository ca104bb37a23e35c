// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

/// The streams waiting on one port, oldest first: a passive open joins at the end, and each
/// connection goes to the first waiter whose filter takes it.
///
/// Kept as a list with a moving head, so that the common case (the oldest waiter takes the
/// connection) costs no shift of the list; the taken slots are dropped once they are at least
/// half of it. Used only under the listener table's lock (`ListenerRegistry`).
struct WaiterQueue {
    typealias Waiter = ListenerRegistry.Waiter

    /// Slots before `head` are taken.
    private var slots: [Waiter?]
    private var head = 0
    /// How many of the waiters are marked `watched`.
    private(set) var watched: Int

    /// No waiter yet (a port kept listening before any stream waits on it).
    init() {
        slots = []
        watched = 0
    }

    init(first: Waiter) {
        slots = [first]
        watched = first.watched ? 1 : 0
    }

    /// The waiters still waiting.
    var count: Int { slots.count - head }
    var isEmpty: Bool { head == slots.count }

    mutating func append(_ waiter: Waiter) {
        slots.append(waiter)
        if waiter.watched { watched += 1 }
    }

    /// Marks the waiter with `id` watched or not.
    mutating func setWatched(id: UInt64, _ listened: Bool) {
        guard let index = slots[head...].firstIndex(where: { $0?.id == id }), let waiter = slots[index] else { return }
        let before = waiter.watched
        waiter.watch(listened)
        guard waiter.watched != before else { return }
        watched += waiter.watched ? 1 : -1
    }

    /// Removes and returns the oldest waiter that `matches`.
    mutating func removeFirst(where matches: (Waiter) -> Bool) -> Waiter? {
        guard let index = slots[head...].firstIndex(where: { $0.map(matches) ?? false }) else { return nil }
        return take(at: index)
    }

    /// Removes the waiter with `id`, if it still waits.
    mutating func remove(id: UInt64) {
        if let index = slots[head...].firstIndex(where: { $0?.id == id }) { _ = take(at: index) }
    }

    private mutating func take(at index: Int) -> Waiter? {
        let waiter = slots[index]
        if waiter?.watched == true { watched -= 1 }
        if index == head {
            slots[index] = nil
            head += 1
            if head == slots.count || head >= 64 && head * 2 >= slots.count {
                slots.removeFirst(head)
                head = 0
            }
        } else {
            slots.remove(at: index)
        }
        return waiter
    }
}
