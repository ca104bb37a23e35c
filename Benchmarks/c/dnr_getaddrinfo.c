// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.
//
// glibc's getaddrinfo in a pool of threads, the C reference of Benchmarks/dnr/run.sh (run in
// a mount namespace whose /etc/resolv.conf names the loopback server only).
//   dnr_getaddrinfo miss COUNT THREADS   distinct names: queries/s
//   dnr_getaddrinfo hit COUNT NAME       one /etc/hosts name asked COUNT times: ns per call
#include <netdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <arpa/inet.h>

static atomic_int next_index, wrong;
static int count;
static unsigned run;

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static int lookup(const char *name) {
    struct addrinfo hints = {0}, *result = NULL;
    hints.ai_family = AF_INET;
    hints.ai_socktype = SOCK_STREAM;
    int status = getaddrinfo(name, NULL, &hints, &result);
    int ok = status == 0 && ((struct sockaddr_in *)result->ai_addr)->sin_addr.s_addr == htonl(0x0A090909);
    if (result) freeaddrinfo(result);
    return ok;
}

static void *worker(void *unused) {
    (void)unused;
    char name[128];
    for (;;) {
        int index = atomic_fetch_add(&next_index, 1);
        if (index >= count) return NULL;
        snprintf(name, sizeof name, "n%d-%u.bench.test", index, run);
        if (!lookup(name)) atomic_fetch_add(&wrong, 1);
    }
}

int main(int argc, char **argv) {
    if (argc < 4) return 64;
    count = atoi(argv[2]);
    srand((unsigned)time(NULL) ^ (unsigned)clock());
    run = (unsigned)rand();
    double start = now();
    if (strcmp(argv[1], "miss") == 0) {
        int threads = atoi(argv[3]);
        pthread_t pool[1024];
        for (int i = 0; i < threads; i++) pthread_create(&pool[i], NULL, worker, NULL);
        for (int i = 0; i < threads; i++) pthread_join(pool[i], NULL);
        double elapsed = now() - start;
        printf("miss queries %d threads %d seconds %.3f qps %d wrong %d\n", count, threads, elapsed, (int)(count / elapsed), wrong);
        return wrong == 0 ? 0 : 1;
    }
    int answered = 0;
    start = now();
    for (int i = 0; i < count; i++) answered += lookup(argv[3]);
    double elapsed = now() - start;
    printf("hit calls %d seconds %.3f ns_per_call %.1f answered %d\n", count, elapsed, elapsed * 1e9 / count, answered);
    return answered == count ? 0 : 1;
}
