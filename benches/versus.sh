#!/usr/bin/env bash
# Brackets regauth binaries against each other (BENCHMARKS.md, "Release
# profile"): two builds of regauth, for example two release profiles, serve
# the requests of `make bench`'s item 1 (anonymous, and htpasswd with the
# credential cache warm, small ACL) in the same run, so that the machine's
# drift and the load of other processes land on both.
#
# Usage: benches/versus.sh [NAME=]REGAUTH [NAME=]REGAUTH...
# The first binary is the reference. Every binary serves the same config
# and key, all pinned to CPU 0 (wrk on CPU 1, as in benches/load.sh). For
# each case: BENCH_ROUNDS rounds of BENCH_SLICE seconds per binary, the
# reference first, then the others (in reverse order every other round),
# and one closing reference slice. A binary's ratio in a round is its req/s
# over the mean of the reference slices just before and just after it; its
# figure is the median of those ratios (with their range). req/s, p50 and
# p99 are the medians of its slices; peak RSS is its VmHWM after both
# cases.
# Environment: BENCH_ROUNDS (default 7), BENCH_SLICE (s, default 1),
# BENCH_WARMUP (s, default 1, before each binary's first slice of a case),
# BENCH_CONNECTIONS (default 64), BENCH_PIN (1: pin as above; 0: no
# pinning). Nothing listens or connects beyond 127.0.0.1.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
ROUNDS=${BENCH_ROUNDS:-7}
SLICE=${BENCH_SLICE:-1}
WARMUP=${BENCH_WARMUP:-1}
CONNS=${BENCH_CONNECTIONS:-64}
PIN=${BENCH_PIN:-1}
LUA=$ROOT/benches/wrk/report.lua
SERVICE=registry.example.com
PASSWORD='correct horse battery staple'

die() { echo "versus.sh: $*" >&2; exit 1; }
(($# >= 2)) || die "usage: benches/versus.sh [NAME=]REGAUTH [NAME=]REGAUTH..."
command -v wrk >/dev/null || die "wrk not found: install it with 'apt-get install wrk'"
command -v curl >/dev/null || die "curl not found: apt-get install curl"

LABELS=() BINS=()
for arg in "$@"; do
    if [[ $arg == *=* ]]; then LABELS+=("${arg%%=*}") BINS+=("${arg#*=}"); else LABELS+=("$arg") BINS+=("$arg"); fi
    [[ -x ${BINS[-1]} ]] || die "not an executable: ${BINS[-1]}"
done

if [[ $PIN == 1 && $(nproc) -ge 2 ]]; then
    SERVER_PIN=(taskset -c 0) WRK_PIN=(taskset -c 1) PINNING="servers pinned to CPU 0, wrk to CPU 1"
else
    SERVER_PIN=() WRK_PIN=() PINNING="no CPU pinning"
fi

# shellcheck source=benches/lib.sh
. "$ROOT/benches/lib.sh"

# The same files as benches/load.sh's small-ACL case.
REF=${BINS[0]}
"$REF" keygen --out "$TMP" --alg ES256 >/dev/null
printf 'ci:%s\n' "$(printf '%s' "$PASSWORD" | "$REF" hash --cost 10)" >"$TMP/htpasswd"
CI_AUTH=$(printf 'ci:%s' "$PASSWORD" | base64 -w0)
cat >"$TMP/acl.yml" <<'EOF'
- match: {account: admin}
  actions: ["*"]
- match: {account: "/^(ci|ldapci)$/", name: "team/*"}
  actions: [pull, push]
- match: {account: "/.+/", name: "${account}/*"}
  actions: ["*"]
- match: {name: "public/*"}
  actions: [pull]
EOF
cat >"$TMP/regauth.yml" <<EOF
server: {addr: "127.0.0.1:0"}
token: {issuer: regauth-bench, expiration: 900, key: "$TMP/token.key", certificate: "$TMP/token.pem"}
users: {"": {}}
htpasswd: "$TMP/htpasswd"
acl_file: "$TMP/acl.yml"
EOF
ANON_URL="/auth?service=$SERVICE&scope=repository:public/app:pull"
AUTH_URL="/auth?service=$SERVICE&scope=repository:team/app:pull,push"

# Start every binary (three tries each, on another port each time); the
# first cached request runs bcrypt and fills the cache.
URLS=() SPIDS=()
for i in "${!BINS[@]}"; do
    ok=0
    for _ in 1 2 3; do
        port=$(free_port)
        "${SERVER_PIN[@]}" "${BINS[$i]}" serve --config "$TMP/regauth.yml" --listen "127.0.0.1:$port" 2>/dev/null &
        pid=$!
        PIDS+=("$pid")
        for _ in $(seq 100); do
            curl -sf -o /dev/null "http://127.0.0.1:$port/healthz" && { ok=1; break; }
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        ((ok)) && break
        kill "$pid" 2>/dev/null || true
    done
    ((ok)) || die "${LABELS[$i]} did not start"
    curl -sf -o /dev/null -H "Authorization: Basic $CI_AUTH" "http://127.0.0.1:$port$AUTH_URL" ||
        die "${LABELS[$i]}: the cached user's first request failed"
    URLS+=("http://127.0.0.1:$port") SPIDS+=("$pid")
done

# slice I PATH AUTH WARM: one wrk measurement of binary I; prints "req/s p50 p99".
slice() {
    local url=${URLS[$1]}$2 out line reqs secs p50 p99 non2xx errors
    if (($4 && WARMUP > 0)); then
        BENCH_AUTH=$3 "${WRK_PIN[@]}" wrk -t1 -c"$CONNS" -d"${WARMUP}s" -s "$LUA" "$url" >/dev/null
    fi
    out=$(BENCH_AUTH=$3 "${WRK_PIN[@]}" wrk -t1 -c"$CONNS" -d"${SLICE}s" --timeout 5s -s "$LUA" "$url")
    read -r _ reqs secs p50 p99 non2xx errors < <(grep '^RESULT ' <<<"$out")
    ((non2xx == 0 && errors == 0)) || die "${LABELS[$1]}: $non2xx non-2xx answers, $errors socket errors"
    awk -v r="$reqs" -v s="$secs" -v a="$p50" -v b="$p99" 'BEGIN {printf "%.0f %s %s\n", r / s, a, b}'
}
echo "versus.sh: ${#BINS[@]} binaries, $ROUNDS rounds of ${SLICE}s per binary and case; $PINNING; load average $(cut -d' ' -f1-3 /proc/loadavg)" >&2
N=${#BINS[@]}
declare -A R P5 P9
for c in "anonymous|$ANON_URL|" "htpasswd (cached)|$AUTH_URL|$CI_AUTH"; do
    IFS='|' read -r cname path auth <<<"$c"
    for ((r = 1; r <= ROUNDS; r++)); do
        order=(0)
        for ((k = 1; k < N; k++)); do order+=($((r % 2 ? k : N - k))); done
        for i in "${order[@]}"; do
            read -r rps p50 p99 < <(slice "$i" "$path" "$auth" $((r == 1)))
            R[$cname,$i]+=" $rps" P5[$cname,$i]+=" $p50" P9[$cname,$i]+=" $p99"
        done
    done
    read -r rps p50 p99 < <(slice 0 "$path" "$auth" 0)
    R[$cname,0]+=" $rps" P5[$cname,0]+=" $p50" P9[$cname,0]+=" $p99"
done

echo
echo "versus.sh: wrk -t1 -c$CONNS on loopback; $PINNING; $ROUNDS rounds of ${SLICE}s per binary and case"
echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//') x $(nproc); load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-20s %-18s %9s %9s %9s %17s %10s\n' binary case 'req/s' 'p50 ms' 'p99 ms' 'vs reference' 'peak RSS'
for i in "${!BINS[@]}"; do
    rss=$(awk '/^VmHWM:/ {printf "%.1f MiB", $2 / 1024}' "/proc/${SPIDS[$i]}/status")
    for cname in "anonymous" "htpasswd (cached)"; do
        # shellcheck disable=SC2086 # word splitting of the lists is meant
        read -r rps p50 p99 <<<"$(median ${R[$cname,$i]}) $(median ${P5[$cname,$i]}) $(median ${P9[$cname,$i]})"
        if ((i == 0)); then
            ratio="1.00 (ref)"
        else
            read -r med lo hi _ < <(bracketed "${R[$cname,0]# }" "${R[$cname,$i]# }")
            ratio=$(printf '%.2f (%s-%s)' "$med" "$lo" "$hi")
        fi
        printf '%-20s %-18s %9s %9.2f %9.2f %17s %10s\n' "${LABELS[$i]}" "$cname" "$rps" \
            "$(awk -v x="$p50" 'BEGIN {print x / 1000}')" "$(awk -v x="$p99" 'BEGIN {print x / 1000}')" "$ratio" "$rss"
    done
done
