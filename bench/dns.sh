#!/usr/bin/env bash
# bench/dns.sh - `portico resolver` against unbound over an offline DNS
# hierarchy (tests/integration/dns_hierarchy.py: nsd for ., com., net.,
# example.com. and example.net. on 127.53.N.x, port 53, so root).
#
#   bash bench/dns.sh            (ROUNDS, DURATION, SAMPLES, SERVER_CPU and
#                                 CLIENT_CPU from the environment)
#
# Each resolver runs one thread (portico --workers 1, unbound num-threads 1,
# iterator module only, no QNAME minimisation, 64 MiB caches) pinned to
# SERVER_CPU (0); the load runs on CLIENT_CPU (1). Defaults: 3 rounds of 5 s,
# 21 samples per latency. It measures, in the same run, alternating the two
# (round by round, and sample by sample):
#   - cache hits: dnsperf (-c 8 -q 500 -T 1) over 6 warmed names for DURATION
#     seconds; q/s, the resolver's CPU share (utime+stime from /proc) and CPU
#     per query. dnsperf can starve on a loaded machine: read the CPU share
#     beside the q/s;
#   - cold resolutions, each on a freshly started resolver (its code paths
#     first exercised by walks to example.net, a TXT set there over TCP too, so that the
#     first touch of memory is not what is timed, but com. and example.com.
#     unknown), timed by a python client (perf_counter, the same client for
#     both): a CNAME chain through
#     root -> com -> example.com, an NXDOMAIN, a 2.4 kB TXT set that the
#     resolver must fetch over TCP (asked over TCP), and a miss under
#     example.com with the delegations cached (a new wildcard name).
# Prints each round, then a table of medians with portico/unbound. Every
# process is stopped by PID and the temp files removed, whatever happens.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
  echo "bench/dns.sh: needs root (nsd listens on port 53)" >&2
  exit 1
fi
bash scripts/deps.sh --bench
make -s build/portico

idle() { awk '/^cpu /{print $5, $2+$3+$4+$5+$6+$7+$8}' /proc/stat; }
read -r i0 t0 < <(idle); sleep 1; read -r i1 t1 < <(idle)
echo "dns bench: $(date -u +%FT%TZ), commit $(git rev-parse --short HEAD), CPUs idle" \
     "$(( 100 * (i1 - i0) / (t1 - t0) ))% before the start"
timeout 1800 /usr/bin/python3 bench/dns_bench.py
read -r i0 t0 < <(idle); sleep 1; read -r i1 t1 < <(idle)
echo "CPUs idle $(( 100 * (i1 - i0) / (t1 - t0) ))% after the last run" \
     "(below 90%: the machine was busy, numbers are noisy)"
