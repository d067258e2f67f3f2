#!/usr/bin/env bash
# bench/http.sh - static files over HTTP/1.1: `portico serve` against nginx
# (without and with open_file_cache) and lighttpd, one worker each, under wrk.
#
#   bash bench/http.sh [-r ROUNDS] [-d SECS] [-n IDLE_CONNS]
#
# (or the same through the environment: ROUNDS, DURATION or D, IDLE_CONNS,
# SERVER_CPU, CLIENT_CPU; KEEP_TMP=1 keeps the configs and logs). Defaults:
# 3 rounds, 5 s per wrk run, 10000 idle connections, servers on CPU 0, wrk on
# CPU 1.
#
# What it does:
#   1. builds build/portico (make); installs nginx (nginx-light, else nginx),
#      lighttpd and wrk from Debian if they are missing;
#   2. writes a docroot and one config per server into a temp dir below
#      build/bench/. Every server gets the same docroot, one process/worker,
#      no access log, sendfile, unlimited keep-alive requests:
#        portico    serve --workers 1 --access-log off --max-requests 0 DIR
#        nginx      master_process off (a single process), sendfile on,
#                   tcp_nopush on (as Debian's nginx.conf), keepalive_requests
#                   1000000000, keepalive_timeout 65
#        nginx+ofc  the same plus open_file_cache max=1000 inactive=20s,
#                   open_file_cache_valid 30s
#        lighttpd   -D, server.max-keep-alive-requests = 65535 (the largest it
#                   takes: 0 would turn keep-alive off), max-keep-alive-idle 65
#      and checks that each serves the three files byte for byte;
#   3. ROUNDS times: for each row, portico, nginx, nginx+ofc, lighttpd, each a
#      fresh server on a fresh free port pinned to SERVER_CPU, with one curl
#      warm-up request, then `wrk -t1 -c CONNS -d SECS --latency` pinned to
#      CLIENT_CPU. Rows:
#        600 B keep-alive at 50 and at 256 connections, 16 KiB and 1 MiB
#        keep-alive at 50, 600 B with `Connection: close` at 50;
#   4. memory: each server (fresh, one warm-up request) holds IDLE_CONNS idle
#      keep-alive connections, each having fetched the 600-byte file once
#      (bench/idle_conns.py); prints RSS at rest, RSS with them and
#      (after - before) / IDLE_CONNS. Note that nginx allocates its
#      worker_connections slots at start: they are in its RSS at rest;
#   5. prints a summary: medians over the rounds of req/s, p99 latency and
#      server CPU µs per request, the largest VmHWM, and portico/best peer.
#
# Server CPU is utime+stime from /proc/PID/stat just before wrk starts and
# right after it exits (connection setup and teardown included), divided by
# the requests wrk reports. A run with any non-2xx/3xx response fails the
# script; socket errors are shown in the table.
#
# Everything is bounded: wrk runs under `timeout`, the idle helper gives up
# after 120 s, every server is killed by PID when its run ends and, whatever
# happens, on exit. The defaults take about 6 minutes. Results are only as
# good as the machine is quiet: the header shows how idle the CPUs were just
# before the start and right after the last run, with a warning below 90%.
set -euo pipefail

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-${D:-5}}
IDLE_CONNS=${IDLE_CONNS:-10000}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}

usage() {
  sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}
while getopts "r:d:n:h" opt; do
  case $opt in
    r) ROUNDS=$OPTARG ;;
    d) DURATION=$OPTARG ;;
    n) IDLE_CONNS=$OPTARG ;;
    *) usage ;;
  esac
done
shift $((OPTIND - 1))
[ $# -eq 0 ] || usage
for v in ROUNDS IDLE_CONNS; do
  [[ ${!v} =~ ^[1-9][0-9]*$ ]] || { echo "http.sh: $v must be a positive integer" >&2; exit 2; }
done
[[ $DURATION =~ ^[1-9][0-9]*$ ]] ||
  { echo "http.sh: DURATION must be a positive whole number of seconds" >&2; exit 2; }

cd "$(dirname "$0")/.."

die() { echo "http.sh: $*" >&2; exit 1; }
warn() { echo "http.sh: warning: $*" >&2; }

# ------------------------------------------------------------------ setup
have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
missing=()
have_pkg nginx-light || have_pkg nginx || command -v nginx >/dev/null 2>&1 || missing+=(nginx)
have_pkg lighttpd || command -v lighttpd >/dev/null 2>&1 || missing+=(lighttpd)
have_pkg wrk || command -v wrk >/dev/null 2>&1 || missing+=(wrk)
have_pkg curl || command -v curl >/dev/null 2>&1 || missing+=(curl)
if [ ${#missing[@]} -gt 0 ]; then
  echo "http.sh: installing ${missing[*]}"
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || die "missing packages: ${missing[*]}; run as root or install them"
    SUDO=sudo
  else
    SUDO=
  fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  pkgs=()
  for p in "${missing[@]}"; do
    if [ "$p" = nginx ]; then
      # nginx-light (bookworm) is the smallest build; newer Debian has only nginx.
      if apt-cache show nginx-light >/dev/null 2>&1; then pkgs+=(nginx-light); else pkgs+=(nginx); fi
    else
      pkgs+=("$p")
    fi
  done
  $SUDO apt-get install -y -qq --no-install-recommends "${pkgs[@]}"
fi
for c in nginx lighttpd wrk curl taskset python3; do
  command -v "$c" >/dev/null 2>&1 || die "$c is needed"
done

make -s build/portico
mkdir -p build/bench
HELPER=$PWD/bench/idle_conns.py

ncpu=$(nproc)
if [ "$ncpu" -ge 2 ] && [ "$SERVER_CPU" != "$CLIENT_CPU" ] &&
   taskset -c "$SERVER_CPU" true 2>/dev/null && taskset -c "$CLIENT_CPU" true 2>/dev/null; then
  PIN_SERVER=(taskset -c "$SERVER_CPU")
  PIN_CLIENT=(taskset -c "$CLIENT_CPU")
  pin_note="servers on CPU $SERVER_CPU, wrk on CPU $CLIENT_CPU"
else
  PIN_SERVER=()
  PIN_CLIENT=()
  pin_note="NOT pinned ($ncpu CPU(s) usable, or SERVER_CPU = CLIENT_CPU)"
  warn "cannot pin servers and wrk to separate CPUs; running unpinned"
fi
CLK_TCK=$(getconf CLK_TCK)

# Every process started here inherits the hard RLIMIT_NOFILE as its soft one:
# the idle-connection test needs IDLE_CONNS sockets in the server and as many
# in the helper.
HARD_NOFILE=$(ulimit -Hn)
[ "$HARD_NOFILE" != unlimited ] || HARD_NOFILE=$(cat /proc/sys/fs/nr_open)
if [ "$HARD_NOFILE" -lt $((IDLE_CONNS + 100)) ]; then
  warn "the hard RLIMIT_NOFILE ($HARD_NOFILE) is too low for $IDLE_CONNS idle connections;" \
    "using $((HARD_NOFILE - 100))"
  IDLE_CONNS=$((HARD_NOFILE - 100))
  [ "$IDLE_CONNS" -gt 0 ] || die "RLIMIT_NOFILE hard limit $HARD_NOFILE is too low"
fi
ulimit -n "$HARD_NOFILE"
# Descriptor limits written into the peers' configs. nginx with master_process
# off does not apply worker_rlimit_nofile (only workers do): it runs with the
# limit set just above. lighttpd allows at most max-fds/2 connections and
# cannot raise its limit beyond the hard one unless it may (CAP_SYS_RESOURCE).
NGX_CONNS=$((IDLE_CONNS + 10000))
LTY_FDS=$((2 * IDLE_CONNS + 1000))
[ "$LTY_FDS" -le "$HARD_NOFILE" ] || LTY_FDS=$HARD_NOFILE
[ "$LTY_FDS" -le 65535 ] || LTY_FDS=65535
LTY_CONNS=$((LTY_FDS / 2))
[ "$LTY_CONNS" -ge "$IDLE_CONNS" ] ||
  warn "lighttpd can hold only $LTY_CONNS connections (server.max-fds $LTY_FDS / 2);" \
    "its idle-connection test will fail"

TMP=$(mktemp -d "$PWD/build/bench/http.XXXXXX")
SERVER_PID=
SERVER_KIND=
CLIENT_PID=

stop_server() {
  [ -n "$SERVER_PID" ] || return 0
  local pid=$SERVER_PID
  SERVER_PID=
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 50); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

cleanup() {
  if [ -n "$CLIENT_PID" ]; then
    kill -TERM "$CLIENT_PID" 2>/dev/null || true  # timeout(1): passes it on to its command
    wait "$CLIENT_PID" 2>/dev/null || true
  fi
  stop_server
  [ -n "${KEEP_TMP:-}" ] || rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# A copy of the binary, so that a rebuild during the run changes nothing.
mkdir "$TMP/bin"
PORTICO=$TMP/bin/portico
cp build/portico "$PORTICO"

# ------------------------------------------------------------------ docroot
DOC=$TMP/www
mkdir -p "$DOC"
head -c 600 /dev/urandom >"$DOC/s600.bin"
head -c 16384 /dev/urandom >"$DOC/s16k.bin"
head -c 1048576 /dev/urandom >"$DOC/s1m.bin"
declare -A FILE_SIZE=([s600.bin]=600 [s16k.bin]=16384 [s1m.bin]=1048576)

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

# write_configs KIND PORT: the config file of KIND in $TMP/KIND/, listening on PORT.
write_configs() {
  local kind=$1 port=$2 dir=$TMP/$1 ofc=
  mkdir -p "$dir/tmp"
  case $kind in
    nginx|nginx+ofc)
      [ "$kind" = nginx+ofc ] && ofc='open_file_cache max=1000 inactive=20s;
    open_file_cache_valid 30s;'
      # daemon off and master_process off come from -g: a single process that
      # is both master and worker, so its PID is the one that does the work.
      cat >"$dir/nginx.conf" <<EOF
pid $dir/nginx.pid;
error_log $dir/error.log warn;
worker_processes 1;
worker_rlimit_nofile $HARD_NOFILE;
events {
    worker_connections $NGX_CONNS;
    use epoll;
}
http {
    types { }
    default_type application/octet-stream;
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000000;
    keepalive_timeout 65;
    client_body_temp_path $dir/tmp/body;
    proxy_temp_path $dir/tmp/proxy;
    fastcgi_temp_path $dir/tmp/fastcgi;
    uwsgi_temp_path $dir/tmp/uwsgi;
    scgi_temp_path $dir/tmp/scgi;
    $ofc
    server {
        listen 127.0.0.1:$port;
        root $DOC;
    }
}
EOF
      ;;
    lighttpd)
      cat >"$dir/lighttpd.conf" <<EOF
server.document-root = "$DOC"
server.bind = "127.0.0.1"
server.port = $port
server.errorlog = "$dir/error.log"
server.max-worker = 0
server.network-backend = "sendfile"
server.max-keep-alive-requests = 65535
server.max-keep-alive-idle = 65
server.max-fds = $LTY_FDS
server.max-connections = $LTY_CONNS
mimetype.assign = ( "" => "application/octet-stream" )
EOF
      ;;
  esac
}

# start_server KIND: a fresh KIND on a fresh port; sets SERVER_PID and PORT.
start_server() {
  local kind=$1 cmd
  PORT=$(free_port)
  write_configs "$kind" "$PORT"
  case $kind in
    portico)
      # Options before DIR: this portico stops at the first operand.
      cmd=("$PORTICO" serve --listen "127.0.0.1:$PORT" --workers 1 --access-log off --quiet
           --max-requests 0 "$DOC") ;;
    nginx|nginx+ofc)
      cmd=(nginx -p "$TMP/$kind/" -c "$TMP/$kind/nginx.conf" -e "$TMP/$kind/error.log"
           -g 'daemon off; master_process off;') ;;
    lighttpd)
      cmd=(lighttpd -D -f "$TMP/$kind/lighttpd.conf") ;;
    *) die "unknown server $kind" ;;
  esac
  # A simple command, so that $! is the server itself (taskset execs it).
  "${PIN_SERVER[@]}" "${cmd[@]}" </dev/null >"$TMP/server.log" 2>&1 &
  SERVER_PID=$!
  SERVER_KIND=$kind
  for _ in $(seq 100); do
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
      cat "$TMP/server.log" "$TMP/$kind/error.log" >&2 2>/dev/null || true
      SERVER_PID=
      die "$kind exited at startup"
    fi
    if listening "$PORT"; then
      # One process: no forked workers whose CPU time would be missed.
      [ -z "$(cat /proc/"$SERVER_PID"/task/*/children 2>/dev/null | tr -d ' \n')" ] ||
        die "$kind has child processes; its CPU time would be undercounted"
      return 0
    fi
    sleep 0.05
  done
  cat "$TMP/server.log" >&2
  die "$kind is not listening on port $PORT after 5 s"
}

server_log() {
  echo "--- $SERVER_KIND output:" >&2
  cat "$TMP/server.log" >&2 || true
  [ ! -s "$TMP/$SERVER_KIND/error.log" ] || { echo "--- $SERVER_KIND error log:" >&2; tail -20 "$TMP/$SERVER_KIND/error.log" >&2; }
}

# fetch PATH [OUT]: one GET with curl; checks the status and the size.
fetch() {
  local path=$1 out=${2:-/dev/null} got
  got=$(curl -sS --max-time 10 -o "$out" -w '%{http_code} %{size_download}' \
    "http://127.0.0.1:$PORT/$path") || { server_log; die "curl GET /$path from $SERVER_KIND failed"; }
  [ "$got" = "200 ${FILE_SIZE[$path]}" ] ||
    { server_log; die "GET /$path from $SERVER_KIND: status and size '$got', want '200 ${FILE_SIZE[$path]}'"; }
}

# run_client SECS OUT CMD...: CMD in the background under `timeout SECS`, its
# output in OUT, so that the exit trap can stop it by PID; returns its status.
run_client() {
  local secs=$1 out=$2 rc=0
  shift 2
  timeout -k 5 "$secs" "$@" >"$out" 2>&1 &
  CLIENT_PID=$!
  wait "$CLIENT_PID" || rc=$?
  CLIENT_PID=
  return "$rc"
}

# utime+stime of a PID, in clock ticks.
cpu_ticks() {
  local stat
  stat=$(cat /proc/"$1"/stat) || die "server $1 is gone"
  # Fields after "comm)": state is field 3, so utime (14) is the 12th here.
  echo "${stat##*) }" | awk '{ print $12 + $13 }'
}

# status_kb PID FIELD: VmRSS or VmHWM in kB.
status_kb() {
  awk -v f="$2:" '$1 == f { print $2 }' /proc/"$1"/status
}

# wrk's latency figure ("317.00us", "1.23ms", "2.00s", "1.50m") in ms.
to_ms() {
  awk -v v="$1" 'BEGIN {
    if (v ~ /us$/) m = 0.001; else if (v ~ /ms$/) m = 1; else if (v ~ /s$/) m = 1000;
    else if (v ~ /m$/) m = 60000; else if (v ~ /h$/) m = 3600000; else { print "nan"; exit }
    sub(/[a-z]+$/, "", v); printf "%.3f", v * m }'
}

# run_one KIND FILE CONNS [HEADER]: one wrk run against a fresh server; sets
# RPS P99 CPR HWM ERRS NREQ.
run_one() {
  local kind=$1 file=$2 conns=$3 hdr=${4:-} before after out sockerr non2xx
  local hargs=()
  [ -z "$hdr" ] || hargs=(-H "$hdr")
  start_server "$kind"
  fetch "$file"
  before=$(cpu_ticks "$SERVER_PID")
  if ! run_client $((DURATION + 30)) "$TMP/wrk.out" "${PIN_CLIENT[@]}" \
      wrk -t1 -c "$conns" -d "${DURATION}s" --timeout 5s --latency "${hargs[@]}" \
      "http://127.0.0.1:$PORT/$file"; then
    cat "$TMP/wrk.out" >&2
    server_log
    die "wrk failed against $kind"
  fi
  out=$(cat "$TMP/wrk.out")
  kill -0 "$SERVER_PID" 2>/dev/null || { server_log; die "$kind died during the run"; }
  after=$(cpu_ticks "$SERVER_PID")
  HWM=$(status_kb "$SERVER_PID" VmHWM)
  stop_server
  NREQ=$(awk '/ requests in / { print $1 }' <<<"$out")
  RPS=$(awk '$1 == "Requests/sec:" { print $2 }' <<<"$out")
  P99=$(awk '$1 == "99%" { print $2 }' <<<"$out")
  [ -n "$NREQ" ] && [ -n "$RPS" ] && [ -n "$P99" ] || { echo "$out" >&2; die "cannot parse wrk's output"; }
  P99=$(to_ms "$P99")
  non2xx=$(awk '/Non-2xx or 3xx responses:/ { print $NF }' <<<"$out")
  if [ -n "$non2xx" ] && [ "$non2xx" != 0 ]; then
    echo "$out" >&2
    server_log
    die "$kind: $non2xx non-2xx/3xx responses to GET /$file"
  fi
  sockerr=$(sed -n 's/.*Socket errors: *//p' <<<"$out")
  ERRS=0
  if [ -n "$sockerr" ]; then
    ERRS=$(awk -F'[ ,]+' '{ s = 0; for (i = 2; i <= NF; i += 2) s += $i; print s }' <<<"$sockerr")
    warn "$kind, GET /$file, $conns conns: socket errors: $sockerr"
  fi
  [ "$NREQ" -gt 0 ] || die "$kind: wrk completed no requests"
  CPR=$(awk -v a="$after" -v b="$before" -v t="$CLK_TCK" -v n="$NREQ" \
    'BEGIN { printf "%.3f", (a - b) / t * 1e6 / n }')
}

median() {
  printf '%s\n' "$@" | sort -g |
    awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}
maxof() { printf '%s\n' "$@" | sort -g | tail -1; }

idle_pct() {
  local a b
  a=$(grep '^cpu ' /proc/stat); sleep 1; b=$(grep '^cpu ' /proc/stat)
  awk -v a="$a" -v b="$b" 'BEGIN {
    n = split(a, x); split(b, y); t = 0
    for (i = 2; i <= n; i++) t += y[i] - x[i]
    printf "%.0f", (t > 0 ? 100 * ((y[5] - x[5]) + (y[6] - x[6])) / t : 0) }'
}

mib() { awk -v k="$1" 'BEGIN { printf "%.1f MiB", k / 1024 }'; }

# ------------------------------------------------------------------ run
SERVERS=(portico nginx nginx+ofc lighttpd)
PEERS=(nginx nginx+ofc lighttpd)
# name|file|conns|extra header
ROWS=(
  "600 B keep-alive, 50 conns|s600.bin|50|"
  "600 B keep-alive, 256 conns|s600.bin|256|"
  "16 KiB keep-alive, 50 conns|s16k.bin|50|"
  "1 MiB keep-alive, 50 conns|s1m.bin|50|"
  "600 B Connection: close, 50 conns|s600.bin|50|Connection: close"
)

rev=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
git diff --quiet HEAD 2>/dev/null || rev="$rev+dirty"
ngx_ver=$(nginx -v 2>&1 | sed 's/.*nginx\//nginx /')
lty_ver=$(lighttpd -v 2>&1 | awk 'NR == 1' | sed 's/^lighttpd\/\([^ ]*\).*/lighttpd \1/')
wrk_ver=$( (wrk -v 2>&1 || true) | awk 'NR == 1 { print $1, $2 }')
echo "HTTP static-file benchmark: ${DURATION} s per wrk run, $ROUNDS rounds, $IDLE_CONNS idle connections"
echo "  portico $rev (serve --workers 1); $ngx_ver; $lty_ver; $wrk_ver -t1"
idle=$(idle_pct)
echo "  $(uname -sr), $ncpu CPUs; $pin_note; CPU idle before start: $idle%"
# The peers' connections use the system's TCP congestion control; portico's
# listener on 127.0.0.1 leaves BBR for CUBIC by default (docs/http.md).
echo "  system TCP congestion control: $(cat /proc/sys/net/ipv4/tcp_congestion_control)," \
  "qdisc: $(cat /proc/sys/net/core/default_qdisc)"
if [ "$idle" -lt 90 ]; then
  warn "the machine is only $idle% idle; other load will skew the results. Busiest:"
  ps -eo pcpu=,pid=,comm= --sort=-pcpu | head -3 | sed 's/^/    /' >&2
fi
echo

# Each server serves the three files byte for byte.
for kind in "${SERVERS[@]}"; do
  start_server "$kind"
  for f in s600.bin s16k.bin s1m.bin; do
    fetch "$f" "$TMP/got"
    cmp -s "$TMP/got" "$DOC/$f" || { server_log; die "$kind served different bytes for /$f"; }
  done
  stop_server
done
echo "all four servers serve the docroot correctly"
echo

declare -A R_RPS R_P99 R_CPR R_HWM R_ERR
printf '%-34s %-9s %5s | %10s %9s %10s %10s %6s\n' row server round "req/s" "p99 ms" "CPU µs/req" "VmHWM" errors
for r in $(seq "$ROUNDS"); do
  for row in "${ROWS[@]}"; do
    IFS='|' read -r name file conns hdr <<<"$row"
    for kind in "${SERVERS[@]}"; do
      run_one "$kind" "$file" "$conns" "$hdr"
      key="$name|$kind"
      R_RPS[$key]="${R_RPS[$key]:-} $RPS"
      R_P99[$key]="${R_P99[$key]:-} $P99"
      R_CPR[$key]="${R_CPR[$key]:-} $CPR"
      R_HWM[$key]="${R_HWM[$key]:-} $HWM"
      R_ERR[$key]=$(( ${R_ERR[$key]:-0} + ERRS ))
      printf '%-34s %-9s %5s | %10.0f %9.3f %10.2f %10s %6s\n' "$name" "$kind" "$r" \
        "$RPS" "$P99" "$CPR" "$(mib "$HWM")" "$ERRS"
    done
  done
done
echo

# ------------------------------------------------------------------ memory
echo "memory: $IDLE_CONNS idle keep-alive connections per server (each fetched /s600.bin once)"
declare -A M_REST M_HELD M_PER
for kind in "${SERVERS[@]}"; do
  start_server "$kind"
  fetch s600.bin
  sleep 0.2
  if ! run_client 180 "$TMP/idle.out" "${PIN_CLIENT[@]}" python3 "$HELPER" 127.0.0.1 "$PORT" \
      /s600.bin "$IDLE_CONNS" "$SERVER_PID" 1; then
    cat "$TMP/idle.out" >&2
    server_log
    die "the idle-connection helper failed against $kind"
  fi
  out=$(cat "$TMP/idle.out")
  kill -0 "$SERVER_PID" 2>/dev/null || { server_log; die "$kind died during the idle-connection test"; }
  stop_server
  M_REST[$kind]=$(sed -n 's/.*rss_before_kb=\([0-9]*\).*/\1/p' <<<"$out")
  M_HELD[$kind]=$(sed -n 's/.*rss_after_kb=\([0-9]*\).*/\1/p' <<<"$out")
  [ -n "${M_REST[$kind]}" ] && [ -n "${M_HELD[$kind]}" ] || die "cannot parse the helper's output: $out"
  M_PER[$kind]=$(awk -v a="${M_HELD[$kind]}" -v b="${M_REST[$kind]}" -v n="$IDLE_CONNS" \
    'BEGIN { printf "%.0f", (a - b) * 1024 / n }')
  printf '  %-9s at rest %10s   with %d idle %10s   %6s B/conn\n' "$kind" "$(mib "${M_REST[$kind]}")" \
    "$IDLE_CONNS" "$(mib "${M_HELD[$kind]}")" "${M_PER[$kind]}"
done
echo

# ------------------------------------------------------------------ summary
# ratio A B: A/B with 2 decimals.
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }

echo "summary: medians over $ROUNDS rounds of ${DURATION} s (peak RSS: largest VmHWM over the rounds;"
echo "CPU µs/req: server utime+stime over the wrk run / requests; GB/s: body bytes, 1e9 B)"
printf '%-34s %-9s | %10s %9s %10s %10s %6s %6s\n' row server "req/s" "p99 ms" "CPU µs/req" "peak RSS" "GB/s" errors
for row in "${ROWS[@]}"; do
  IFS='|' read -r name file conns hdr <<<"$row"
  declare -A M_RPS=() M_CPR=()
  for kind in "${SERVERS[@]}"; do
    key="$name|$kind"
    # shellcheck disable=SC2086
    {
      M_RPS[$kind]=$(printf '%.0f' "$(median ${R_RPS[$key]})")
      p99=$(printf '%.3f' "$(median ${R_P99[$key]})")
      M_CPR[$kind]=$(printf '%.2f' "$(median ${R_CPR[$key]})")
      hwm=$(maxof ${R_HWM[$key]})
    }
    gbs=-
    [ "$file" != s1m.bin ] ||
      gbs=$(awk -v r="${M_RPS[$kind]}" -v s="${FILE_SIZE[$file]}" 'BEGIN { printf "%.2f", r * s / 1e9 }')
    printf '%-34s %-9s | %10s %9s %10s %10s %6s %6s\n' "$name" "$kind" "${M_RPS[$kind]}" "$p99" \
      "${M_CPR[$kind]}" "$(mib "$hwm")" "$gbs" "${R_ERR[$key]}"
  done
  best_rps='' best_rps_kind='' best_cpr='' best_cpr_kind=''
  for kind in "${PEERS[@]}"; do
    if [ -z "$best_rps" ] || awk -v a="${M_RPS[$kind]}" -v b="$best_rps" 'BEGIN { exit !(a > b) }'; then
      best_rps=${M_RPS[$kind]} best_rps_kind=$kind
    fi
    if [ -z "$best_cpr" ] || awk -v a="${M_CPR[$kind]}" -v b="$best_cpr" 'BEGIN { exit !(a < b) }'; then
      best_cpr=${M_CPR[$kind]} best_cpr_kind=$kind
    fi
  done
  printf '%-34s %-9s   req/s %s (vs %s), CPU/req %s (vs %s)\n' "" "portico/best" \
    "$(ratio "${M_RPS[portico]}" "$best_rps")" "$best_rps_kind" \
    "$(ratio "${M_CPR[portico]}" "$best_cpr")" "$best_cpr_kind"
done
echo
printf '%-34s %-9s | %10s %12s %10s\n' "idle keep-alive connections" server "RSS at rest" "RSS held" "B/conn"
for kind in "${SERVERS[@]}"; do
  printf '%-34s %-9s | %10s %12s %10s\n' "$IDLE_CONNS" "$kind" "$(mib "${M_REST[$kind]}")" \
    "$(mib "${M_HELD[$kind]}")" "${M_PER[$kind]}"
done
best_mem='' best_mem_kind=''
for kind in "${PEERS[@]}"; do
  if [ -z "$best_mem" ] || [ "${M_PER[$kind]}" -lt "$best_mem" ]; then
    best_mem=${M_PER[$kind]} best_mem_kind=$kind
  fi
done
if [ "$best_mem" -gt 0 ]; then
  printf '%-34s %-9s   B/conn %s (vs %s)\n' "" "portico/best" \
    "$(ratio "${M_PER[portico]}" "$best_mem")" "$best_mem_kind"
else
  printf '%-34s %-9s   B/conn: no ratio, %s grew by %s B/conn\n' "" "portico/best" "$best_mem_kind" "$best_mem"
fi
echo "(ratios: req/s above 1 and CPU/req, B/conn below 1 favour portico)"
idle=$(idle_pct)
echo "CPU idle after the runs: $idle%"
[ "$idle" -ge 90 ] || warn "the machine was only $idle% idle at the end; other load may have skewed the results"
