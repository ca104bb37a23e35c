// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

/* C with MacTCP's system calls: the bulk, pingpong and connrate workloads of the benchmark
 * protocol, written in plain C but making, per operation, the system calls that MacTCP's
 * semantics need (the ones `netbench` makes through the library), and nothing else:
 *
 *   open     socket, SO_OOBINLINE, TCP_NODELAY, IP_RECVERR, TCP_USER_TIMEOUT, non-blocking
 *            connect, poll for its end, getsockname (the server: accept4, getsockname;
 *            the options come from the listener)
 *   receive  poll for POLLIN|POLLPRI (urgent data must be known before reading), recv;
 *            at end of stream the poll's POLLERR says whether a reset hides behind the FIN
 *   send     send (non-blocking, poll when the buffer is full)
 *   close    shutdown(SHUT_WR), TCP_INFO; until the FIN is acknowledged, an epoll instance
 *            on the socket's state changes and TCP_INFO after each
 *
 * It is the floor for those semantics: what the library costs above it is the library's
 * own; what this costs above the protocol's C reference is the semantics'.
 *
 * Build: cc -O2 -o netbench-c-semantics c/semantics_floor.c
 * Run:   as the protocol's contenders (bulk, pingpong and connrate only). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define IOBUF (64 * 1024)

static void die(const char *what) {
    fprintf(stderr, "netbench-c-semantics: %s: %s\n", what, strerror(errno));
    exit(1);
}

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static struct sockaddr_in loopback_addr(const char *host, const char *port) {
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)atoi(port));
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1 || (ntohl(sa.sin_addr.s_addr) >> 24) != 127) {
        fprintf(stderr, "netbench-c-semantics: not a loopback IPv4 address: %s\n", host);
        exit(2);
    }
    return sa;
}

static void set_options(int fd) {
    int one = 1, timeout = 120000;
    setsockopt(fd, SOL_SOCKET, SO_OOBINLINE, &one, sizeof one);
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    setsockopt(fd, IPPROTO_IP, IP_RECVERR, &one, sizeof one);
    setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &timeout, sizeof timeout);
}

static int listen_on(const char *port) {
    struct sockaddr_in sa = loopback_addr("127.0.0.1", port);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) die("socket");
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    set_options(fd);
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) die("bind");
    if (listen(fd, 4096) < 0) die("listen");
    printf("READY\n");
    fflush(stdout);
    return fd;
}

static int accept_one(int lfd) {
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
            struct sockaddr_in local;
            socklen_t len = sizeof local;
            getsockname(fd, (struct sockaddr *)&local, &len);
            return fd;
        }
        if (errno != EAGAIN && errno != EINTR) die("accept");
        struct pollfd p = {lfd, POLLIN, 0};
        poll(&p, 1, -1);
    }
}

static int open_stream(const char *host, const char *port) {
    struct sockaddr_in sa = loopback_addr(host, port);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) die("socket");
    set_options(fd);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        if (errno != EINPROGRESS) die("connect");
        struct pollfd p = {fd, POLLOUT, 0};
        if (poll(&p, 1, 10000) != 1 || (p.revents & (POLLERR | POLLHUP))) die("connect");
    }
    struct sockaddr_in local;
    socklen_t len = sizeof local;
    getsockname(fd, (struct sockaddr *)&local, &len);
    return fd;
}

/* Returns the bytes read, 0 at end of stream, -1 on a failure. */
static ssize_t receive(int fd, char *buf, size_t max) {
    for (;;) {
        struct pollfd p = {fd, POLLIN | POLLPRI, 0};
        if (poll(&p, 1, -1) < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        ssize_t r = recv(fd, buf, max, MSG_DONTWAIT);
        if (r > 0) return r;
        if (r == 0) {
            if (p.revents & POLLERR) {
                int error = 0;
                socklen_t len = sizeof error;
                getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &len);
                if (error) return -1;
            }
            return 0;
        }
        if (errno != EAGAIN && errno != EINTR) return -1;
    }
}

static int send_all(int fd, const char *p, size_t n) {
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w > 0) {
            p += w;
            n -= (size_t)w;
            continue;
        }
        if (errno == EAGAIN) {
            struct pollfd q = {fd, POLLOUT, 0};
            poll(&q, 1, -1);
        } else if (errno != EINTR) {
            return -1;
        }
    }
    return 0;
}

static int fin_acknowledged(int fd) {
    struct tcp_info info;
    socklen_t len = sizeof info;
    if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len) < 0) return 1;
    return info.tcpi_state == TCP_FIN_WAIT2 || info.tcpi_state == TCP_TIME_WAIT || info.tcpi_state == TCP_CLOSE;
}

/* MacTCP's close: a half-close that returns when the FIN is acknowledged. */
static void close_stream(int fd) {
    shutdown(fd, SHUT_WR);
    if (fin_acknowledged(fd)) return;
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.fd = fd};
    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    while (!fin_acknowledged(fd)) epoll_wait(ep, &ev, 1, 200);
    close(ep);
}

static int receive_exactly(int fd, char *buf, size_t n) {
    while (n > 0) {
        ssize_t r = receive(fd, buf, n);
        if (r <= 0) return -1;
        buf += r;
        n -= (size_t)r;
    }
    return 0;
}

static void receive_to_end(int fd, char *buf) {
    while (receive(fd, buf, IOBUF) > 0) {}
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static uint64_t pct(const uint64_t *s, size_t n, double p) {
    size_t rank = (size_t)((p / 100.0) * (double)n + 0.999999999);
    if (rank < 1) rank = 1;
    if (rank > n) rank = n;
    return s[rank - 1];
}

/* A server: one connection at a time, each given to `handle` with a 64 KiB buffer. */
static _Noreturn void serve(const char *port, void (*handle)(int fd, char *buf)) {
    int lfd = listen_on(port);
    char *buf = malloc(IOBUF);
    for (;;) {
        int fd = accept_one(lfd);
        handle(fd, buf);
        close(fd);
    }
}

static void bulk_serve(int fd, char *buf) {
    unsigned long long total = 0;
    ssize_t r;
    while ((r = receive(fd, buf, IOBUF)) > 0) total += (unsigned long long)r;
    char line[32];
    int n = snprintf(line, sizeof line, "%llu\n", total);
    send_all(fd, line, (size_t)n);
    close_stream(fd);
}

static int bulk_client(const char *host, const char *port, const char *bytes_s, const char *chunk_s) {
    unsigned long long bytes = strtoull(bytes_s, NULL, 10);
    size_t chunk = (size_t)strtoull(chunk_s, NULL, 10);
    char *buf = malloc(chunk > IOBUF ? chunk : IOBUF);
    for (size_t i = 0; i < chunk; i++) buf[i] = (char)(i * 31u);
    int fd = open_stream(host, port);
    uint64_t t0 = now_ns();
    for (unsigned long long left = bytes; left > 0;) {
        size_t n = left < chunk ? (size_t)left : chunk;
        if (send_all(fd, buf, n) < 0) die("send");
        left -= n;
    }
    close_stream(fd);
    char reply[64];
    size_t got = 0;
    ssize_t r;
    while (got < sizeof reply - 1 && (r = receive(fd, reply + got, sizeof reply - 1 - got)) > 0) got += (size_t)r;
    double secs = (double)(now_ns() - t0) / 1e9;
    reply[got] = 0;
    close(fd);
    if (strtoull(reply, NULL, 10) != bytes) {
        fprintf(stderr, "netbench-c-semantics: the server counted %s", reply);
        return 1;
    }
    printf("RESULT bytes=%llu seconds=%.6f mb_per_s=%.1f\n", bytes, secs, (double)bytes / secs / 1e6);
    return 0;
}

static void pingpong_serve(int fd, char *buf) {
    ssize_t r;
    while ((r = receive(fd, buf, IOBUF)) > 0) {
        if (send_all(fd, buf, (size_t)r) < 0) break;
    }
}

static int pingpong_client(const char *host, const char *port, const char *size_s, const char *count_s,
                           const char *warmup_s) {
    size_t size = (size_t)atol(size_s), count = (size_t)atol(count_s), warmup = (size_t)atol(warmup_s);
    char *out = malloc(size), *in = malloc(size);
    memset(out, 'x', size);
    uint64_t *samples = malloc(count * sizeof *samples);
    int fd = open_stream(host, port);
    for (size_t i = 0; i < warmup + count; i++) {
        uint64_t t0 = now_ns();
        if (send_all(fd, out, size) < 0) die("send");
        if (receive_exactly(fd, in, size) < 0) die("receive");
        if (i >= warmup) samples[i - warmup] = now_ns() - t0;
    }
    close(fd);
    double sum = 0;
    for (size_t i = 0; i < count; i++) sum += (double)samples[i];
    qsort(samples, count, sizeof *samples, cmp_u64);
    printf("RESULT count=%zu size=%zu p50_us=%.2f p99_us=%.2f mean_us=%.2f min_us=%.2f max_us=%.2f\n", count, size,
           pct(samples, count, 50) / 1e3, pct(samples, count, 99) / 1e3, sum / (double)count / 1e3,
           samples[0] / 1e3, samples[count - 1] / 1e3);
    return 0;
}

static void connrate_serve(int fd, char *buf) {
    if (receive(fd, buf, 1) != 1) return;
    send_all(fd, buf, 1);
    close_stream(fd);
    receive_to_end(fd, buf);
}

static int connrate_client(const char *host, const char *port, const char *count_s) {
    size_t count = (size_t)atol(count_s);
    uint64_t *samples = malloc(count * sizeof *samples);
    char *buf = malloc(IOBUF);
    uint64_t t0 = now_ns();
    for (size_t i = 0; i < count; i++) {
        uint64_t c0 = now_ns();
        int fd = open_stream(host, port);
        buf[0] = 'c';
        if (send_all(fd, buf, 1) < 0) die("send");
        if (receive_exactly(fd, buf, 1) < 0) die("receive");
        receive_to_end(fd, buf);
        close_stream(fd);
        close(fd);
        samples[i] = now_ns() - c0;
    }
    double secs = (double)(now_ns() - t0) / 1e9;
    qsort(samples, count, sizeof *samples, cmp_u64);
    printf("RESULT conns=%zu seconds=%.6f conns_per_s=%.1f p50_us=%.2f p99_us=%.2f\n", count, secs,
           (double)count / secs, pct(samples, count, 50) / 1e3, pct(samples, count, 99) / 1e3);
    return 0;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGPIPE, SIG_IGN);
    const char *cmd = argc > 1 ? argv[1] : "";
    if (!strcmp(cmd, "bulk-server") && argc == 3) serve(argv[2], bulk_serve);
    if (!strcmp(cmd, "bulk-client") && argc == 6) return bulk_client(argv[2], argv[3], argv[4], argv[5]);
    if (!strcmp(cmd, "pingpong-server") && argc == 3) serve(argv[2], pingpong_serve);
    if (!strcmp(cmd, "pingpong-client") && argc == 7) return pingpong_client(argv[2], argv[3], argv[4], argv[5], argv[6]);
    if (!strcmp(cmd, "connrate-server") && argc == 3) serve(argv[2], connrate_serve);
    if (!strcmp(cmd, "connrate-client") && argc == 5) return connrate_client(argv[2], argv[3], argv[4]);
    fprintf(stderr, "usage: netbench-c-semantics bulk-server PORT | bulk-client HOST PORT BYTES CHUNK\n"
                    "       | pingpong-server PORT | pingpong-client HOST PORT SIZE COUNT WARMUP\n"
                    "       | connrate-server PORT | connrate-client HOST PORT COUNT\n");
    return 64;
}
