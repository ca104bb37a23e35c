// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

/* The C reference for `netbench asr-latency`: the time from a peer's write to an epoll
 * loop thread noticing the data, p50/p99 over COUNT messages on loopback.
 * Build: cc -O2 -pthread -o asr-latency-c c/asr_latency.c
 * Run:   ./asr-latency-c COUNT                  (prints RESULT count=N p50_us=.. p99_us=..) */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static _Atomic uint64_t arrival;
static int server_fd;

static uint64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

static void *loop(void *unused) {
    (void)unused;
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN | EPOLLET, .data.fd = server_fd};
    epoll_ctl(ep, EPOLL_CTL_ADD, server_fd, &ev);
    for (;;) {
        struct epoll_event out[8];
        int n = epoll_wait(ep, out, 8, -1);
        if (n > 0) atomic_store(&arrival, now_ns());
    }
    return NULL;
}

static int cmp(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    int count = argc > 1 ? atoi(argv[1]) : 10000;
    int listener = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    bind(listener, (void *)&a, sizeof a);
    listen(listener, 1);
    getsockname(listener, (void *)&a, &len);
    int client = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    connect(client, (void *)&a, sizeof a);
    setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    server_fd = accept(listener, NULL, NULL);
    pthread_t thread;
    pthread_create(&thread, NULL, loop, NULL);
    usleep(10000);
    uint64_t *samples = malloc(sizeof *samples * (size_t)count);
    char byte = 1;
    for (int i = 0; i < count + 100; i++) {
        atomic_store(&arrival, 0);
        uint64_t sent = now_ns();
        if (write(client, &byte, 1) != 1) return 1;
        uint64_t seen;
        while ((seen = atomic_load(&arrival)) == 0) {}
        if (i >= 100) samples[i - 100] = seen - sent;
        if (read(server_fd, &byte, 1) != 1) return 1;
    }
    qsort(samples, (size_t)count, sizeof *samples, cmp);
    size_t p50 = (size_t)ceil(0.50 * count) - 1, p99 = (size_t)ceil(0.99 * count) - 1;
    printf("RESULT count=%d p50_us=%.2f p99_us=%.2f\n", count, samples[p50] / 1e3, samples[p99] / 1e3);
    return 0;
}
