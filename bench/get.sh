#!/usr/bin/env bash
# bench/get.sh - `portico get` beside curl (Debian's) fetching from `portico serve`.
#
#   bash bench/get.sh [-r ROUNDS] [-n FILES] [-s SIZE_MIB]
#
# (or ROUNDS, FILES, BIG_MIB in the environment; KEEP_TMP=1 keeps the temp
# dir). Defaults: 5 rounds, 1000 small files, a 1024 MiB file.
#
# What it does:
#   1. builds build/portico; writes FILES files of 1 KiB and one sparse file
#      of BIG_MIB MiB into a temp dir below build/bench/, and starts
#      `portico serve --workers 1` on a free loopback port (pinned to CPU 0
#      when there are two CPUs or more; the clients run on CPU 1);
#   2. checks that both clients fetch the same bytes, and counts the
#      connections each opens for the small files (from their -v output);
#   3. ROUNDS times, alternating which client goes first:
#        small: one command line with the FILES URLs, bodies to /dev/null
#               (`portico get -s URL...` / `curl -s URL...`)
#        big:   the big file to /dev/null (-o /dev/null for both); portico
#               twice, with its splice(2) path and with --no-splice (the
#               copy through memory that chunked bodies still take)
#      timing each run with bash's `time` (wall, user+sys CPU of the client);
#   4. prints the median of each and the ratio portico/curl (below 1: portico
#      is faster or cheaper).
#
# Every run is bounded by `timeout`; the server is killed by PID on exit.
# The machine is shared and noisy: read the numbers as rough, and look at
# the idle figure printed in the header.
set -euo pipefail

ROUNDS=${ROUNDS:-5}
FILES=${FILES:-1000}
BIG_MIB=${BIG_MIB:-1024}

usage() { sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
while getopts "r:n:s:h" opt; do
  case $opt in
    r) ROUNDS=$OPTARG ;;
    n) FILES=$OPTARG ;;
    s) BIG_MIB=$OPTARG ;;
    *) usage ;;
  esac
done
for v in ROUNDS FILES BIG_MIB; do
  [[ ${!v} =~ ^[1-9][0-9]*$ ]] || { echo "get.sh: $v must be a positive integer" >&2; exit 2; }
done

cd "$(dirname "$0")/.."
make -s build/portico >/dev/null
command -v curl >/dev/null || bash scripts/deps.sh
PORTICO=$PWD/build/portico

mkdir -p build/bench
TMP=$(mktemp -d build/bench/get-XXXXXX)
SRV_PID=
cleanup() {
  [ -n "$SRV_PID" ] && kill "$SRV_PID" 2>/dev/null && wait "$SRV_PID" 2>/dev/null || true
  [ "${KEEP_TMP:-0}" = 1 ] || rm -rf "$TMP"
}
trap cleanup EXIT

NCPU=$(nproc)
SRV_PIN=() CLI_PIN=()
if [ "$NCPU" -ge 2 ] && command -v taskset >/dev/null; then
  SRV_PIN=(taskset -c 0) CLI_PIN=(taskset -c 1)
fi

mkdir -p "$TMP/site/s"
head -c 1024 /dev/urandom > "$TMP/one"
for ((i = 0; i < FILES; i++)); do cp "$TMP/one" "$TMP/site/s/f$i"; done
truncate -s "${BIG_MIB}M" "$TMP/site/big"

PORT=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"${SRV_PIN[@]}" "$PORTICO" serve --listen "127.0.0.1:$PORT" --workers 1 --quiet \
  --max-requests 0 "$TMP/site" &
SRV_PID=$!
for _ in $(seq 100); do
  curl -s -o /dev/null "http://127.0.0.1:$PORT/s/f0" && break
  sleep 0.05
done

URLS=()
for ((i = 0; i < FILES; i++)); do URLS+=("http://127.0.0.1:$PORT/s/f$i"); done
BIG="http://127.0.0.1:$PORT/big"

# Same bytes, one connection each for the small files.
"$PORTICO" get -s "${URLS[@]:0:50}" > "$TMP/p.out"
curl -s "${URLS[@]:0:50}" > "$TMP/c.out"
cmp -s "$TMP/p.out" "$TMP/c.out" || { echo "get.sh: portico get and curl differ" >&2; exit 1; }
# Connections opened, from each client's own -v output.
pc=$("$PORTICO" get -v "${URLS[@]}" 2>&1 >/dev/null | grep -c '^\* Connected:' || true)
cc=$(curl -sv "${URLS[@]}" 2>&1 >/dev/null | grep -c '^\* Connected to' || true)

idle() { # % idle CPU over half a second
  read -r _ a b c d e f g _ < /proc/stat; t1=$((a+b+c+d+e+f+g)); i1=$d
  sleep 0.5
  read -r _ a b c d e f g _ < /proc/stat; t2=$((a+b+c+d+e+f+g)); i2=$d
  echo $(( 100 * (i2 - i1) / (t2 - t1) ))
}

# run NAME CMD...: appends "wall cpu" to $TMP/NAME.
run() {
  local name=$1; shift
  local TIMEFORMAT='%R %U %S' t
  t=$( { time timeout 600 "${CLI_PIN[@]}" "$@" > /dev/null 2>/dev/null; } 2>&1 )
  read -r w u s <<< "$t"
  echo "$w $u $s" | awk '{print $1, $2 + $3}' >> "$TMP/$name"
}

echo "portico get vs curl $(curl --version | head -1 | cut -d' ' -f1-2), $ROUNDS rounds, $NCPU CPUs," \
     "idle before: $(idle)% (shared machine: numbers are rough)"
echo "connections used for $FILES files: portico $pc, curl $cc (from their -v output)"
for ((r = 0; r < ROUNDS; r++)); do
  if (( r % 2 == 0 )); then order="p c"; else order="c p"; fi
  for who in $order; do
    if [ "$who" = p ]; then
      run p_small "$PORTICO" get -s "${URLS[@]}"
      run p_big "$PORTICO" get -s -o /dev/null "$BIG"
      run p_bigcopy "$PORTICO" get -s --no-splice -o /dev/null "$BIG"
    else
      run c_small curl -s "${URLS[@]}"
      run c_big curl -s -o /dev/null "$BIG"
    fi
  done
done

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
col() { awk -v c="$2" '{print $c}' "$TMP/$1" | median; }
row() {
  local label=$1 p=$2 c=$3
  local pw pc cw cc
  pw=$(col "$p" 1); pc=$(col "$p" 2); cw=$(col "$c" 1); cc=$(col "$c" 2)
  awk -v l="$label" -v pw="$pw" -v pc="$pc" -v cw="$cw" -v cc="$cc" 'BEGIN {
    printf "%-26s %9.3f %9.3f %9.3f %9.3f %8.2f %8.2f\n", l, pw, pc, cw, cc,
           pw / (cw > 0 ? cw : 0.001), pc / (cc > 0 ? cc : 0.001) }'
}
echo
printf "%-26s %9s %9s %9s %9s %8s %8s\n" "median of $ROUNDS" "portico" "portico" "curl" "curl" "ratio" "ratio"
printf "%-26s %9s %9s %9s %9s %8s %8s\n" "" "wall s" "CPU s" "wall s" "CPU s" "wall" "CPU"
row "$FILES x 1 KiB, 1 conn" p_small c_small
row "1 x $BIG_MIB MiB" p_big c_big
row "1 x $BIG_MIB MiB --no-splice" p_bigcopy c_big
echo "idle after: $(idle)%"
