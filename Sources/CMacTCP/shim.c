// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

#define _GNU_SOURCE
#include "CMacTCP.h"

#include <errno.h>
#include <string.h>
#include <time.h>
#include <poll.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/ip_icmp.h>
#include <netinet/tcp.h>
#include <linux/sockios.h>
#include <linux/errqueue.h>
#include <linux/net_tstamp.h>

#ifndef SOF_TIMESTAMPING_OPT_ID_TCP
#define SOF_TIMESTAMPING_OPT_ID_TCP (1 << 16) /* Linux 6.2: IDs count from write_seq */
#endif

#define RET(x) do { long _r = (long)(x); return _r < 0 ? -errno : (int)_r; } while (0)

int mt_epoll_create(void) { RET(epoll_create1(EPOLL_CLOEXEC)); }

int mt_epoll_ctl(int epfd, int op, int fd, uint32_t events, uint64_t data) {
    struct epoll_event ev;
    memset(&ev, 0, sizeof ev);
    ev.events = events;
    ev.data.u64 = data;
    RET(epoll_ctl(epfd, op, fd, &ev));
}

int mt_epoll_wait(int epfd, uint32_t *events, uint64_t *data, int max, int timeout_ms) {
    struct epoll_event evs[64];
    if (max > 64) max = 64;
    int n = epoll_wait(epfd, evs, max, timeout_ms);
    if (n < 0) return -errno;
    for (int i = 0; i < n; i++) {
        events[i] = evs[i].events;
        data[i] = evs[i].data.u64;
    }
    return n;
}

int mt_eventfd(void) { RET(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)); }

int mt_eventfd_signal(int fd) {
    uint64_t one = 1;
    RET(write(fd, &one, sizeof one));
}

int mt_set_thread_name(const char *name) { RET(prctl(PR_SET_NAME, name, 0, 0, 0)); }

int mt_eventfd_drain(int fd) {
    uint64_t value;
    RET(read(fd, &value, sizeof value));
}

int mt_tcp_info(int fd, struct mt_tcp_info *info) {
    socklen_t len = sizeof *info;
    memset(info, 0, sizeof *info);
    if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, info, &len) < 0) return -errno;
    return (int)len;
}

size_t mt_tcp_info_snd_wnd_end(void) {
    return offsetof(struct mt_tcp_info, tcpi_snd_wnd) + sizeof(uint32_t);
}

size_t mt_tcp_info_rcv_wnd_end(void) {
    return offsetof(struct mt_tcp_info, tcpi_rcv_wnd) + sizeof(uint32_t);
}

static int ioctl_int(int fd, unsigned long request) {
    int value = 0;
    if (ioctl(fd, request, &value) < 0) return -errno;
    return value;
}

int mt_inq(int fd) { return ioctl_int(fd, SIOCINQ); }
int mt_outq(int fd) { return ioctl_int(fd, SIOCOUTQ); }
int mt_outq_notsent(int fd) { return ioctl_int(fd, SIOCOUTQNSD); }
int mt_at_mark(int fd) { RET(sockatmark(fd)); }

int mt_take_socket_error(int fd) {
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) return -errno;
    return err;
}

#ifndef __has_feature
#define __has_feature(x) 0
#endif

// send, recv and poll as system calls without glibc's wrappers (see the header), on x86_64.
// Under a sanitizer, and elsewhere, the wrappers stay: ThreadSanitizer orders a send before
// the receive of its bytes, and AddressSanitizer checks the buffers, by intercepting them.
#if defined(__x86_64__) && !__has_feature(thread_sanitizer) && !__has_feature(address_sanitizer)
// The result, or -errno.
static inline long raw_syscall(long number, long a, long b, long c, long d, long e, long f) {
    long result;
    register long r10 __asm__("r10") = d;
    register long r8 __asm__("r8") = e;
    register long r9 __asm__("r9") = f;
    __asm__ volatile("syscall"
                     : "=a"(result)
                     : "a"(number), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
                     : "rcx", "r11", "memory");
    return result;
}

long mt_send(int fd, const void *buf, size_t len, int flags) {
    return raw_syscall(SYS_sendto, fd, (long)buf, (long)len, flags, 0, 0);
}

long mt_recv(int fd, void *buf, size_t len, int flags) {
    return raw_syscall(SYS_recvfrom, fd, (long)buf, (long)len, flags, 0, 0);
}

static int raw_poll(struct pollfd *fds, unsigned long count, int timeout_ms) {
    return (int)raw_syscall(SYS_poll, (long)fds, (long)count, timeout_ms, 0, 0, 0);
}
#else
long mt_send(int fd, const void *buf, size_t len, int flags) {
    ssize_t n = send(fd, buf, len, flags);
    return n < 0 ? -errno : n;
}

long mt_recv(int fd, void *buf, size_t len, int flags) {
    ssize_t n = recv(fd, buf, len, flags);
    return n < 0 ? -errno : n;
}

static int raw_poll(struct pollfd *fds, unsigned long count, int timeout_ms) { RET(poll(fds, count, timeout_ms)); }
#endif

int mt_poll1(int fd, short events, int timeout_ms) {
    struct pollfd entry = {fd, events, 0};
    int n = raw_poll(&entry, 1, timeout_ms);
    if (n <= 0) return n;
    return (unsigned short)entry.revents;
}

int mt_poll2(int fd, short events, int waker) {
    struct pollfd entries[2] = {{fd, events, 0}, {waker, POLLIN, 0}};
    int n = raw_poll(entries, 2, -1);
    if (n < 0) return n;
    return (unsigned short)entries[0].revents;
}

int mt_enable_ack_reports(int fd) {
    int flags = SOF_TIMESTAMPING_SOFTWARE | SOF_TIMESTAMPING_OPT_TSONLY | SOF_TIMESTAMPING_OPT_ID |
                SOF_TIMESTAMPING_OPT_ID_TCP;
    RET(setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPING, &flags, sizeof flags));
}

long mt_send_reporting_ack(int fd, const void *buf, size_t len, int flags) {
    struct iovec iov = {(void *)buf, len};
    union {
        char bytes[CMSG_SPACE(sizeof(uint32_t))];
        struct cmsghdr align;
    } control;
    memset(&control, 0, sizeof control);
    struct msghdr msg;
    memset(&msg, 0, sizeof msg);
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.bytes;
    msg.msg_controllen = sizeof control.bytes;
    struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SO_TIMESTAMPING;
    cm->cmsg_len = CMSG_LEN(sizeof(uint32_t));
    uint32_t report = SOF_TIMESTAMPING_TX_ACK;
    memcpy(CMSG_DATA(cm), &report, sizeof report);
    ssize_t n = sendmsg(fd, &msg, flags);
    return n < 0 ? -errno : n;
}

/// Copies an address of either family as 16 IPv6 bytes (IPv4 mapped); returns the IPv4
/// address in network byte order, or 0 for IPv6.
static uint32_t mt_address16(const struct sockaddr *address, uint8_t out[16]) {
    if (address->sa_family == AF_INET) {
        uint32_t v4 = ((const struct sockaddr_in *)address)->sin_addr.s_addr;
        memset(out, 0, 10);
        out[10] = out[11] = 0xFF;
        memcpy(out + 12, &v4, 4);
        return v4;
    }
    if (address->sa_family == AF_INET6) {
        const struct in6_addr *v6 = &((const struct sockaddr_in6 *)address)->sin6_addr;
        memcpy(out, v6, 16);
        if (IN6_IS_ADDR_V4MAPPED(v6)) {
            uint32_t v4;
            memcpy(&v4, out + 12, 4);
            return v4;
        }
    }
    return 0;
}

int mt_errqueue_next(int fd, struct mt_errq_entry *entry) {
    char control[512];
    struct sockaddr_storage from;
    char payload[64];
    struct iovec iov = {payload, sizeof payload};
    struct msghdr msg;
    memset(&msg, 0, sizeof msg);
    memset(&from, 0, sizeof from);
    memset(entry, 0, sizeof *entry);
    msg.msg_name = &from;
    msg.msg_namelen = sizeof from;
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    ssize_t received = recvmsg(fd, &msg, MSG_ERRQUEUE | MSG_DONTWAIT);
    if (received < 0) {
        return (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : -errno;
    }
    entry->payload_length = (uint32_t)received;
    memcpy(entry->payload, payload, received < 8 ? (size_t)received : 8);
    entry->kind = MT_ERRQ_OTHER;
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm)) {
        // An IPv4 socket reports as SOL_IP, an IPv6 one (dual-stack too) as SOL_IPV6.
        int ours = (cm->cmsg_level == SOL_IP && cm->cmsg_type == IP_RECVERR)
                   || (cm->cmsg_level == SOL_IPV6 && cm->cmsg_type == IPV6_RECVERR);
        if (!ours) continue;
        struct sock_extended_err *ee = (struct sock_extended_err *)CMSG_DATA(cm);
        entry->err = (int)ee->ee_errno;
        if (ee->ee_origin == SO_EE_ORIGIN_TIMESTAMPING) {
            entry->kind = ee->ee_info == SCM_TSTAMP_ACK ? MT_ERRQ_ACK : MT_ERRQ_OTHER;
            entry->data = ee->ee_data;
        } else if (ee->ee_origin == SO_EE_ORIGIN_ICMP || ee->ee_origin == SO_EE_ORIGIN_ICMP6) {
            entry->kind = MT_ERRQ_ICMP;
            entry->icmp6 = ee->ee_origin == SO_EE_ORIGIN_ICMP6;
            entry->icmp_type = ee->ee_type;
            entry->icmp_code = ee->ee_code;
            entry->data = ee->ee_info;
            entry->offender = mt_address16(SO_EE_OFFENDER(ee), entry->offender6);
            if (msg.msg_namelen > 0) {
                entry->dest_addr = mt_address16((const struct sockaddr *)&from, entry->dest6);
                entry->dest_port = ((const struct sockaddr_in *)&from)->sin_port;  // same offset in both
            }
        } else {
            entry->data = ee->ee_info;
        }
    }
    return 1;
}

int mt_icmp_receive(int fd, void *buffer, size_t length, uint8_t from[16], int *ttl, int64_t *age_ns) {
    char control[256];
    struct sockaddr_storage sender;
    struct iovec iov = {buffer, length};
    struct msghdr msg;
    memset(&msg, 0, sizeof msg);
    memset(&sender, 0, sizeof sender);
    msg.msg_name = &sender;
    msg.msg_namelen = sizeof sender;
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    ssize_t received = recvmsg(fd, &msg, MSG_DONTWAIT);
    if (received < 0) return -errno;
    memset(from, 0, 16);
    mt_address16((const struct sockaddr *)&sender, from);
    *ttl = -1;
    *age_ns = -1;
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm)) {
        if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_TIMESTAMPNS) {
            // The kernel's time of arrival (CLOCK_REALTIME): given as how long ago it was.
            struct timespec arrived, now;
            memcpy(&arrived, CMSG_DATA(cm), sizeof arrived);
            clock_gettime(CLOCK_REALTIME, &now);
            int64_t age = (int64_t)(now.tv_sec - arrived.tv_sec) * 1000000000 + (now.tv_nsec - arrived.tv_nsec);
            *age_ns = age < 0 ? 0 : age;
        }
        if ((cm->cmsg_level == SOL_IP && cm->cmsg_type == IP_TTL)
            || (cm->cmsg_level == SOL_IPV6 && cm->cmsg_type == IPV6_HOPLIMIT)) {
            memcpy(ttl, CMSG_DATA(cm), sizeof *ttl);
        }
    }
    return (int)received;
}

int mt_accept(int fd, void *peer, uint32_t *length) {
    int result = accept4(fd, (struct sockaddr *)peer, (socklen_t *)length, SOCK_NONBLOCK | SOCK_CLOEXEC);
    return result < 0 ? -errno : result;
}

int mt_disconnect(int fd) {
    struct sockaddr unspec;
    memset(&unspec, 0, sizeof unspec);
    unspec.sa_family = AF_UNSPEC;
    RET(connect(fd, &unspec, sizeof unspec));
}

