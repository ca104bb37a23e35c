#!/usr/bin/env bash
# MacTCP for Swift
# Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.
#
# ICMP echo round trips on loopback (BENCHMARKS.md, "ICMP echo"): `mactcp ping` (one
# MacTCPDriver.echoICMP after another) against iputils' ping, the same run, the same CPU,
# 127.0.0.1 and ::1; p50 and p99 of COUNT round trips each, ROUNDS times. Nothing is sent
# anywhere but the loopback.
#
#   Benchmarks/echo/run.sh            (as root: `ping -i 0` needs it; COUNT, ROUNDS, CPU may be set)
set -euo pipefail
cd "$(dirname "$0")/../.."

COUNT=${COUNT:-1000}
ROUNDS=${ROUNDS:-3}
CPU=${CPU:-1}

if ! command -v ping >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iputils-ping
fi
swift build -c release --product mactcp >/dev/null
mactcp=.build/release/mactcp

# The p-th percentile (0–100) of the numbers on standard input.
percentile() { sort -n | awk -v p="$1" '{ v[NR] = $1 } END { i = int((NR * p + 99) / 100); if (i < 1) i = 1; print v[i] }'; }
# The mean, in microseconds (both tools print milliseconds with three decimals: 1 µs steps).
mean() { awk '{ t += $1 } END { printf "%.2f", t * 1000 / NR }'; }

ping -V 2>&1 | head -1
for round in $(seq 1 "$ROUNDS"); do
    for target in 127.0.0.1 ::1; do
        taskset -c "$CPU" ping -n -c "$COUNT" -i 0 "$target" | sed -n 's/.*time=\([0-9.]*\) ms.*/\1/p' > /tmp/echo-iputils.$$
        taskset -c "$CPU" $mactcp ping -c "$COUNT" -i 0 --json "$target" | sed -n 's/.*"time_ms":\([0-9.]*\)}$/\1/p' > /tmp/echo-mactcp.$$
        i50=$(percentile 50 < /tmp/echo-iputils.$$); i99=$(percentile 99 < /tmp/echo-iputils.$$)
        m50=$(percentile 50 < /tmp/echo-mactcp.$$); m99=$(percentile 99 < /tmp/echo-mactcp.$$)
        imean=$(mean < /tmp/echo-iputils.$$); mmean=$(mean < /tmp/echo-mactcp.$$)
        printf 'round %s %-9s iputils p50 %s ms p99 %s ms mean %s us (%s replies) | mactcp p50 %s ms p99 %s ms mean %s us (%s replies) | p50 ratio %s, mean ratio %s\n' \
            "$round" "$target" "$i50" "$i99" "$imean" "$(wc -l < /tmp/echo-iputils.$$)" "$m50" "$m99" "$mmean" "$(wc -l < /tmp/echo-mactcp.$$)" \
            "$(awk -v a="$m50" -v b="$i50" 'BEGIN { printf "%.2f", a / b }')" "$(awk -v a="$mmean" -v b="$imean" 'BEGIN { printf "%.2f", a / b }')"
    done
done
rm -f /tmp/echo-iputils.$$ /tmp/echo-mactcp.$$
