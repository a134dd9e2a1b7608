# Shared by benches/load.sh and benches/versus.sh (sourced): a temporary
# directory and the processes to stop on exit, and free loopback ports.

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
