#!/usr/bin/env bash
# MacTCP for Swift
# Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.
#
# HTTP-style load (BENCHMARKS.md, "Servers under load"): Debian's wrk against `httpd` (the
# MacTCP responder: a pool of blocking streams or of async ones, with MacTCP's rule or with a
# kept port), a C reference (threads in accept on one listener) and SwiftNIO's (NIOHTTP1,
# niohttpd), the same run, on 127.0.0.1 only. Keep-alive (100 connections) and churn
# (`Connection: close`, 50 connections); requests/s, latency p50/p99 and wrk's socket errors.
#
#   Benchmarks/http/run.sh       (as root: it installs wrk; DURATION, ROUNDS, PLACEMENTS may be set)
#
# Placements: 1cpu = the server on CPU 0, wrk on CPU 1; 2cpu = neither pinned.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-5}
ROUNDS=${ROUNDS:-2}
PLACEMENTS=${PLACEMENTS:-"1cpu 2cpu"}
PORT=${PORT:-18000}  # the first run's port less one

command -v wrk >/dev/null 2>&1 || { apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk; }
swift build -c release --product httpd >/dev/null
swift build -c release --product niohttpd >/dev/null
cc -O2 -Wall -o .build/http_accept c/http_accept.c -lpthread
httpd=.build/release/httpd

# name|command, @PORT@ replaced by each run's port. Every run has a port of its own: the
# TIME-WAIT connections a churn run leaves (the server closes first) would keep another
# program's listener off that port for a minute (httpd binds with SO_REUSEPORT, not
# SO_REUSEADDR; see the library's KernelLimits article).
contenders=(
    "c-256-threads|.build/http_accept @PORT@ 256"
    "swiftnio|.build/release/niohttpd --port @PORT@"
    "mactcp-pool128|$httpd --port @PORT@ --pool 128"
    "mactcp-pool8-kept|$httpd --port @PORT@ --pool 8 --backlog 128"
    "mactcp-pool128-kept|$httpd --port @PORT@ --pool 128 --backlog 128"
    "mactcp-async-pool128|$httpd --port @PORT@ --pool 128 --async"
    "mactcp-async-pool8-kept|$httpd --port @PORT@ --pool 8 --backlog 128 --async"
    "mactcp-async-pool128-kept|$httpd --port @PORT@ --pool 128 --backlog 128 --async"
)

# Runs wrk against the server and prints: requests/s p50 p99 socket-errors.
load() {
    local pin=$1 mode=$2 output
    local connections=100 header=()
    if [ "$mode" = churn ]; then connections=50; header=(-H "Connection: close"); fi
    output=$($pin wrk -t2 -c$connections -d${DURATION}s --latency "${header[@]}" "http://127.0.0.1:$PORT/" 2>&1)
    local rps p50 p99 errors
    rps=$(echo "$output" | awk '/Requests\/sec/ { print int($2) }')
    p50=$(echo "$output" | awk '$1 == "50%" { print $2 }')
    p99=$(echo "$output" | awk '$1 == "99%" { print $2 }')
    errors=$(echo "$output" | awk '/Socket errors/ { gsub(",", ""); print $4 + $6 + $8 + $10 }')
    echo "${rps:-0} ${p50:-?} ${p99:-?} ${errors:-0}"
}

printf '%-6s %-5s %-10s %-26s %10s %9s %9s %8s\n' round place mode server "req/s" p50 p99 errors
for round in $(seq 1 "$ROUNDS"); do
    for placement in $PLACEMENTS; do
        if [ "$placement" = 1cpu ]; then serve_pin="taskset -c 0"; load_pin="taskset -c 1"; else serve_pin=""; load_pin=""; fi
        for mode in keepalive churn; do
            for entry in "${contenders[@]}"; do
                name=${entry%%|*}; PORT=$((PORT + 1)); command=${entry#*|}; command=${command//@PORT@/$PORT}
                # Keep-alive holds 100 connections at once: a pool of 8 cannot take them.
                if [ "$mode" = keepalive ] && [[ $name == *pool8* ]]; then continue; fi
                log=$(mktemp)
                $serve_pin $command > "$log" 2>&1 &
                server=$!
                for _ in $(seq 1 100); do grep -q READY "$log" && break; sleep 0.1; done
                grep -q READY "$log" || { echo "$name did not start: $(cat "$log")" >&2; exit 1; }
                read -r rps p50 p99 errors < <(load "$load_pin" "$mode")
                kill "$server" 2>/dev/null || true
                wait "$server" 2>/dev/null || true
                rm -f "$log"
                printf '%-6s %-5s %-10s %-26s %10s %9s %9s %8s\n' "$round" "$placement" "$mode" "$name" "$rps" "$p50" "$p99" "$errors"
            done
        done
    done
done
