// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.
//
// The C reference of Benchmarks/http/run.sh: THREADS threads in a blocking accept on one
// listener (backlog 1,024) on 127.0.0.1, each serving one connection at a time as httpd's
// streams do: every GET gets the same 13-byte body; after a `Connection: close` request the
// answer, shutdown(SHUT_WR), a read to the client's end and close. Prints READY.
//   http_accept PORT THREADS
#include <arpa/inet.h>
#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int listener;
static const char answer[] = "HTTP/1.1 200 OK\r\nContent-Length: 13\r\nContent-Type: text/plain\r\n\r\nHello, world!";
static const char closing[] =
    "HTTP/1.1 200 OK\r\nContent-Length: 13\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\nHello, world!";

static int asks_close(const char *head, size_t length) {
    static const char key[] = "\r\nconnection: close";
    size_t n = sizeof key - 1;
    for (size_t i = 0; i + n <= length; i++) {
        size_t j = 0;
        while (j < n && tolower((unsigned char)head[i + j]) == key[j]) j++;
        if (j == n) return 1;
    }
    return 0;
}

static void serve(int fd) {
    char buffer[65536];
    size_t have = 0;
    for (;;) {
        ssize_t got = read(fd, buffer + have, sizeof buffer - have);
        if (got <= 0) break;
        have += (size_t)got;
        for (;;) {
            char *end = NULL;
            for (size_t i = 3; i < have; i++) {
                if (buffer[i] == '\n' && buffer[i - 1] == '\r' && buffer[i - 2] == '\n' && buffer[i - 3] == '\r') {
                    end = buffer + i + 1;
                    break;
                }
            }
            if (!end) break;
            size_t length = (size_t)(end - buffer);
            int close_it = asks_close(buffer, length);
            memmove(buffer, end, have - length);
            have -= length;
            if (close_it) {
                if (write(fd, closing, sizeof closing - 1) < 0) goto done;
                shutdown(fd, SHUT_WR);
                while (read(fd, buffer, sizeof buffer) > 0) {}
                goto done;
            }
            if (write(fd, answer, sizeof answer - 1) < 0) goto done;
        }
        if (have == sizeof buffer) break;
    }
done:
    close(fd);
}

static void *worker(void *unused) {
    (void)unused;
    for (;;) {
        int fd = accept(listener, NULL, NULL);
        if (fd >= 0) serve(fd);
    }
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 3) return 64;
    int threads = atoi(argv[2]);
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons((unsigned short)atoi(argv[1]))};
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(listener, (struct sockaddr *)&address, sizeof address) < 0 || listen(listener, 1024) < 0) {
        perror("listen");
        return 70;
    }
    for (int i = 0; i < threads; i++) {
        pthread_t thread;
        pthread_create(&thread, NULL, worker, NULL);
    }
    printf("READY\n");
    fflush(stdout);
    for (;;) pause();
}
