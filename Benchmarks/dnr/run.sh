#!/usr/bin/env bash
# MacTCP for Swift
# Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.
#
# The resolver's benchmark (BENCHMARKS.md, "The resolver"): DNR against glibc's getaddrinfo
# in a pool of threads and c-ares, the same run, the same name server on loopback (dnsmasq
# on 127.0.0.77, pinned to one CPU, the clients to the other), nothing sent anywhere else:
# the C references run in a mount namespace whose /etc/resolv.conf names that server only.
#
#   Benchmarks/dnr/run.sh            (as root; N, INFLIGHT, HITS and ROUNDS may be set)
#
# It prints the server's own ceiling (dnsperf), queries/s with nothing cached (distinct
# names) for each contender (with dnr_floor.c, the least any resolver pays under SPEC §6's
# socket-of-its-own rule), a cache hit's cost beside a getaddrinfo of an /etc/hosts name,
# and, with CALLGRIND=1, callgrind's instructions per query and per hit.
set -euo pipefail
cd "$(dirname "$0")/.."

ADDR=127.0.0.77
N=${N:-20000}
INFLIGHT=${INFLIGHT:-64}
HITS=${HITS:-1000000}
ROUNDS=${ROUNDS:-3}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}

missing=()
[ -x /usr/sbin/dnsmasq ] || missing+=(dnsmasq-base)
command -v dnsperf >/dev/null 2>&1 || missing+=(dnsperf)
[ -f /usr/include/ares.h ] || missing+=(libc-ares-dev)
command -v valgrind >/dev/null 2>&1 || missing+=(valgrind)
if [ "${#missing[@]}" -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi

swift build -c release --product dnrbench >/dev/null
bench=.build/release/dnrbench
cc -O2 -Wall -o .build/dnr_getaddrinfo c/dnr_getaddrinfo.c -lpthread
cc -O2 -Wall -o .build/dnr_cares c/dnr_cares.c -lcares
cc -O2 -Wall -o .build/dnr_floor c/dnr_floor.c

work=$(mktemp -d)
server=
cleanup() {
    [ -n "$server" ] && kill "$server" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

taskset -c "$SERVER_CPU" /usr/sbin/dnsmasq --keep-in-foreground --no-resolv --no-hosts --listen-address=$ADDR \
    --port=53 --bind-interfaces --address=/bench.test/10.9.9.9 --local-ttl=300 --cache-size=0 --pid-file="$work/pid" --user=root &
server=$!
sleep 0.5

printf 'nameserver %s\noptions attempts:3 timeout:2\n' $ADDR > "$work/resolv.conf"
printf 'hosts: dns\n' > "$work/nsswitch.dns"
printf 'hosts: files\n' > "$work/nsswitch.files"
printf '127.0.0.1 localhost\n10.9.9.9 bench-host\n' > "$work/hosts"
cat > "$work/inns" <<SCRIPT
#!/bin/sh
# Runs a command with the benchmark's resolv.conf, nsswitch.conf (\$1) and hosts file.
mount --bind "$work/resolv.conf" /etc/resolv.conf
mount --bind "\$1" /etc/nsswitch.conf
mount --bind "$work/hosts" /etc/hosts
shift
exec "\$@"
SCRIPT
chmod +x "$work/inns"
inns() { unshare -m "$work/inns" "$@"; }
client() { taskset -c "$CLIENT_CPU" "$@"; }

echo "# server ceiling (dnsperf, $INFLIGHT queries outstanding, distinct names)"
for i in $(seq 1 "$N"); do echo "c$i-$RANDOM.bench.test A"; done > "$work/names"
client dnsperf -s $ADDR -d "$work/names" -q "$INFLIGHT" -n 1 | grep -E "Queries per second|Queries lost"

for round in $(seq 1 "$ROUNDS"); do
    echo "# round $round: nothing cached, $N distinct names, $INFLIGHT outstanding"
    echo "dnr       $(client $bench miss $ADDR "$N" "$INFLIGHT")"
    echo "c-ares    $(client .build/dnr_cares $ADDR "$N" "$INFLIGHT")"
    echo "floor     $(client .build/dnr_floor $ADDR "$N" "$INFLIGHT")"
    echo "getaddrinfo $(inns "$work/nsswitch.dns" taskset -c "$CLIENT_CPU" .build/dnr_getaddrinfo miss "$N" "$INFLIGHT")"
    echo "# round $round: a cached name (DNR) and an /etc/hosts name (getaddrinfo), $HITS calls"
    echo "dnr       $(client $bench hit $ADDR "$HITS")"
    echo "getaddrinfo $(inns "$work/nsswitch.files" taskset -c "$CLIENT_CPU" .build/dnr_getaddrinfo hit "$((HITS / 10))" bench-host)"
done

if [ "${CALLGRIND:-0}" = 1 ]; then
    # Copies without debug information (valgrind 3.19 cannot read the toolchain's DWARF 5).
    objcopy --strip-debug $bench "$work/dnrbench"
    echo "# callgrind: instructions per call, from two run lengths"
    count() { (valgrind --tool=callgrind --callgrind-out-file=/dev/null "$@" 2>&1 || true) | sed -n 's/.*Collected : //p'; }
    a=$(count "$work/dnrbench" hit $ADDR 100000); b=$(count "$work/dnrbench" hit $ADDR 200000)
    echo "dnr cache hit: $(( (b - a) / 100000 )) instructions per strToAddr"
    a=$(count "$work/dnrbench" miss $ADDR 2000 "$INFLIGHT"); b=$(count "$work/dnrbench" miss $ADDR 4000 "$INFLIGHT")
    echo "dnr nothing cached: $(( (b - a) / 2000 )) instructions per query"
    a=$(count .build/dnr_cares $ADDR 2000 "$INFLIGHT"); b=$(count .build/dnr_cares $ADDR 4000 "$INFLIGHT")
    echo "c-ares nothing cached: $(( (b - a) / 2000 )) instructions per query"
    a=$(count .build/dnr_floor $ADDR 2000 "$INFLIGHT"); b=$(count .build/dnr_floor $ADDR 4000 "$INFLIGHT")
    echo "floor (a socket per query, in C): $(( (b - a) / 2000 )) instructions per query"
    a=$( (inns "$work/nsswitch.files" valgrind --tool=callgrind --callgrind-out-file=/dev/null .build/dnr_getaddrinfo hit 10000 bench-host 2>&1 || true) | sed -n 's/.*Collected : //p')
    b=$( (inns "$work/nsswitch.files" valgrind --tool=callgrind --callgrind-out-file=/dev/null .build/dnr_getaddrinfo hit 20000 bench-host 2>&1 || true) | sed -n 's/.*Collected : //p')
    echo "getaddrinfo of an /etc/hosts name: $(( (b - a) / 10000 )) instructions per call"
fi
