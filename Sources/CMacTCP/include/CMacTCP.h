// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

// The C layer of MacTCP for Swift: only what Swift cannot import from Glibc.
// Every function returns -errno on failure unless its comment says otherwise.
#ifndef CMACTCP_H
#define CMACTCP_H

#include <stdint.h>
#include <stddef.h>

// MARK: epoll and eventfd

enum {
    MT_EPOLLIN = 0x001,
    MT_EPOLLPRI = 0x002,
    MT_EPOLLOUT = 0x004,
    MT_EPOLLERR = 0x008,
    MT_EPOLLHUP = 0x010,
    MT_EPOLLRDHUP = 0x2000,
    MT_EPOLLET = (int)(1u << 31),
};

/// epoll_create1(EPOLL_CLOEXEC).
int mt_epoll_create(void);
/// epoll_ctl with ADD, MOD or DEL (op: 1, 3, 2); `data` is the 64-bit registration tag.
int mt_epoll_ctl(int epfd, int op, int fd, uint32_t events, uint64_t data);
/// epoll_wait into two parallel arrays (the kernel's epoll_event is packed on x86_64).
int mt_epoll_wait(int epfd, uint32_t *events, uint64_t *data, int max, int timeout_ms);
/// eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC).
int mt_eventfd(void);
/// Adds 1 to an eventfd.
int mt_eventfd_signal(int fd);

// MARK: locks

/// A mutex with a condition variable, on futexes (locks.c): 12 bytes, where glibc's pair is
/// 88, and a lock and unlock without contention are two atomic instructions and no call
/// into glibc. Zero-initialised; no destruction needed.
typedef struct {
    /// The mutex: 0 free, 1 held, 2 held with threads asleep on it.
    uint32_t state;
    /// The condition: changed by a signal or broadcast that finds sleepers, the word they
    /// wait on.
    uint32_t sequence;
    /// Threads in `mt_lock_wait`.
    uint32_t sleepers;
} mt_lock;

/// Takes the mutex.
void mt_lock_acquire(mt_lock *lock);
/// Gives the mutex back.
void mt_lock_release(mt_lock *lock);
/// With the mutex held: releases it, sleeps until a signal or broadcast (or a spurious
/// wake-up) or until `deadline_ns` on CLOCK_MONOTONIC (0: no deadline), and takes it again.
void mt_lock_wait(mt_lock *lock, uint64_t deadline_ns);
/// Wakes one thread in `mt_lock_wait` (with or without the mutex held).
void mt_lock_signal(mt_lock *lock);
/// Wakes every thread in `mt_lock_wait` (with or without the mutex held).
void mt_lock_broadcast(mt_lock *lock);

// MARK: threads

/// Names the calling thread (prctl PR_SET_NAME; at most 15 bytes are kept).
int mt_set_thread_name(const char *name);
/// Resets an eventfd to zero.
int mt_eventfd_drain(int fd);

// MARK: TCP status

/// struct tcp_info as the running kernel fills it (6.18: 280 bytes). Fields are only ever
/// appended; `mt_tcp_info` returns how many bytes the kernel filled, so a field is valid
/// when its end offset is at most that length.
struct mt_tcp_info {
    uint8_t tcpi_state, tcpi_ca_state, tcpi_retransmits, tcpi_probes, tcpi_backoff, tcpi_options;
    uint8_t tcpi_wscale;
    uint8_t tcpi_flags8;
    uint32_t tcpi_rto, tcpi_ato, tcpi_snd_mss, tcpi_rcv_mss;
    uint32_t tcpi_unacked, tcpi_sacked, tcpi_lost, tcpi_retrans, tcpi_fackets;
    uint32_t tcpi_last_data_sent, tcpi_last_ack_sent, tcpi_last_data_recv, tcpi_last_ack_recv;
    uint32_t tcpi_pmtu, tcpi_rcv_ssthresh, tcpi_rtt, tcpi_rttvar, tcpi_snd_ssthresh, tcpi_snd_cwnd;
    uint32_t tcpi_advmss, tcpi_reordering;
    uint32_t tcpi_rcv_rtt, tcpi_rcv_space;
    uint32_t tcpi_total_retrans;
    uint64_t tcpi_pacing_rate, tcpi_max_pacing_rate;
    uint64_t tcpi_bytes_acked, tcpi_bytes_received;
    uint32_t tcpi_segs_out, tcpi_segs_in;
    uint32_t tcpi_notsent_bytes, tcpi_min_rtt, tcpi_data_segs_in, tcpi_data_segs_out;
    uint64_t tcpi_delivery_rate;
    uint64_t tcpi_busy_time, tcpi_rwnd_limited, tcpi_sndbuf_limited;
    uint32_t tcpi_delivered, tcpi_delivered_ce;
    uint64_t tcpi_bytes_sent, tcpi_bytes_retrans;
    uint32_t tcpi_dsack_dups, tcpi_reord_seen;
    uint32_t tcpi_rcv_ooopack;
    uint32_t tcpi_snd_wnd;
    uint32_t tcpi_rcv_wnd;
    uint32_t tcpi_rehash;
    uint16_t tcpi_total_rto, tcpi_total_rto_recoveries;
    uint32_t tcpi_total_rto_time;
    uint32_t tcpi_received_ce, tcpi_delivered_e1_bytes, tcpi_delivered_e0_bytes;
    uint32_t tcpi_delivered_ce_bytes;
    uint32_t tcpi_received_e1_bytes, tcpi_received_e0_bytes, tcpi_received_ce_bytes;
    uint16_t tcpi_accecn_fail_mode, tcpi_accecn_opt_seen;
};

/// getsockopt(TCP_INFO) into the full structure; returns the length the kernel filled.
int mt_tcp_info(int fd, struct mt_tcp_info *info);
/// Offset of snd_wnd / rcv_wnd inside struct mt_tcp_info (validity checks).
size_t mt_tcp_info_snd_wnd_end(void);
size_t mt_tcp_info_rcv_wnd_end(void);

/// ioctl(SIOCINQ): bytes received and not read (urgent bytes included with SO_OOBINLINE).
int mt_inq(int fd);
/// ioctl(SIOCOUTQ): bytes written and not acknowledged (a FIN counts 1).
int mt_outq(int fd);
/// ioctl(SIOCOUTQNSD): bytes written and not yet sent.
int mt_outq_notsent(int fd);
/// sockatmark(): 1 when the next byte to read is the last urgent byte.
int mt_at_mark(int fd);
/// SO_ERROR: takes (and so clears) the socket's pending error; returns it (0: none).
int mt_take_socket_error(int fd);

// MARK: the data path

// send, recv and poll as plain system calls (on x86_64, outside sanitizer builds). glibc's
// wrappers of these are cancellation points: in a multi-threaded process (as a process using
// the library mostly is: the reactor and the event threads are threads) each one switches
// the thread's cancellation type before and after the call, about 30 instructions per call.
// The library's threads are never cancelled, and a thread cancelled inside a receive or a
// send would leave the stream's locks held, so the data path skips that work.

/// send(2) with `flags`; the bytes taken, or -errno.
long mt_send(int fd, const void *buf, size_t len, int flags);
/// recv(2) with `flags`; the bytes read (0: end of stream), or -errno.
long mt_recv(int fd, void *buf, size_t len, int flags);
/// poll(2) on one descriptor: its returned events, 0 on timeout, or -errno (-EINTR included).
/// `timeout_ms` -1 waits without limit.
int mt_poll1(int fd, short events, int timeout_ms);
/// poll(2) on `fd` and, without a time limit, on `waker` (which only wakes the caller):
/// `fd`'s returned events (0 for none), or -errno (-EINTR included).
int mt_poll2(int fd, short events, int waker);

// MARK: sending and the error queue

/// Enables acknowledgement reports with byte offsets (SO_TIMESTAMPING with OPT_ID,
/// OPT_ID_TCP, OPT_TSONLY and software reporting); no report is generated until a send asks
/// for one. Offsets count from the bytes written before this call (write_seq).
int mt_enable_ack_reports(int fd);
/// send() that also asks the kernel to report, on the error queue, when the peer has
/// acknowledged the last byte of this call (SOF_TIMESTAMPING_TX_ACK).
long mt_send_reporting_ack(int fd, const void *buf, size_t len, int flags);

enum {
    MT_ERRQ_NONE = 0,
    MT_ERRQ_ACK = 1,      // an acknowledgement report: `data` is the offset of the acked byte
    MT_ERRQ_ICMP = 2,     // an ICMP error: type, code, offender, original destination
    MT_ERRQ_OTHER = 3,    // another local error report
};

struct mt_errq_entry {
    int kind;
    uint32_t data;        // ACK: byte offset (OPT_ID); ICMP: ee_info (e.g. next-hop MTU)
    int err;              // ee_errno
    uint8_t icmp_type, icmp_code;
    uint32_t offender;    // network byte order; 0 when unknown or IPv6
    uint32_t dest_addr;   // original destination, network byte order; 0 when IPv6
    uint16_t dest_port;   // network byte order
    uint8_t icmp6;        // 1: an ICMPv6 message (RFC 4443 types and codes)
    uint8_t offender6[16];  // the reporting host as IPv6 (IPv4-mapped for IPv4); zeros when unknown
    uint8_t dest6[16];      // the original destination as IPv6 (IPv4-mapped for IPv4)
    uint8_t payload[8];     // the first bytes of the datagram the entry is about (for an
                            // ICMP socket: the ICMP header of our echo request)
    uint32_t payload_length;
};

/// accept4(SOCK_NONBLOCK | SOCK_CLOEXEC) (a GNU call Swift cannot import): the peer's
/// address, of either family, in `peer`; `*length` in and out as for accept.
int mt_accept(int fd, void *peer, uint32_t *length);

/// Takes one entry from the socket's error queue (MSG_ERRQUEUE). Returns 1 with an entry,
/// 0 when the queue is empty, -errno on failure.
int mt_errqueue_next(int fd, struct mt_errq_entry *entry);


/// Receives one ICMP or ICMPv6 message without waiting (recvmsg): its bytes in `buffer`,
/// the sender in `from` (16 bytes, IPv4-mapped for IPv4), the TTL or hop limit from the
/// control messages in `*ttl` (-1 when absent), and how many nanoseconds ago the kernel
/// received it (`SO_TIMESTAMPNS`) in `*age_ns` (-1 when absent). Returns the length, or -errno.
int mt_icmp_receive(int fd, void *buffer, size_t length, uint8_t from[16], int *ttl, int64_t *age_ns);

/// Disconnects a TCP socket with a reset, keeping the descriptor (connect AF_UNSPEC).
int mt_disconnect(int fd);

#endif
