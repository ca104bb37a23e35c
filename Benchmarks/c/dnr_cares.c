// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.
//
// c-ares (Debian's 1.18, which has no cache of its own), the cache-off reference of
// Benchmarks/dnr/run.sh: COUNT distinct names, INFLIGHT queries outstanding on one channel.
//   dnr_cares SERVER COUNT INFLIGHT
#include <ares.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/select.h>
#include <time.h>

static int count, started, finished, wrong;
static unsigned run;
static ares_channel channel;

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static void start_one(void);

static void done(void *arg, int status, int timeouts, struct hostent *host) {
    (void)arg;
    (void)timeouts;
    finished++;
    if (status != ARES_SUCCESS || !host || !host->h_addr_list[0]
        || ((struct in_addr *)host->h_addr_list[0])->s_addr != htonl(0x0A090909)) {
        wrong++;
    }
    if (started < count) start_one();
}

static void start_one(void) {
    char name[128];
    snprintf(name, sizeof name, "n%d-%u.bench.test", started++, run);
    ares_gethostbyname(channel, name, AF_INET, done, NULL);
}

int main(int argc, char **argv) {
    if (argc < 4) return 64;
    count = atoi(argv[2]);
    int inflight = atoi(argv[3]);
    srand((unsigned)time(NULL) ^ (unsigned)clock());
    run = (unsigned)rand();
    ares_library_init(ARES_LIB_INIT_ALL);
    struct ares_options options = {0};
    options.flags = ARES_FLAG_NOSEARCH | ARES_FLAG_NOALIASES;
    options.lookups = "b";
    if (ares_init_options(&channel, &options, ARES_OPT_FLAGS | ARES_OPT_LOOKUPS) != ARES_SUCCESS) return 70;
    if (ares_set_servers_csv(channel, argv[1]) != ARES_SUCCESS) return 70;
    double start = now();
    for (int i = 0; i < inflight && started < count; i++) start_one();
    while (finished < count) {
        fd_set readers, writers;
        FD_ZERO(&readers);
        FD_ZERO(&writers);
        int highest = ares_fds(channel, &readers, &writers);
        struct timeval wait, *limit = ares_timeout(channel, NULL, &wait);
        select(highest, &readers, &writers, NULL, limit);
        ares_process(channel, &readers, &writers);
    }
    double elapsed = now() - start;
    printf("miss queries %d inflight %d seconds %.3f qps %d wrong %d\n", count, inflight, elapsed, (int)(count / elapsed), wrong);
    ares_destroy(channel);
    ares_library_cleanup();
    return wrong == 0 ? 0 : 1;
}
