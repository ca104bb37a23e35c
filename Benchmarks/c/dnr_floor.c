// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.
//
// The floor of SPEC §6's wire rule, a reference of Benchmarks/dnr/run.sh: the least a stub
// resolver can do when every query has a socket of its own (a random source port) and a
// random ID, as DNR's queries do, and c-ares' (one socket per server) do not. One thread,
// epoll, INFLIGHT queries outstanding; each is a socket, connect, send of an A query with
// EDNS0, epoll_ctl add, one recv, the ID and question checked, the first A read, close.
// No cache, no search list, no retries: what remains is the system calls and the packet.
//   dnr_floor SERVER COUNT INFLIGHT
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static struct sockaddr_in server;
static int epfd, count, started, finished, wrong;
static unsigned run;
static unsigned short ids[65536];

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static size_t query(unsigned char *out, unsigned short id, const char *name) {
    size_t n = 0;
    out[n++] = id >> 8; out[n++] = id & 0xFF;
    out[n++] = 0x01; out[n++] = 0x00;             // RD
    out[n++] = 0; out[n++] = 1; memset(out + n, 0, 4); n += 4; out[n++] = 0; out[n++] = 1;  // QD 1, AR 1
    const char *label = name;
    while (*label) {
        const char *dot = strchr(label, '.');
        size_t length = dot ? (size_t)(dot - label) : strlen(label);
        out[n++] = (unsigned char)length;
        memcpy(out + n, label, length); n += length;
        label += length + (dot ? 1 : 0);
    }
    out[n++] = 0;
    out[n++] = 0; out[n++] = 1; out[n++] = 0; out[n++] = 1;  // A, IN
    unsigned char opt[] = {0, 0, 41, 0x04, 0xD0, 0, 0, 0, 0, 0, 0};  // OPT, 1232 bytes
    memcpy(out + n, opt, sizeof opt);
    return n + sizeof opt;
}

static void start_one(void) {
    char name[128];
    unsigned char packet[512];
    snprintf(name, sizeof name, "n%d-%u.bench.test", started++, run);
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0 || fd >= 65536 || connect(fd, (struct sockaddr *)&server, sizeof server) < 0) { perror("socket"); exit(70); }
    unsigned short id;
    getrandom(&id, sizeof id, 0);
    ids[fd] = id;
    size_t length = query(packet, id, name);
    if (send(fd, packet, length, MSG_NOSIGNAL) < 0) { perror("send"); exit(70); }
    struct epoll_event event = {.events = EPOLLIN, .data.fd = fd};
    epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &event);
}

// The first answer record's A address, or 0; the ID and the question's length checked.
static unsigned answer(const unsigned char *m, ssize_t n, unsigned short id) {
    if (n < 12 || (m[0] << 8 | m[1]) != id || !(m[2] & 0x80) || (m[7] | m[6] << 8) == 0) return 0;
    ssize_t at = 12;
    while (at < n && m[at]) at += m[at] + 1;      // the question's name
    at += 5;                                        // its end, type and class
    if (at + 12 > n) return 0;
    at += (m[at] & 0xC0) == 0xC0 ? 2 : 0;           // the answer's name (a pointer)
    if (at + 14 > n || m[at + 1] != 1) return 0;
    return (unsigned)m[at + 10] << 24 | m[at + 11] << 16 | m[at + 12] << 8 | m[at + 13];
}

int main(int argc, char **argv) {
    if (argc < 4) return 64;
    count = atoi(argv[2]);
    int inflight = atoi(argv[3]);
    getrandom(&run, sizeof run, 0);
    server.sin_family = AF_INET;
    server.sin_port = htons(53);
    if (inet_pton(AF_INET, argv[1], &server.sin_addr) != 1) return 64;
    epfd = epoll_create1(EPOLL_CLOEXEC);
    double start = now();
    for (int i = 0; i < inflight && started < count; i++) start_one();
    struct epoll_event events[64];
    unsigned char buffer[65536];
    while (finished < count) {
        int ready = epoll_wait(epfd, events, 64, 2000);
        if (ready <= 0) { fprintf(stderr, "no answer in 2 s\n"); return 1; }
        for (int i = 0; i < ready; i++) {
            int fd = events[i].data.fd;
            ssize_t n = recv(fd, buffer, sizeof buffer, MSG_DONTWAIT);
            if (n < 0) continue;
            if (answer(buffer, n, ids[fd]) != 0x0A090909) wrong++;
            epoll_ctl(epfd, EPOLL_CTL_DEL, fd, NULL);
            close(fd);
            finished++;
            if (started < count) start_one();
        }
    }
    double elapsed = now() - start;
    printf("miss queries %d inflight %d seconds %.3f qps %d wrong %d\n", count, inflight, elapsed, (int)(count / elapsed), wrong);
    return wrong ? 1 : 0;
}
