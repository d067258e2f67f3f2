#!/usr/bin/env bash
# bench/xfer.sh - portico xfer beside kernel TCP (cubic and bbr, sent with
# socat) over the same emulated links, in the same run; and CPU per GB on
# loopback.
#
# The link: three network namespaces in a row, client - router - server,
# joined by veth with TSO/GSO/GRO off. In the router: iptables `-m statistic
# --mode random` drops for loss (every forwarded packet, both directions),
# an NFQUEUE that bench/nfq_delay holds for RTT/2 each way for delay (this
# kernel has no netem), and tc tbf on both egress sides for the rate.
# Completion time: from the sender's start until the receiver holds every
# byte (xfer: until the sender has the receiver's verdict, after its fsync
# and SHA-256; TCP: until the receiving socat exits on EOF).
#
#   bash bench/xfer.sh
#   RUNS=5 PROFILES="50:5 0:1" SIZE_MB=10 RATE=100mbit bash bench/xfer.sh
#
# PROFILES lists RTT_MS:LOSS_PCT pairs. Each run is capped at TIMEOUT
# seconds ("timeout" in the table). Needs root. Prints medians and the
# ratio portico/peer of completion times (below 1: portico is faster).
set -euo pipefail
cd "$(dirname "$0")/.."

# --loop-child xfer|tcp WORK: one loopback transfer of WORK/big.bin; prints
# "wall_s cpu_s" (user + system of both ends, from their rusage).
if [ "${1:-}" = --loop-child ]; then
    what=$2 WORK=$3
    rm -f "$WORK/out/"*
    t0=$(date +%s.%N)
    if [ "$what" = xfer ]; then
        build/portico xfer recv --listen 127.0.0.1:7071 --dir "$WORK/out" --once >/dev/null 2>&1 &
        r=$!
        sleep 0.2
        t0=$(date +%s.%N)
        build/portico xfer send "$WORK/big.bin" 127.0.0.1:7071 >/dev/null
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

RUNS=${RUNS:-3}
SIZE_MB=${SIZE_MB:-10}
RATE=${RATE:-100mbit}
TIMEOUT=${TIMEOUT:-60}
PROFILES=${PROFILES:-"0:0 0:1 0:5 50:0 50:1 50:5"}
LOOP_MB=${LOOP_MB:-1024}
PORTICO=$PWD/build/portico

bash scripts/deps.sh --bench
make -s
cc -O2 -Wall -o build/nfq_delay bench/nfq_delay.c -lnetfilter_queue

tag=$$
C=xferc$tag R=xferr$tag S=xfers$tag
WORK=$(mktemp -d /tmp/xferbench.XXXXXX)
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

run_xfer() {
    rm -f "$WORK/out/"*
    ip netns exec $S "$PORTICO" xfer recv --listen 10.210.2.2:7070 --dir "$WORK/out" --once \
        >/dev/null 2>"$WORK/recv.err" &
    local rpid=$!
    sleep 0.3
    local t0 t1
    t0=$(now)
    local stats=()
    [ -n "${KEEP_STATS:-}" ] && stats=(--stats "$KEEP_STATS/xfer-$CUR_PROFILE-$(date +%s%N).csv")
    if timeout "$TIMEOUT" ip netns exec $C "$PORTICO" xfer send "${stats[@]}" "$WORK/file.bin" 10.210.2.2:7070 \
        >/dev/null 2>"$WORK/send.err"; then
        t1=$(now)
        cmp -s "$WORK/file.bin" "$WORK/out/file.bin" || { echo "xfer: file differs" >&2; exit 1; }
        awk "BEGIN{printf \"%.3f\", $t1-$t0}"
    else
        echo timeout
    fi
    kill "$rpid" 2>/dev/null || true
    wait "$rpid" 2>/dev/null || true
}

run_tcp() {
    local cc=$1
    rm -f "$WORK/out/"*
    # TCP_CONGESTION (13) at IPPROTO_TCP (6) on each socket: the namespace's
    # sysctl may be read-only in a container.
    ip netns exec $S socat -u TCP-LISTEN:5001,reuseaddr,setsockopt-string=6:13:"$cc" \
        OPEN:"$WORK/out/tcp.bin",creat,trunc &
    local spid=$!
    sleep 0.3
    local t0 t1
    t0=$(now)
    timeout "$TIMEOUT" ip netns exec $C socat -u FILE:"$WORK/file.bin" \
        TCP:10.210.2.2:5001,setsockopt-string=6:13:"$cc" &
    local cpid=$!
    local waited=0
    while kill -0 "$spid" 2>/dev/null; do
        sleep 0.01
        waited=$((waited + 1))
        [ "$waited" -gt $((TIMEOUT * 100)) ] && break
    done
    if kill -0 "$spid" 2>/dev/null; then
        kill "$spid" "$cpid" 2>/dev/null || true
        wait "$spid" "$cpid" 2>/dev/null || true
        echo timeout
        return
    fi
    t1=$(now)
    local crc=0
    wait "$cpid" 2>/dev/null || crc=$?
    if [ "$crc" = 124 ]; then   # the sender's timeout closed the connection early
        echo timeout
        return
    fi
    cmp -s "$WORK/file.bin" "$WORK/out/tcp.bin" || { echo "tcp: file differs" >&2; exit 1; }
    awk "BEGIN{printf \"%.3f\", $t1-$t0}"
}

median() {
    # "timeout" counts as infinitely slow
    printf '%s\n' "$@" | sed "s/timeout/999999/" | sort -g | awk '{a[NR]=$1} END{m=a[int((NR+1)/2)]; if (m==999999) print "timeout"; else print m}'
}

mbps() { [ "$1" = timeout ] && echo "-" || awk "BEGIN{printf \"%.1f\", $SIZE_MB*8*1.048576/$1}"; }
ratio() { { [ "$1" = timeout ] || [ "$2" = timeout ]; } && echo "-" || awk "BEGIN{printf \"%.2f\", $1/$2}"; }

mkdir -p "$WORK/out"
head -c $((SIZE_MB << 20)) /dev/urandom > "$WORK/file.bin"
setup

echo "# bench/xfer.sh: ${SIZE_MB} MiB file, rate $RATE, $RUNS runs each, median completion s (goodput Mbit/s)"
echo "# $(date -u +%FT%TZ) $(uname -r), $(nproc) CPUs; machine shared with other builds: numbers are noisy"
printf '%-12s %-22s %-22s %-22s %-10s %-10s\n' profile "portico xfer (bbr)" "tcp cubic" "tcp bbr" "x/cubic" "x/bbr"
for p in $PROFILES; do
    rtt=${p%%:*} loss=${p##*:}
    CUR_PROFILE=${rtt}ms-${loss}pct
    profile "$rtt" "$loss"
    xs=() cs=() bs=()
    for ((i = 0; i < RUNS; i++)); do
        xs+=("$(run_xfer)")
        cs+=("$(run_tcp cubic)")
        bs+=("$(run_tcp bbr)")
    done
    x=$(median "${xs[@]}") c=$(median "${cs[@]}") b=$(median "${bs[@]}")
    printf '%-12s %-22s %-22s %-22s %-10s %-10s\n' "${rtt}ms/${loss}%" \
        "$x ($(mbps "$x"))" "$c ($(mbps "$c"))" "$b ($(mbps "$b"))" "$(ratio "$x" "$c")" "$(ratio "$x" "$b")"
done
profile 0 0

# CPU per GB on loopback, sender and receiver together, in the server
# namespace (its own lo: no port clash with anything else on the machine).
[ "$LOOP_MB" -gt 0 ] || exit 0
head -c $((LOOP_MB << 20)) /dev/zero > "$WORK/big.bin"
echo
echo "# loopback, ${LOOP_MB} MiB, $RUNS runs: median wall s, CPU s per GB (both ends), Gbit/s"
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
