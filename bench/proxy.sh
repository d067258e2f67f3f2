#!/usr/bin/env bash
# bench/proxy.sh - cache hits (and the miss path) through `portico proxy`
# against Varnish and nginx proxy_cache, one worker each, under wrk.
#
#   bash bench/proxy.sh [-r ROUNDS] [-d SECS]
#
# (or ROUNDS, DURATION, PROXY_CPU, CLIENT_CPU in the environment; KEEP_TMP=1
# keeps the configs and logs; ROWS="miss-600" runs only the rows named). Defaults: 3 rounds, 5 s per run, proxies on
# CPU 0, wrk and the origin on CPU 1.
#
# What it does:
#   1. builds build/portico; wrk, nginx and varnish come from Debian
#      (scripts/deps.sh --bench);
#   2. the origin is `portico serve` over a docroot with a 600-byte and a
#      16 KiB file (mtime a day ago, so every proxy may cache them: portico by
#      the heuristic, nginx with proxy_cache_valid 200 10m, Varnish by its
#      default TTL), on CLIENT_CPU;
#   3. ROUNDS times, for each row and each proxy in turn (alternating): a
#      fresh proxy pinned to PROXY_CPU as a reverse proxy in front of the
#      origin, two warm-up requests (the second must be a hit where the proxy
#      says so), then `wrk -t1 -c50 -d SECS` pinned to CLIENT_CPU. Rows:
#        hit 600 B, hit 16 KiB (cache on), miss 600 B (portico --cache-mem 0
#        against nginx proxy_pass without a cache; Varnish with pass);
#        portico   proxy --workers 1 --upstream ORIGIN [--cache-mem 0]
#        nginx     master_process off, worker_processes 1, proxy_cache in a
#                  keys_zone of 10m, keepalive to the origin, access_log off
#        varnish   -p thread_pools=1, malloc storage 256m, default VCL
#                  (return(pass) for the miss row)
#   4. prints medians over the rounds: req/s, server CPU µs per request
#      (utime+stime of the proxy and its children from /proc, over the wrk
#      run), RSS after the run, and portico's ratio to each peer.
#
# Every process is started here and killed by PID on exit. The machine is
# shared and noisy: read the numbers as such.
set -euo pipefail

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-5}
PROXY_CPU=${PROXY_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
while getopts "r:d:h" opt; do
  case $opt in
    r) ROUNDS=$OPTARG ;;
    d) DURATION=$OPTARG ;;
    *) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
  esac
done
[[ $ROUNDS =~ ^[1-9][0-9]*$ && $DURATION =~ ^[1-9][0-9]*$ ]] ||
  { echo "proxy.sh: ROUNDS and DURATION must be positive integers" >&2; exit 2; }

cd "$(dirname "$0")/.."
bash scripts/deps.sh --bench
make -s build/portico
PORTICO=$PWD/build/portico
# Under /tmp: varnishd drops privileges and must reach its work dir.
TMP=$(mktemp -d /tmp/proxy-bench-XXXXXX)
chmod 755 "$TMP"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  sleep 0.3
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  [ "${KEEP_TMP:-0}" = 1 ] || rm -rf "$TMP"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() {
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.05
  done
  echo "proxy.sh: nothing listens on $1" >&2; return 1
}
# utime+stime (ticks) of a process and its children.
ticks() {
  local total=0 p
  for p in "$1" $(ps -o pid= --ppid "$1" 2>/dev/null); do
    [ -r "/proc/$p/stat" ] || continue
    total=$((total + $(awk '{print $14 + $15}' "/proc/$p/stat")))
  done
  echo "$total"
}
rss_kb() {
  local total=0 p
  for p in "$1" $(ps -o pid= --ppid "$1" 2>/dev/null); do
    total=$((total + $(awk '/^VmRSS/ {print $2}' "/proc/$p/status" 2>/dev/null || echo 0)))
  done
  echo "$total"
}
HZ=$(getconf CLK_TCK)

# --------------------------------------------------------------- the origin
mkdir -p "$TMP/www"
head -c 600 /dev/urandom | base64 -w 0 | head -c 600 > "$TMP/www/600.txt"
head -c 16384 /dev/urandom | base64 -w 0 | head -c 16384 > "$TMP/www/16k.txt"
touch -d '1 day ago' "$TMP/www/600.txt" "$TMP/www/16k.txt"
OPORT=$(free_port)
taskset -c "$CLIENT_CPU" "$PORTICO" serve "$TMP/www" --listen "127.0.0.1:$OPORT" --workers 1 \
  --quiet --max-requests 0 &
PIDS+=($!)
wait_port "$OPORT"

start_proxy() { # kind cache port -> pid in $PROXY_PID
  local kind=$1 cache=$2 port=$3
  case $kind in
    portico)
      local extra=()
      [ "$cache" = on ] || extra=(--cache-mem 0)
      taskset -c "$PROXY_CPU" "$PORTICO" proxy --workers 1 --quiet --listen "127.0.0.1:$port" \
        --upstream "http://127.0.0.1:$OPORT" "${extra[@]}" &
      PROXY_PID=$! ;;
    nginx)
      mkdir -p "$TMP/nginx-$port/cache"
      local cachecfg="proxy_cache c; proxy_cache_valid 200 10m; add_header X-Cache \$upstream_cache_status;"
      [ "$cache" = on ] || cachecfg=""
      cat > "$TMP/nginx-$port/nginx.conf" <<CONF
daemon off; master_process off; worker_processes 1; pid $TMP/nginx-$port/pid;
error_log $TMP/nginx-$port/error.log;
events { worker_connections 4096; }
http {
  access_log off;
  proxy_cache_path $TMP/nginx-$port/cache keys_zone=c:10m;
  upstream o { server 127.0.0.1:$OPORT; keepalive 64; }
  keepalive_requests 1000000000;
  server {
    listen 127.0.0.1:$port;
    location / { proxy_pass http://o; proxy_http_version 1.1; proxy_set_header Connection ""; $cachecfg }
  }
}
CONF
      taskset -c "$PROXY_CPU" nginx -c "$TMP/nginx-$port/nginx.conf" -p "$TMP/nginx-$port" &
      PROXY_PID=$! ;;
    varnish)
      local vcl="$TMP/varnish-$port.vcl"
      if [ "$cache" = on ]; then
        printf 'vcl 4.1;\nbackend o { .host = "127.0.0.1"; .port = "%s"; }\nsub vcl_deliver { if (obj.hits > 0) { set resp.http.X-Cache = "HIT"; } else { set resp.http.X-Cache = "MISS"; } }\n' "$OPORT" > "$vcl"
      else
        printf 'vcl 4.1;\nbackend o { .host = "127.0.0.1"; .port = "%s"; }\nsub vcl_recv { return (pass); }\n' "$OPORT" > "$vcl"
      fi
      chmod 644 "$vcl"
      taskset -c "$PROXY_CPU" varnishd -F -n "$TMP/varnish-$port" -a "127.0.0.1:$port" -f "$vcl" \
        -s malloc,256m -p thread_pools=1 -p thread_pool_min=50 -p thread_pool_max=500 \
        >"$TMP/varnish-$port.log" 2>&1 &
      PROXY_PID=$! ;;
  esac
  PIDS+=("$PROXY_PID")
  wait_port "$port"
}

RES="$TMP/results"
: > "$RES"
one_run() { # round row kind
  local row=$1 kind=$2 cache=on file
  case $row in
    hit-600) file=600.txt ;;
    hit-16k) file=16k.txt ;;
    miss-600) file=600.txt; cache=off ;;
  esac
  local port; port=$(free_port)
  start_proxy "$kind" "$cache" "$port"
  local url="http://127.0.0.1:$port/$file"
  curl -s -o /dev/null "$url"; curl -s -o /dev/null -D "$TMP/warm.h" "$url"
  if [ "$cache" = on ] && ! grep -qi '^x-cache: *hit' "$TMP/warm.h"; then
    echo "proxy.sh: $kind did not answer the warm-up from its cache:" >&2; cat "$TMP/warm.h" >&2; exit 1
  fi
  local t0; t0=$(ticks "$PROXY_PID")
  local out; out=$(timeout $((DURATION + 30)) taskset -c "$CLIENT_CPU" wrk -t1 -c50 -d"${DURATION}s" "$url")
  local t1; t1=$(ticks "$PROXY_PID")
  local rss; rss=$(rss_kb "$PROXY_PID")
  if grep -q "Non-2xx" <<<"$out"; then echo "proxy.sh: $kind $row: non-2xx answers" >&2; echo "$out" >&2; exit 1; fi
  local reqs rps
  reqs=$(awk '/requests in/ {print $1}' <<<"$out")
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  local us; us=$(awk -v t=$((t1 - t0)) -v hz="$HZ" -v n="$reqs" 'BEGIN { printf "%.2f", t / hz * 1e6 / n }')
  echo "$row $kind $rps $us $rss" >> "$RES"
  printf '  %-9s %-8s %10s req/s %8s us/req %8s kB\n' "$row" "$kind" "$rps" "$us" "$rss"
  kill "$PROXY_PID" 2>/dev/null || true
  wait "$PROXY_PID" 2>/dev/null || true
}

idle() { awk '/^cpu / {print $5}' /proc/stat; }
echo "proxy.sh: $ROUNDS rounds of ${DURATION}s, proxies on CPU $PROXY_CPU, wrk and origin on CPU $CLIENT_CPU"
echo "proxy.sh: the machine is shared with other builds and tests: numbers are noisy"
uptime
for r in $(seq "$ROUNDS"); do
  echo "round $r"
  for row in ${ROWS:-hit-600 hit-16k miss-600}; do
    # Alternate the order between rounds.
    if [ $((r % 2)) = 1 ]; then kinds="portico nginx varnish"; else kinds="varnish nginx portico"; fi
    for k in $kinds; do one_run "$row" "$k"; done
  done
done

echo
echo "medians over $ROUNDS rounds (noisy shared machine):"
python3 - "$RES" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    row, kind, rps, us, rss = line.split()
    rows.setdefault((row, kind), []).append((float(rps), float(us), int(rss)))
print(f"{'row':10} {'proxy':8} {'req/s':>10} {'us/req':>8} {'RSS kB':>8}   portico/peer (req/s)")
for row in ("hit-600", "hit-16k", "miss-600"):
    med = {}
    for kind in ("portico", "nginx", "varnish"):
        v = rows.get((row, kind))
        if not v:
            continue
        med[kind] = (statistics.median(x[0] for x in v), statistics.median(x[1] for x in v),
                     max(x[2] for x in v))
    for kind, (rps, us, rss) in med.items():
        ratio = f"{med['portico'][0] / rps:.2f}x" if kind != "portico" and "portico" in med else ""
        print(f"{row:10} {kind:8} {rps:10.0f} {us:8.2f} {rss:8d}   {ratio}")
PY
uptime
