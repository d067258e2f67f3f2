#!/usr/bin/env bash
# bench/xfer.sh - portico xfer beside kernel TCP (cubic and bbr) over the
# same emulated links, in the same run; and CPU per GB on loopback.
#
# The link: three network namespaces in a row, client - router - server,
# joined by veth with TSO/GSO/GRO off. In the router: iptables `-m statistic
# --mode random` drops for loss (every forwarded packet, both directions),
# an NFQUEUE that bench/nfq_delay holds for RTT/2 each way for delay (this
# kernel has no netem), and tc tbf on both egress sides for the rate.
#
# What is measured, the same way for both: the wall time from starting the
# sending process until it exits, and it exits once it knows the receiving
# application holds every byte - connect to last byte acknowledged, plus the
# half round trip that tells the sender. portico xfer: the sender exits on
# the receiver's verdict (every byte written, SHA-256 checked). TCP:
# bench/tcp_send (connect, sendfile, shutdown) exits when the receiving
# socat closes the connection after reading EOF. Both receivers write to
# tmpfs (/dev/shm), so xfer's fsync before its verdict costs nothing, as
# socat does none; SHA-256 on both ends stays on xfer's side of the bill.
#
# Two tables per profile set:
#   time: a SIZE_MB file (10 MiB), median completion time of RUNS runs
#         (capped at TIMEOUT s, "timeout").
#   bulk: a file the link needs about BULK_S seconds for (20 s); goodput =
#         bytes the receiver holds / elapsed, the run capped at 1.5 BULK_S
#         (then the bytes it holds by the cap); median of BULK_RUNS.
#
#   bash bench/xfer.sh                      # everything, ~25 min: split it
#   MODE=time PROFILES="50:5 0:1" bash bench/xfer.sh
#   MODE=bulk PROFILES="50:5" BULK_RUNS=3 bash bench/xfer.sh
#   QUICK=1 bash bench/xfer.sh              # 1 run, 5 s bulk, 256 MiB loopback
#   PEERS="xfer bbr" MODE=time bash bench/xfer.sh   # leave TCP cubic out
#
# MODE is time, bulk, loop or all (comma-separated list works too).
# PROFILES lists RTT_MS:LOSS_PCT pairs. Needs root. Prints medians and the
# ratio portico/peer (time: below 1 portico is faster; bulk: above 1 it is).
set -euo pipefail
cd "$(dirname "$0")/.."

# --loop-child xfer|tcp WORK: one loopback transfer of WORK/big.bin; prints
# "wall_s cpu_s" (user + system of both ends, from their rusage).
if [ "${1:-}" = --loop-child ]; then
    what=$2 WORK=$3
    rm -f "$WORK/out/"*
    t0=$(date +%s.%N)
    if [ "$what" = xfer ]; then
        "$WORK/portico" xfer recv --listen 127.0.0.1:7071 --dir "$WORK/out" --once >/dev/null 2>&1 &
        r=$!
        sleep 0.2
        t0=$(date +%s.%N)
        "$WORK/portico" xfer send "$WORK/big.bin" 127.0.0.1:7071 >/dev/null
    else
        socat -u TCP-LISTEN:5002,reuseaddr OPEN:"$WORK/out/t.bin",creat,trunc &
        r=$!
        sleep 0.2
        t0=$(date +%s.%N)
        socat -u FILE:"$WORK/big.bin" TCP:127.0.0.1:5002
    fi
    wait "$r"
    t1=$(date +%s.%N)
    times > "$WORK/times"                # not in a subshell: its children are not ours
    read -r -a tms < <(tail -1 "$WORK/times")   # children's user and system time, before cmp
    cmp -s "$WORK/big.bin" "$WORK/out/"* || { echo "loopback $what: file differs" >&2; exit 1; }
    to_s() { awk -v t="$1" 'BEGIN{split(t, a, "m"); sub("s", "", a[2]); print a[1]*60 + a[2]}'; }
    awk "BEGIN{printf \"%.3f %.3f\n\", $t1-$t0, $(to_s "${tms[0]}")+$(to_s "${tms[1]}")}"
    exit 0
fi

QUICK=${QUICK:-}
RUNS=${RUNS:-$([ -n "$QUICK" ] && echo 1 || echo 3)}
BULK_RUNS=${BULK_RUNS:-1}
BULK_S=${BULK_S:-$([ -n "$QUICK" ] && echo 5 || echo 20)}
SIZE_MB=${SIZE_MB:-10}
RATE=${RATE:-100mbit}
TIMEOUT=${TIMEOUT:-30}
MODE=${MODE:-all}
PROFILES=${PROFILES:-"0:0 0:1 0:5 50:0 50:1 50:5"}
LOOP_MB=${LOOP_MB:-$([ -n "$QUICK" ] && echo 256 || echo 1024)}
PORTICO=$PWD/build/portico
want() { [ "$MODE" = all ] || [[ ",$MODE," == *",$1,"* ]]; }
PEERS=${PEERS:-"xfer cubic bbr"}   # which of the three to run
has() { [[ " $PEERS " == *" $1 "* ]]; }

bash scripts/deps.sh --bench
make -s
cc -O2 -Wall -o build/nfq_delay bench/nfq_delay.c -lnetfilter_queue
cc -O2 -Wall -o build/tcp_send bench/tcp_send.c

tag=$$
C=xferc$tag R=xferr$tag S=xfers$tag
WORK=$(mktemp -d /dev/shm/xferbench.XXXXXX)   # tmpfs: no disk in the measure
cp build/portico "$WORK/portico"   # a rebuild during the run does not change what is measured
PORTICO=$WORK/portico
NFQ_PID=

cleanup() {
    [ -n "$NFQ_PID" ] && kill "$NFQ_PID" 2>/dev/null || true
    for ns in $C $R $S; do ip netns del "$ns" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT

nsx() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

setup() {
    for ns in $C $R $S; do ip netns add "$ns"; nsx "$ns" ip link set lo up; done
    ip link add xfc$tag type veth peer name xfrc$tag
    ip link add xfs$tag type veth peer name xfrs$tag
    ip link set xfc$tag netns $C; ip link set xfrc$tag netns $R
    ip link set xfs$tag netns $S; ip link set xfrs$tag netns $R
    nsx $C ip addr add 10.210.1.1/24 dev xfc$tag
    nsx $R ip addr add 10.210.1.2/24 dev xfrc$tag
    nsx $R ip addr add 10.210.2.1/24 dev xfrs$tag
    nsx $S ip addr add 10.210.2.2/24 dev xfs$tag
    for pair in "$C xfc$tag" "$R xfrc$tag" "$R xfrs$tag" "$S xfs$tag"; do
        set -- $pair
        nsx "$1" ip link set "$2" up
        nsx "$1" ethtool -K "$2" tso off gso off gro off >/dev/null 2>&1 || true
    done
    nsx $C ip route add default via 10.210.1.2
    nsx $S ip route add default via 10.210.2.1
    nsx $R sysctl -qw net.ipv4.ip_forward=1
    for dev in xfrc$tag xfrs$tag; do
        nsx $R tc qdisc replace dev "$dev" root tbf rate "$RATE" burst 32kb latency 400ms
    done
}

# profile RTT_MS LOSS_PCT: the router's rules for one link profile.
profile() {
    local rtt=$1 loss=$2
    [ -n "$NFQ_PID" ] && { kill "$NFQ_PID" 2>/dev/null || true; wait "$NFQ_PID" 2>/dev/null || true; NFQ_PID=; }
    nsx $R iptables -F FORWARD
    if [ "$loss" != 0 ]; then
        nsx $R iptables -A FORWARD -m statistic --mode random \
            --probability "$(awk "BEGIN{print $loss/100}")" -j DROP
    fi
    if [ "$rtt" != 0 ]; then
        nsx $R iptables -A FORWARD -j NFQUEUE --queue-num 7 --queue-bypass
        ip netns exec $R ./build/nfq_delay 7 "$(awk "BEGIN{print $rtt/2}")" &   # exec: $! is its pid
        NFQ_PID=$!
        sleep 0.3
    fi
}

now() { date +%s.%N; }

# run_xfer FILE CAP_S: prints "seconds bytes" - the sender's run time and
# what the receiver holds (the whole file, or at the cap its .part);
# seconds is "timeout" when the cap cut it.
run_xfer() {
    local file=$1 cap=$2
    rm -f "$WORK/out/"*
    ip netns exec $S "$PORTICO" xfer recv --listen 10.210.2.2:7070 --dir "$WORK/out" --once \
        >/dev/null 2>"$WORK/recv.err" &
    local rpid=$!
    sleep 0.3
    local t0 t1 rc=0
    local stats=()
    [ -n "${KEEP_STATS:-}" ] && stats=(--stats "$KEEP_STATS/xfer-$CUR_PROFILE-$(date +%s%N).csv")
    t0=$(now)
    timeout "$cap" ip netns exec $C "$PORTICO" xfer send "${stats[@]}" "$file" 10.210.2.2:7070 \
        >/dev/null 2>"$WORK/send.err" || rc=$?
    t1=$(now)
    kill "$rpid" 2>/dev/null || true
    wait "$rpid" 2>/dev/null || true
    local name out
    name=$(basename "$file")
    if [ "$rc" = 0 ]; then
        cmp -s "$file" "$WORK/out/$name" || { echo "xfer: file differs" >&2; exit 1; }
        echo "$(awk "BEGIN{printf \"%.3f\", $t1-$t0}") $(stat -c %s "$file")"
    else
        # a failure other than the cap is reported, and counts as a timeout
        [ "$rc" != 124 ] && echo "xfer send exit $rc: $(tr '\n' ' ' < "$WORK/send.err") / recv: $(tr '\n' ' ' < "$WORK/recv.err")" >&2
        out=$WORK/out/$name.part
        echo "timeout $( [ -f "$out" ] && stat -c %s "$out" || echo 0)"
    fi
}

# run_tcp CC FILE CAP_S: as run_xfer, for kernel TCP with congestion control CC.
run_tcp() {
    local cc=$1 file=$2 cap=$3
    rm -f "$WORK/out/"*
    # TCP_CONGESTION (13) at IPPROTO_TCP (6) on each socket: the namespace's
    # sysctl may be read-only in a container.
    ip netns exec $S socat -u TCP-LISTEN:5001,reuseaddr,setsockopt-string=6:13:"$cc" \
        OPEN:"$WORK/out/tcp.bin",creat,trunc 2>/dev/null &
    local spid=$!
    sleep 0.3
    local t0 t1 rc=0
    t0=$(now)
    ip netns exec $C ./build/tcp_send "$file" 10.210.2.2 5001 "$cc" "$cap" || rc=$?
    t1=$(now)
    local waited=0
    while kill -0 "$spid" 2>/dev/null && [ $waited -lt 200 ]; do sleep 0.01; waited=$((waited + 1)); done
    kill "$spid" 2>/dev/null || true
    wait "$spid" 2>/dev/null || true
    if [ "$rc" = 0 ]; then
        cmp -s "$file" "$WORK/out/tcp.bin" || { echo "tcp: file differs" >&2; exit 1; }
        echo "$(awk "BEGIN{printf \"%.3f\", $t1-$t0}") $(stat -c %s "$file")"
    else
        echo "timeout $(stat -c %s "$WORK/out/tcp.bin" 2>/dev/null || echo 0)"
    fi
}

median() {
    # "timeout" counts as infinitely slow; no runs (a peer left out): "-"
    [ $# -gt 0 ] || { echo -; return; }
    printf '%s\n' "$@" | sed "s/timeout/999999/" | sort -g | awk '{a[NR]=$1} END{m=a[int((NR+1)/2)]; if (m==999999) print "timeout"; else print m}'
}

mbps() { [ "$1" = timeout ] || [ "$1" = - ] && echo "-" || awk "BEGIN{printf \"%.1f\", $SIZE_MB*8*1.048576/$1}"; }
ratio() { case "$1$2" in *timeout*|*-*) echo "-"; return;; esac; [ "$2" = 0 ] && echo "-" || awk "BEGIN{printf \"%.2f\", $1/$2}"; }
# goodput "SECONDS BYTES" CAP: Mbit/s over the run, or over the cap when cut.
goodput() {
    local t=${1%% *} n=${1##* }
    [ "$t" = timeout ] && t=$2
    awk "BEGIN{printf \"%.1f\", $n*8/1e6/$t}"
}
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }

mkdir -p "$WORK/out"
head -c $((SIZE_MB << 20)) /dev/urandom > "$WORK/file.bin"
# bulk: the bytes the link carries in BULK_S seconds
rate_bps=$(awk -v r="$RATE" 'BEGIN{m=1; if (r ~ /[gG]bit$/) m=1e9; else if (r ~ /[mM]bit$/) m=1e6; else if (r ~ /[kK]bit$/) m=1e3; print int(r+0)*m}')
BULK_BYTES=$(awk "BEGIN{print int($rate_bps/8*$BULK_S)}")
BULK_CAP=$(awk "BEGIN{print int($BULK_S*1.5+0.5)}")
want bulk && head -c "$BULK_BYTES" /dev/urandom > "$WORK/bulk.bin"
setup

echo "# bench/xfer.sh $(date -u +%FT%TZ) $(uname -r), $(nproc) CPUs, rate $RATE; machine shared with other builds: numbers are noisy"
if want time; then
    echo "# time: ${SIZE_MB} MiB file, $RUNS runs each, median s from start to the sender knowing the receiver has it (goodput Mbit/s)"
    printf '%-12s %-15s %-22s %-22s %-22s %-8s %-8s\n' profile "load avg" "portico xfer (bbr)" "tcp cubic" "tcp bbr" "x/cubic" "x/bbr"
    for p in $PROFILES; do
        rtt=${p%%:*} loss=${p##*:}
        CUR_PROFILE=${rtt}ms-${loss}pct
        profile "$rtt" "$loss"
        la=$(loadavg)
        xs=() cs=() bs=()
        for ((i = 0; i < RUNS; i++)); do
            has xfer && { r=$(run_xfer "$WORK/file.bin" "$TIMEOUT"); xs+=("${r%% *}"); }
            has cubic && { r=$(run_tcp cubic "$WORK/file.bin" "$TIMEOUT"); cs+=("${r%% *}"); }
            has bbr && { r=$(run_tcp bbr "$WORK/file.bin" "$TIMEOUT"); bs+=("${r%% *}"); }
        done
        [ -n "${VERBOSE:-}" ] && echo "#   xfer ${xs[*]} | cubic ${cs[*]} | bbr ${bs[*]}"
        x=$(median "${xs[@]}") c=$(median "${cs[@]}") b=$(median "${bs[@]}")
        printf '%-12s %-15s %-22s %-22s %-22s %-8s %-8s\n' "${rtt}ms/${loss}%" "$la" \
            "$x ($(mbps "$x"))" "$c ($(mbps "$c"))" "$b ($(mbps "$b"))" "$(ratio "$x" "$c")" "$(ratio "$x" "$b")"
    done
fi
if want bulk; then
    echo "# bulk: $BULK_BYTES bytes (~${BULK_S} s of the link), capped at ${BULK_CAP} s, median goodput Mbit/s of $BULK_RUNS"
    printf '%-12s %-15s %-12s %-12s %-12s %-8s %-8s\n' profile "load avg" "portico xfer" "tcp cubic" "tcp bbr" "x/cubic" "x/bbr"
    for p in $PROFILES; do
        rtt=${p%%:*} loss=${p##*:}
        CUR_PROFILE=bulk-${rtt}ms-${loss}pct
        profile "$rtt" "$loss"
        la=$(loadavg)
        xs=() cs=() bs=()
        for ((i = 0; i < BULK_RUNS; i++)); do
            has xfer && xs+=("$(goodput "$(run_xfer "$WORK/bulk.bin" "$BULK_CAP")" "$BULK_CAP")")
            has cubic && cs+=("$(goodput "$(run_tcp cubic "$WORK/bulk.bin" "$BULK_CAP")" "$BULK_CAP")")
            has bbr && bs+=("$(goodput "$(run_tcp bbr "$WORK/bulk.bin" "$BULK_CAP")" "$BULK_CAP")")
        done
        [ -n "${VERBOSE:-}" ] && echo "#   xfer ${xs[*]} | cubic ${cs[*]} | bbr ${bs[*]}"
        x=$(median "${xs[@]}") c=$(median "${cs[@]}") b=$(median "${bs[@]}")
        printf '%-12s %-15s %-12s %-12s %-12s %-8s %-8s\n' "${rtt}ms/${loss}%" "$la" \
            "$x" "$c" "$b" "$(ratio "$x" "$c")" "$(ratio "$x" "$b")"
    done
fi
profile 0 0

# CPU per GB on loopback, sender and receiver together, in the server
# namespace (its own lo: no port clash with anything else on the machine).
{ want loop && [ "$LOOP_MB" -gt 0 ]; } || exit 0
head -c $((LOOP_MB << 20)) /dev/zero > "$WORK/big.bin"
echo
echo "# loopback, ${LOOP_MB} MiB, $RUNS runs, load avg $(loadavg): median wall s, CPU s per GB (both ends), Gbit/s"
xw=() xc=() tw=() tc=()
for ((i = 0; i < RUNS; i++)); do
    read -r w c < <(nsx $S bash bench/xfer.sh --loop-child xfer "$WORK")
    xw+=("$w") xc+=("$c")
    read -r w c < <(nsx $S bash bench/xfer.sh --loop-child tcp "$WORK")
    tw+=("$w") tc+=("$c")
done
gb=$(awk "BEGIN{print $LOOP_MB/1024}")
for who in xfer tcp-cubic; do
    if [ $who = xfer ]; then w=$(median "${xw[@]}"); c=$(median "${xc[@]}"); else w=$(median "${tw[@]}"); c=$(median "${tc[@]}"); fi
    printf '%-10s wall %-8s cpu/GB %-8s %s Gbit/s\n' "$who" "$w" "$(awk "BEGIN{printf \"%.2f\", $c/$gb}")" \
        "$(awk "BEGIN{printf \"%.2f\", $LOOP_MB*8*1.048576/1000/$w}")"
done
