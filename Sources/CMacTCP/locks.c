// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

// The library's mutex and condition variable, on futexes (see mt_lock in the header).
//
// The mutex is the classic three-state futex lock: 0 free, 1 held, 2 held with sleepers.
// Taking it without contention is one compare-and-swap, giving it back one exchange; only a
// release that finds 2 makes a system call. The condition is a sequence number: a sleeper
// reads it with the mutex held, releases the mutex and sleeps while it is unchanged; a
// signal or broadcast that finds sleepers counted changes it and wakes them, and one that
// finds none does nothing more.
//
// Under ThreadSanitizer this file is instrumented like the rest of the target: the
// acquire and release orderings of the mutex's atomics are the happens-before edges it sees.
#define _GNU_SOURCE
#include "CMacTCP.h"

#include <limits.h>
#include <linux/futex.h>
#include <stdbool.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static void futex_wait(uint32_t *word, uint32_t expected, const struct timespec *deadline) {
    if (deadline) {
        // FUTEX_WAIT_BITSET takes an absolute time on CLOCK_MONOTONIC.
        syscall(SYS_futex, word, FUTEX_WAIT_BITSET | FUTEX_PRIVATE_FLAG, expected, deadline, NULL,
                FUTEX_BITSET_MATCH_ANY);
    } else {
        syscall(SYS_futex, word, FUTEX_WAIT | FUTEX_PRIVATE_FLAG, expected, NULL, NULL, 0);
    }
}

static void futex_wake(uint32_t *word, int count) {
    syscall(SYS_futex, word, FUTEX_WAKE | FUTEX_PRIVATE_FLAG, count, NULL, NULL, 0);
}

static inline void spin_pause(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ volatile("yield");
#endif
}

static void acquire_contended(mt_lock *lock) {
    // A short spin first: the holder of a library lock keeps it for a few hundred
    // instructions, less than a sleep and a wake-up cost.
    for (int i = 0; i < 100 && __atomic_load_n(&lock->state, __ATOMIC_RELAXED) == 1; i++) spin_pause();
    uint32_t expected = 0;
    if (__atomic_compare_exchange_n(&lock->state, &expected, 1, false, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED)) return;
    // From here on the lock is marked as having sleepers, so that its release wakes one.
    while (__atomic_exchange_n(&lock->state, 2, __ATOMIC_ACQUIRE) != 0) futex_wait(&lock->state, 2, NULL);
}

void mt_lock_acquire(mt_lock *lock) {
    uint32_t expected = 0;
    if (__atomic_compare_exchange_n(&lock->state, &expected, 1, false, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED)) return;
    acquire_contended(lock);
}

void mt_lock_release(mt_lock *lock) {
    if (__atomic_exchange_n(&lock->state, 0, __ATOMIC_RELEASE) == 2) futex_wake(&lock->state, 1);
}

void mt_lock_wait(mt_lock *lock, uint64_t deadline_ns) {
    uint32_t sequence = __atomic_load_n(&lock->sequence, __ATOMIC_SEQ_CST);
    __atomic_fetch_add(&lock->sleepers, 1, __ATOMIC_SEQ_CST);
    mt_lock_release(lock);
    if (deadline_ns) {
        struct timespec deadline = {(time_t)(deadline_ns / 1000000000u), (long)(deadline_ns % 1000000000u)};
        futex_wait(&lock->sequence, sequence, &deadline);
    } else {
        futex_wait(&lock->sequence, sequence, NULL);
    }
    mt_lock_acquire(lock);
    __atomic_fetch_sub(&lock->sleepers, 1, __ATOMIC_SEQ_CST);
}

// A sleeper counts itself and reads the sequence with the mutex held; a change to the state
// it waits for is made with the mutex held, before the signal. So a signal that finds no
// sleeper counted comes after every would-be sleeper that could still miss the change (one
// that takes the mutex later sees it), and needs neither to change the sequence nor to wake
// anyone: a signal with nobody waiting, the common case, is one load.
void mt_lock_signal(mt_lock *lock) {
    if (__atomic_load_n(&lock->sleepers, __ATOMIC_SEQ_CST) == 0) return;
    __atomic_fetch_add(&lock->sequence, 1, __ATOMIC_SEQ_CST);
    futex_wake(&lock->sequence, 1);
}

void mt_lock_broadcast(mt_lock *lock) {
    if (__atomic_load_n(&lock->sleepers, __ATOMIC_SEQ_CST) == 0) return;
    __atomic_fetch_add(&lock->sequence, 1, __ATOMIC_SEQ_CST);
    futex_wake(&lock->sequence, INT_MAX);
}
