# Shared by benches/load.sh and benches/versus.sh (sourced): a temporary
# directory and the processes to stop on exit, free loopback ports, and
# the bracketed ratios of measurements taken in rounds.

TMP=$(mktemp -d)
PIDS=()
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$TMP"
}
trap cleanup EXIT

# A loopback port nothing listens on, below the ephemeral range: a port
# that a closed wrk or curl connection still holds in TIME_WAIT refuses a
# probe but cannot be bound by a server.
read -r EPHEMERAL_LOW _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || EPHEMERAL_LOW=32768
free_port() {
    local port lo=10000 hi=$EPHEMERAL_LOW
    ((hi - lo >= 1000)) || lo=20000 hi=60000
    while :; do
        port=$((lo + (RANDOM * 32768 + RANDOM) % (hi - lo)))
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || { echo "$port"; return; }
    done
}

median() { printf '%s\n' "$@" | sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }

# ratios "BASE REQ/S..." "CASE REQ/S...": the case's ratio in each round to
# the mean of the base slices just before and just after it, in round order.
ratios() {
    awk -v b="$1" -v c="$2" 'BEGIN {
        nb = split(b, B, " "); nc = split(c, C, " ")
        for (i = 1; i <= nc && i < nb; i++) print C[i] / ((B[i] + B[i + 1]) / 2)
    }'
}

# bracketed "BASE REQ/S..." "CASE REQ/S...": "median min max n" of ratios.
bracketed() {
    ratios "$1" "$2" | sort -g | awk '{Q[++n] = $1} END {
        if (n == 0) { print "- - - 0"; exit }
        med = (n % 2) ? Q[(n + 1) / 2] : (Q[n / 2] + Q[n / 2 + 1]) / 2
        printf "%.3f %.2f %.2f %d\n", med, Q[1], Q[n], n
    }'
}
