// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

/// The reactor's timers: a binary min-heap of deadlines plus the actions still armed.
///
/// Cancelling removes the action; its heap entry is skipped when it comes due.
struct TimerQueue {
    typealias Action = @Sendable () -> Void

    private var heap: [(deadline: ContinuousClock.Instant, id: UInt64)] = []
    private var actions: [UInt64: Action] = [:]
    private var nextID: UInt64 = 1

    mutating func schedule(at deadline: ContinuousClock.Instant, _ action: @escaping Action) -> UInt64 {
        let id = nextID
        nextID += 1
        actions[id] = action
        heap.append((deadline, id))
        siftUp(heap.count - 1)
        return id
    }

    mutating func cancel(_ id: UInt64) {
        actions[id] = nil
        while let top = heap.first, actions[top.id] == nil { removeTop() }
    }

    /// The earliest armed deadline.
    var nextDeadline: ContinuousClock.Instant? { heap.first?.deadline }

    /// Removes and returns the actions due at `now`.
    mutating func takeDue(_ now: ContinuousClock.Instant) -> [Action] {
        var due: [Action] = []
        while let top = heap.first, top.deadline <= now {
            removeTop()
            if let action = actions.removeValue(forKey: top.id) { due.append(action) }
        }
        while let top = heap.first, actions[top.id] == nil { removeTop() }
        return due
    }

    private mutating func removeTop() {
        heap.swapAt(0, heap.count - 1)
        heap.removeLast()
        if !heap.isEmpty { siftDown(0) }
    }

    private mutating func siftUp(_ index: Int) {
        var child = index
        while child > 0 {
            let parent = (child - 1) / 2
            guard heap[child].deadline < heap[parent].deadline else { return }
            heap.swapAt(child, parent)
            child = parent
        }
    }

    private mutating func siftDown(_ index: Int) {
        var parent = index
        while true {
            let left = 2 * parent + 1
            let right = left + 1
            var smallest = parent
            if left < heap.count, heap[left].deadline < heap[smallest].deadline { smallest = left }
            if right < heap.count, heap[right].deadline < heap[smallest].deadline { smallest = right }
            if smallest == parent { return }
            heap.swapAt(parent, smallest)
            parent = smallest
        }
    }
}
