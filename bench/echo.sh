#!/usr/bin/env bash
# bench/echo.sh - TCP echo round trips per second: `portico nc -l -k --echo`
# against socat, with CONNS concurrent ping-pong clients.
#
#   bash bench/echo.sh [-r ROUNDS] [-c CONNS] [-s SIZE] [-d SECS]
#
# (or the same through the environment: ROUNDS, CONNS, SIZE, DURATION,
# SERVER_CPU, CLIENT_CPU). Defaults: 3 rounds, 100 connections, 64-byte
# messages, 5 s per run, server on CPU 0, client on CPU 1.
#
# What it does:
#   1. builds build/portico (make) and the load client build/bench/echo_client
#      (gcc -O2 bench/echo_client.c); installs socat if it is missing;
#   2. runs socat's two echo setups once each and keeps the faster:
#        socat TCP-LISTEN:P,fork,reuseaddr EXEC:cat   (socat child + cat per conn)
#        socat TCP-LISTEN:P,fork,reuseaddr PIPE       (socat child echoes itself)
#   3. runs portico, socat, portico, socat, ... ROUNDS times each, a fresh
#      server on a fresh free port every run. The server is pinned to
#      SERVER_CPU (portico with --workers 1; socat's per-connection children
#      inherit the parent's affinity), the client to CLIENT_CPU;
#   4. prints each run's round trips/s, p50/p99 latency (µs) and server CPU
#      time, then the medians and the ratio portico/socat.
#
# Server CPU is utime+stime+cutime+cstime from /proc/PID/stat, taken just
# before the client starts and again once the client has exited and socat has
# reaped every per-connection child (so the children's CPU is in cutime and
# cstime). It covers the whole client run: connection setup, warm-up, the
# timed SECS and teardown; "CPU µs/RT" divides it by the timed round trips.
#
# The client and every server are bounded: the client stops after SECS (plus
# at most 30 s of connection setup and warm-up, and `timeout` on top); servers
# are killed by PID when each run ends and, whatever happens, on exit.
# Results are only as good as the machine is quiet: the header shows how idle
# the CPUs were just before the start, with a warning below 90%.
set -euo pipefail

ROUNDS=${ROUNDS:-3}
CONNS=${CONNS:-100}
SIZE=${SIZE:-64}
DURATION=${DURATION:-5}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}

usage() {
  sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}
while getopts "r:c:s:d:h" opt; do
  case $opt in
    r) ROUNDS=$OPTARG ;;
    c) CONNS=$OPTARG ;;
    s) SIZE=$OPTARG ;;
    d) DURATION=$OPTARG ;;
    *) usage ;;
  esac
done
shift $((OPTIND - 1))
[ $# -eq 0 ] || usage
for v in ROUNDS CONNS SIZE; do
  [[ ${!v} =~ ^[1-9][0-9]*$ ]] || { echo "echo.sh: $v must be a positive integer" >&2; exit 2; }
done
[[ $DURATION =~ ^[0-9]+([.][0-9]+)?$ ]] && awk -v d="$DURATION" 'BEGIN{exit !(d>0)}' ||
  { echo "echo.sh: DURATION must be a positive number of seconds" >&2; exit 2; }

cd "$(dirname "$0")/.."

die() { echo "echo.sh: $*" >&2; exit 1; }

# ------------------------------------------------------------------ setup
if ! command -v socat >/dev/null 2>&1; then
  bash scripts/deps.sh --bench
  command -v socat >/dev/null 2>&1 || die "socat is not installed"
fi
command -v taskset >/dev/null 2>&1 || die "taskset (util-linux) is needed"
command -v python3 >/dev/null 2>&1 || die "python3 is needed (to pick free ports)"

make -s build/portico
mkdir -p build/bench
gcc -O2 -Wall -Wextra -o build/bench/echo_client bench/echo_client.c

PORTICO=build/portico
CLIENT=build/bench/echo_client

ncpu=$(nproc)
if [ "$ncpu" -ge 2 ] && [ "$SERVER_CPU" != "$CLIENT_CPU" ] &&
   taskset -c "$SERVER_CPU" true 2>/dev/null && taskset -c "$CLIENT_CPU" true 2>/dev/null; then
  PIN_SERVER=(taskset -c "$SERVER_CPU")
  PIN_CLIENT=(taskset -c "$CLIENT_CPU")
  pin_note="server on CPU $SERVER_CPU, client on CPU $CLIENT_CPU"
else
  PIN_SERVER=()
  PIN_CLIENT=()
  pin_note="NOT pinned ($ncpu CPU(s) usable, or SERVER_CPU = CLIENT_CPU)"
  echo "echo.sh: warning: cannot pin server and client to separate CPUs; running unpinned" >&2
fi
CLK_TCK=$(getconf CLK_TCK)

TMP=$(mktemp -d)
SERVER_PID=

# Every descendant of a PID (socat children and their cat grandchildren).
descendants() {
  local p kids k
  for p in "$@"; do
    kids=$(cat /proc/"$p"/task/*/children 2>/dev/null || true)
    for k in $kids; do
      echo "$k"
      descendants "$k"
    done
  done
}

stop_server() {
  [ -n "$SERVER_PID" ] || return 0
  local pid=$SERVER_PID kids i
  SERVER_PID=
  kids=$(descendants "$pid")
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 50); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  for k in $kids; do kill -KILL "$k" 2>/dev/null || true; done
  wait "$pid" 2>/dev/null || true
}

cleanup() {
  stop_server
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# Is anything listening on TCP port $1 (IPv4 or IPv6, any address)?
listening() {
  local hex
  hex=$(printf '%04X' "$1")
  awk -v p=":$hex" '$4 == "0A" && substr($2, length($2) - 4) == p { f = 1 } END { exit !f }' \
    /proc/net/tcp /proc/net/tcp6 2>/dev/null
}

# utime+stime+cutime+cstime of a PID, in clock ticks.
cpu_ticks() {
  local stat
  stat=$(cat /proc/"$1"/stat) || die "server $1 is gone"
  # Fields after "comm)": state is field 3, so utime (14) is the 12th here.
  echo "${stat##*) }" | awk '{ print $12 + $13 + $14 + $15 }'
}

# Waits (up to 10 s) until the server has reaped all its children.
wait_reaped() {
  local i
  for i in $(seq 100); do
    [ -z "$(cat /proc/"$1"/task/*/children 2>/dev/null | tr -d ' \n')" ] && return 0
    sleep 0.1
  done
  echo "echo.sh: warning: server $1 still has children; their CPU time is not counted" >&2
}

# start_server KIND PORT: starts it in the background, sets SERVER_PID.
start_server() {
  local kind=$1 port=$2 i cmd
  case $kind in
    portico)    cmd=("$PORTICO" nc -l -k --echo --workers 1 127.0.0.1 "$port") ;;
    socat-exec) cmd=(socat TCP-LISTEN:"$port",fork,reuseaddr EXEC:cat) ;;
    socat-pipe) cmd=(socat TCP-LISTEN:"$port",fork,reuseaddr PIPE) ;;
    *) die "unknown server $kind" ;;
  esac
  # A simple command, so that $! is the server itself (taskset execs it).
  "${PIN_SERVER[@]}" "${cmd[@]}" </dev/null >"$TMP/server.log" 2>&1 &
  SERVER_PID=$!
  for i in $(seq 100); do
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
      cat "$TMP/server.log" >&2
      SERVER_PID=
      die "$kind server exited at startup"
    fi
    listening "$port" && return 0
    sleep 0.05
  done
  cat "$TMP/server.log" >&2
  die "$kind server is not listening on port $port after 5 s"
}

# run_one KIND: one client run against a fresh server; sets RT P50 P99 CPU NRT.
run_one() {
  local kind=$1 port before after out
  port=$(free_port)
  start_server "$kind" "$port"
  before=$(cpu_ticks "$SERVER_PID")
  if ! out=$(timeout -k 5 "$(awk -v d="$DURATION" 'BEGIN{print int(d) + 60}')" \
      "${PIN_CLIENT[@]}" "$CLIENT" -c "$CONNS" -s "$SIZE" -d "$DURATION" 127.0.0.1 "$port"); then
    echo "--- $kind server log:" >&2
    cat "$TMP/server.log" >&2
    die "the client failed against $kind"
  fi
  kill -0 "$SERVER_PID" 2>/dev/null || die "$kind server died during the run"
  wait_reaped "$SERVER_PID"
  after=$(cpu_ticks "$SERVER_PID")
  stop_server
  RT=$(sed -n 's/.*rt_per_sec=\([^ ]*\).*/\1/p' <<<"$out")
  P50=$(sed -n 's/.*p50_us=\([^ ]*\).*/\1/p' <<<"$out")
  P99=$(sed -n 's/.*p99_us=\([^ ]*\).*/\1/p' <<<"$out")
  NRT=$(sed -n 's/.*round_trips=\([^ ]*\).*/\1/p' <<<"$out")
  [ -n "$RT" ] && [ -n "$P99" ] && [ -n "$NRT" ] || die "cannot parse the client output: $out"
  CPU=$(awk -v a="$after" -v b="$before" -v t="$CLK_TCK" 'BEGIN { printf "%.2f", (a - b) / t }')
}

median() {
  printf '%s\n' "$@" | sort -g |
    awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

cpu_per_rt() { awk -v c="$1" -v n="$2" 'BEGIN { printf "%.2f", (n > 0 ? c * 1e6 / n : 0) }'; }

# ------------------------------------------------------------------ run
rev=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
git diff --quiet HEAD 2>/dev/null || rev="$rev+dirty"
echo "echo benchmark: $CONNS connections, $SIZE-byte ping-pong, ${DURATION} s per run, $ROUNDS rounds"
echo "  portico $rev (nc -l -k --echo --workers 1); $(socat -V 2>/dev/null | sed -n 's/^socat version \([^ ]*\).*/socat \1/p')"
# How idle the machine is before we start: other load skews the results.
idle_pct() {
  local a b
  a=$(grep '^cpu ' /proc/stat); sleep 1; b=$(grep '^cpu ' /proc/stat)
  awk -v a="$a" -v b="$b" 'BEGIN {
    n = split(a, x); split(b, y); t = 0
    for (i = 2; i <= n; i++) t += y[i] - x[i]
    printf "%.0f", (t > 0 ? 100 * ((y[5] - x[5]) + (y[6] - x[6])) / t : 0) }'
}
idle=$(idle_pct)
echo "  $(uname -sr), $ncpu CPUs; $pin_note; CPU idle before start: $idle%"
[ "$idle" -ge 90 ] ||
  echo "echo.sh: warning: the machine is only $idle% idle; other load will skew the results" >&2
echo

echo "socat echo setup (one run each):"
RT_EXEC= RT_PIPE=
for kind in socat-exec socat-pipe; do
  run_one "$kind"
  printf '  %-42s %10.0f RT/s  p99 %8.1f µs\n' \
    "$( [ $kind = socat-exec ] && echo 'TCP-LISTEN:P,fork,reuseaddr EXEC:cat' || echo 'TCP-LISTEN:P,fork,reuseaddr PIPE')" "$RT" "$P99"
  if [ "$kind" = socat-exec ]; then RT_EXEC=$RT; else RT_PIPE=$RT; fi
done
if awk -v a="$RT_PIPE" -v b="$RT_EXEC" 'BEGIN { exit !(a >= b) }'; then
  SOCAT=socat-pipe; socat_name="socat PIPE"
else
  SOCAT=socat-exec; socat_name="socat EXEC:cat"
fi
echo "  -> using $socat_name (the faster)"
echo

p_rt=() p_p50=() p_p99=() p_cpu=() p_cpr=()
s_rt=() s_p50=() s_p99=() s_cpu=() s_cpr=()
hdr=$(printf '%-7s | %10s %8s %8s %7s %7s | %10s %8s %8s %7s %7s' round \
  "RT/s" "p50 µs" "p99 µs" "CPU s" "µs/RT" "RT/s" "p50 µs" "p99 µs" "CPU s" "µs/RT")
printf '%-7s | %-46s | %-46s\n' "" "portico --workers 1" "$socat_name"
echo "$hdr"
row() {
  printf '%-7s | %10.0f %8.1f %8.1f %7.2f %7.2f | %10.0f %8.1f %8.1f %7.2f %7.2f\n' "$@"
}
for r in $(seq "$ROUNDS"); do
  run_one portico
  p_rt+=("$RT") p_p50+=("$P50") p_p99+=("$P99") p_cpu+=("$CPU") p_cpr+=("$(cpu_per_rt "$CPU" "$NRT")")
  run_one "$SOCAT"
  s_rt+=("$RT") s_p50+=("$P50") s_p99+=("$P99") s_cpu+=("$CPU") s_cpr+=("$(cpu_per_rt "$CPU" "$NRT")")
  i=$((r - 1))
  row "$r" "${p_rt[$i]}" "${p_p50[$i]}" "${p_p99[$i]}" "${p_cpu[$i]}" "${p_cpr[$i]}" \
    "${s_rt[$i]}" "${s_p50[$i]}" "${s_p99[$i]}" "${s_cpu[$i]}" "${s_cpr[$i]}"
done
# Medians, rounded once so the table and the summary agree.
mp_rt=$(printf '%.0f' "$(median "${p_rt[@]}")") ms_rt=$(printf '%.0f' "$(median "${s_rt[@]}")")
mp_p99=$(printf '%.1f' "$(median "${p_p99[@]}")") ms_p99=$(printf '%.1f' "$(median "${s_p99[@]}")")
row median "$mp_rt" "$(median "${p_p50[@]}")" "$mp_p99" "$(median "${p_cpu[@]}")" \
  "$(median "${p_cpr[@]}")" "$ms_rt" "$(median "${s_p50[@]}")" "$ms_p99" \
  "$(median "${s_cpu[@]}")" "$(median "${s_cpr[@]}")"
echo
ratio=$(awk -v p="$mp_rt" -v s="$ms_rt" 'BEGIN { printf "%.2f", (s > 0 ? p / s : 0) }')
echo "median RT/s:   portico $mp_rt, $socat_name $ms_rt; ratio portico/socat = $ratio"
echo "median p99 µs: portico $mp_p99, $socat_name $ms_p99"
echo "(CPU s: server CPU time over the whole client run incl. setup; µs/RT: that per timed round trip)"
