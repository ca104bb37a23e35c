// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

/// One mechanism for every async wait: "something changed on this stream, look again".
///
/// Every reactor event for the stream's socket, every end of a connection, every completion
/// or cancellation of a passive open, and every release of a send or receive turn that
/// another call waits for bumps the stream's change counter and
/// resumes the tasks suspended in ``change(since:deadline:)``. An async
/// call reads the counter, tries its non-blocking step, and if it cannot finish, suspends
/// until the counter moves past what it read — so a change that happens between the try and
/// the suspension is never missed.
extension TCPStream {
    /// Why a suspended task resumed.
    enum Wake: Sendable {
        case changed
        case timedOut
        case cancelled
    }

    /// A task suspended until the stream changes.
    struct Waiter {
        let continuation: CheckedContinuation<Wake, Never>
        var timer: Reactor.Timer?
    }

    /// The change counter now.
    var changeCount: UInt64 {
        core.withLock { $0.changes }
    }

    /// Records a change, wakes the threads blocked in the stream's calls and resumes every
    /// suspended task. Called with the state lock held.
    func signalChange(_ state: inout State) {
        state.changes &+= 1
        core.broadcastWhileLocked()
        state.waker?.signal()
        guard !state.waiters.isEmpty else { return }
        for waiter in state.waiters.values {
            if let timer = waiter.timer { Reactor.shared.cancel(timer) }
            waiter.continuation.resume(returning: .changed)
        }
        state.waiters.removeAll(keepingCapacity: true)
    }

    /// Suspends until the change counter differs from `seen`, the deadline passes or the task
    /// is cancelled. Never blocks a thread: the reactor (or the thread making the change)
    /// resumes the task.
    func change(since seen: UInt64, deadline: Deadline) async -> Wake {
        let id = core.withLock { state -> UInt64 in
            state.nextWaiterID &+= 1
            return state.nextWaiterID
        }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Wake, Never>) in
                let immediate = core.withLock { state -> Wake? in
                    if Task.isCancelled { return .cancelled }
                    // Async calls wait for data through the reactor: watch it from now on.
                    state.suspendsTasks = true
                    updateDataWatch(&state)
                    if state.changes != seen || state.released { return .changed }
                    if deadline.hasPassed { return .timedOut }
                    var waiter = Waiter(continuation: continuation)
                    if let remaining = deadline.remaining {
                        waiter.timer = Reactor.shared.schedule(after: remaining) { [weak self] in
                            self?.resumeWaiter(id, with: .timedOut)
                        }
                    }
                    state.waiters[id] = waiter
                    return nil
                }
                if let immediate { continuation.resume(returning: immediate) }
            }
        } onCancel: {
            resumeWaiter(id, with: .cancelled)
        }
    }

    /// After the ASR was set or the event sequence made: the state's copy of whether either
    /// exists is brought up to date, and the reactor watches (or not) accordingly.
    func listenersChanged() {
        core.withLock { state in
            state.listened = delivery.hasListeners
            updateDataWatch(&state)
        }
    }

    /// Whether someone waits for this stream's events unasked: an ASR, the event sequence,
    /// async calls. Called with the state lock held.
    func isListenedFor(_ state: State) -> Bool {
        state.suspendsTasks || state.listened
    }

    /// Makes the reactor watch the current connection's data and urgent data when someone
    /// listens for them (an ASR, the event sequence, async calls); for a pending passive
    /// open, makes the reactor accept for it (see ``ListenerRegistry``). Called with the
    /// state lock held.
    func updateDataWatch(_ state: inout State) {
        if let ticket = state.pendingTicket {
            ListenerRegistry.shared.setWatched(ticket, isListenedFor(state))
            return
        }
        guard case .connected(let connection) = state.phase, connection.end == nil, isListenedFor(state) else { return }
        watch(connection, EpollEvents.connectionWithData)
    }

    /// Makes the reactor watch `events` on a connection too: registers it the first time,
    /// widens the registration later. Registering or widening makes epoll look at the
    /// socket's readiness at once, so nothing that happened before is missed. Called with the
    /// state lock held.
    func watch(_ connection: Connection, _ events: UInt32) {
        let wanted = connection.watched | events
        if let registration = connection.registration {
            guard wanted != connection.watched else { return }
            Reactor.shared.modify(registration, connection.descriptor, events: wanted)
        } else {
            guard case .success(let registration) = Reactor.shared.register(connection.descriptor, events: wanted, handler: self)
            else { return }
            connection.registration = registration
        }
        connection.watched = wanted
    }

    private func resumeWaiter(_ id: UInt64, with wake: Wake) {
        core.withLock { state in
            guard let waiter = state.waiters.removeValue(forKey: id) else { return }
            if let timer = waiter.timer { Reactor.shared.cancel(timer) }
            waiter.continuation.resume(returning: wake)
        }
    }
}
