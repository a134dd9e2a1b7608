#!/usr/bin/env bash
# Load benchmark (`make bench`): regauth (release) under wrk on loopback, next
# to the baseline server (benches/baseline/server.rs: parse the query, sign
# one ES256 token with a key parsed once — the practical ceiling).
#
# Cases, each for BENCH_DURATION seconds after a short warm-up:
#   regauth  anonymous                  no credentials, small ACL
#   regauth  htpasswd (cached)          Basic, bcrypt cost 10, credential cache warm
#   regauth  htpasswd, 10,000-rule ACL  the same against a 10,000-entry ACL
#   regauth  LDAP (cached)              Basic against slapd on loopback, cache warm
#   baseline                            the same query, no auth, no ACL
# and one cold-cache burst: BENCH_BURST clients (default 100) at once, with
# one user's credentials not yet cached: concurrent verifications of the same
# credentials are coalesced, so one bcrypt should serve them all.
# Prints req/s, p50/p99 latency, each regauth figure as a ratio of the
# baseline's, and each regauth process's peak RSS (VmHWM). Exits non-zero
# when any case failed (a non-2xx answer, a socket error, a setup error);
# failed rows say why. Nothing listens or connects beyond 127.0.0.1.
#
# Environment: BENCH_DURATION (s, default 5), BENCH_WARMUP (s, default 1),
# BENCH_CONNECTIONS (default 32), BENCH_PIN (1: server on CPU 0, wrk on
# CPU 1 when there are two or more CPUs; 0: no pinning).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
DURATION=${BENCH_DURATION:-5}
WARMUP=${BENCH_WARMUP:-1}
CONNS=${BENCH_CONNECTIONS:-32}
PIN=${BENCH_PIN:-1}
BURST=${BENCH_BURST:-100}
REGAUTH=$ROOT/target/release/regauth
BASELINE=$ROOT/target/release/examples/baseline
LUA=$ROOT/benches/wrk/report.lua
SERVICE=registry.example.com
PASSWORD='correct horse battery staple'
TEAMS=9997 # the 10,000-rule ACL: admin, team0..team9996, two more rules

die() { echo "load.sh: $*" >&2; exit 1; }
command -v wrk >/dev/null || die "wrk not found: install it with 'apt-get install wrk' (make bench does, as root)"
command -v curl >/dev/null || die "curl not found: apt-get install curl"
[[ -x $REGAUTH && -x $BASELINE ]] || die "build first: cargo build --release --bin regauth --example baseline"

if [[ $PIN == 1 && $(nproc) -ge 2 ]]; then
    SERVER_PIN=(taskset -c 0) WRK_PIN=(taskset -c 1)
    PINNING="server pinned to CPU 0, wrk to CPU 1"
else
    SERVER_PIN=() WRK_PIN=()
    PINNING="no CPU pinning"
fi

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

# A loopback port nothing listens on.
free_port() {
    local port
    while :; do
        port=$((20000 + RANDOM % 40000))
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || { echo "$port"; return; }
    done
}

# wait_http URL: until it answers (10 s at most).
wait_http() {
    local i
    for i in $(seq 100); do
        curl -sf -o /dev/null "$1" && return 0
        sleep 0.1
    done
    return 1
}

# The `access` claim of the token issued for URL (with Basic AUTH when
# given), as JSON text.
granted() {
    local url=$1 auth=${2:-} body payload
    if [[ -n $auth ]]; then
        body=$(curl -sf -H "Authorization: Basic $auth" "$url") || return 1
    else
        body=$(curl -sf "$url") || return 1
    fi
    payload=$(sed -n 's/.*"token":"[^".]*\.\([^".]*\)\..*/\1/p' <<<"$body" | tr '_-' '/+')
    [[ -n $payload ]] || return 1
    while ((${#payload} % 4)); do payload+="="; done
    base64 -d <<<"$payload" | sed -n 's/.*"access":\(\[.*\]\).*/\1/p'
}

peak_rss_kib() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status"; }

# --- Results: one row per case ---
NAMES=() RPS=() P50=() P99=() RSS=() NOTES=()
FAILED=0
row() { NAMES+=("$1") RPS+=("$2") P50+=("$3") P99+=("$4") RSS+=("$5") NOTES+=("$6"); }
fail_row() {
    row "$1" - - - - "FAILED: $2"
    FAILED=1
    echo "load.sh: $1: FAILED: $2" >&2
}

# run_wrk NAME URL AUTH PID: warm up, measure, add a row (RSS of PID).
run_wrk() {
    local name=$1 url=$2 auth=$3 pid=$4 out
    if ((WARMUP > 0)); then
        BENCH_AUTH=$auth "${WRK_PIN[@]}" wrk -t1 -c"$CONNS" -d"${WARMUP}s" -s "$LUA" "$url" >/dev/null ||
            { fail_row "$name" "wrk failed"; return; }
    fi
    out=$(BENCH_AUTH=$auth "${WRK_PIN[@]}" wrk -t1 -c"$CONNS" -d"${DURATION}s" --timeout 5s -s "$LUA" "$url") ||
        { fail_row "$name" "wrk failed"; return; }
    local line
    line=$(grep '^RESULT ' <<<"$out") || { fail_row "$name" "no wrk result"; return; }
    read -r _ reqs secs p50 p99 non2xx errors <<<"$line"
    if ((non2xx > 0 || errors > 0)); then
        fail_row "$name" "$non2xx non-2xx answers, $errors socket errors"
        return
    fi
    local rss=-
    [[ -n $pid ]] && rss=$(peak_rss_kib "$pid")
    row "$name" "$(awk -v r="$reqs" -v s="$secs" 'BEGIN {printf "%.0f", r / s}')" "$p50" "$p99" "$rss" ""
}

# start_regauth CONFIG: starts it pinned, sets REGAUTH_PID and REGAUTH_URL.
start_regauth() {
    local config=$1 port
    port=$(free_port)
    # Audit logging stays at its default (info, one line per request): its
    # cost is part of the figures; the lines go to /dev/null.
    "${SERVER_PIN[@]}" "$REGAUTH" serve --config "$config" --listen "127.0.0.1:$port" 2>/dev/null &
    REGAUTH_PID=$!
    PIDS+=("$REGAUTH_PID")
    REGAUTH_URL="http://127.0.0.1:$port"
    wait_http "$REGAUTH_URL/healthz"
}

stop() {
    kill "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}

# --- Common files: signing key, htpasswd at bcrypt cost 10, ACLs ---
"$REGAUTH" keygen --out "$TMP" --alg ES256 >/dev/null
HASH=$(printf '%s' "$PASSWORD" | "$REGAUTH" hash --cost 10)
printf 'ci:%s\nburst:%s\n' "$HASH" "$HASH" >"$TMP/htpasswd"
CI_AUTH=$(printf 'ci:%s' "$PASSWORD" | base64 -w0)
BURST_AUTH=$(printf 'burst:%s' "$PASSWORD" | base64 -w0)
LDAP_AUTH=$(printf 'ldapci:%s' "$PASSWORD" | base64 -w0)

cat >"$TMP/acl.yml" <<'EOF'
- match: {account: admin}
  actions: ["*"]
  comment: admins
- match: {account: "/^(ci|ldapci)$/", name: "team/*"}
  actions: [pull, push]
  comment: CI pushes the team's images
- match: {account: "/.+/", name: "${account}/*"}
  actions: ["*"]
  comment: personal namespaces
- match: {name: "public/*"}
  actions: [pull]
  comment: anyone pulls public images
EOF
{
    echo '- match: {account: admin}'
    echo '  actions: ["*"]'
    awk -v n="$TEAMS" 'BEGIN {
        for (i = 0; i < n; i++)
            printf "- match: {account: ci, name: \"team%d/*\"}\n  actions: [pull, push]\n", i
    }'
    echo '- match: {account: "/.+/", name: "${account}/*"}'
    echo '  actions: ["*"]'
    echo '- match: {name: "public/*"}'
    echo '  actions: [pull]'
} >"$TMP/acl10k.yml"

# write_config FILE ACL [EXTRA]: a regauth config with anonymous allowed and
# the htpasswd user `ci`.
write_config() {
    cat >"$1" <<EOF
server: {addr: "127.0.0.1:0"}
token: {issuer: regauth-bench, expiration: 900, key: "$TMP/token.key", certificate: "$TMP/token.pem"}
users: {"": {}}
htpasswd: "$TMP/htpasswd"
acl_file: "$2"
${3:-}
EOF
}
write_config "$TMP/regauth.yml" "$TMP/acl.yml"
write_config "$TMP/regauth10k.yml" "$TMP/acl10k.yml"

ANON_URL="/auth?service=$SERVICE&scope=repository:public/app:pull"
AUTH_URL="/auth?service=$SERVICE&scope=repository:team/app:pull,push"
BIG_URL="/auth?service=$SERVICE&scope=repository:team$((TEAMS - 1))/app:pull,push"

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
echo "load.sh: wrk -t1 -c$CONNS -d${DURATION}s per case; $PINNING; load average $LOAD_BEFORE" >&2

# --- regauth: anonymous and htpasswd (cached), small ACL ---
if start_regauth "$TMP/regauth.yml"; then
    pid=$REGAUTH_PID
    if [[ $(granted "$REGAUTH_URL$ANON_URL") == *'"pull"'* ]]; then
        run_wrk "regauth anonymous" "$REGAUTH_URL$ANON_URL" "" "$pid"
    else
        fail_row "regauth anonymous" "no pull granted to anonymous"
    fi
    # The first request verifies bcrypt (~56 ms) and fills the cache.
    if [[ $(granted "$REGAUTH_URL$AUTH_URL" "$CI_AUTH") == *'"push"'* ]]; then
        run_wrk "regauth htpasswd (cached)" "$REGAUTH_URL$AUTH_URL" "$CI_AUTH" "$pid"
    else
        fail_row "regauth htpasswd (cached)" "no push granted to ci"
    fi
    # BURST clients at once for a user whose credentials are not cached yet.
    BURST_RESULT=$(seq "$BURST" | xargs -P "$BURST" -I{} curl -s -o /dev/null \
        -w '%{http_code} %{time_total}\n' -H "Authorization: Basic $BURST_AUTH" "$REGAUTH_URL$AUTH_URL" |
        awk '{n[$1]++; if ($2 > m[$1]) m[$1] = $2} END {for (c in n) printf "%d x %s (slowest %.3f s); ", n[c], c, m[c]}')
    stop "$pid"
else
    fail_row "regauth anonymous" "regauth did not start: $("$REGAUTH" check --config "$TMP/regauth.yml" 2>&1 | tail -1)"
fi

# --- regauth: htpasswd (cached), 10,000-rule ACL, the last team's repository ---
if start_regauth "$TMP/regauth10k.yml"; then
    pid=$REGAUTH_PID
    if [[ $(granted "$REGAUTH_URL$BIG_URL" "$CI_AUTH") == *'"push"'* ]]; then
        run_wrk "regauth htpasswd, 10k-rule ACL" "$REGAUTH_URL$BIG_URL" "$CI_AUTH" "$pid"
    else
        fail_row "regauth htpasswd, 10k-rule ACL" "no push granted to ci"
    fi
    stop "$pid"
else
    fail_row "regauth htpasswd, 10k-rule ACL" "regauth did not start: $("$REGAUTH" check --config "$TMP/regauth10k.yml" 2>&1 | tail -1)"
fi

# --- regauth: LDAP (cached), slapd on loopback ---
ldap_case() {
    local name="regauth LDAP (cached)" slapd port
    slapd=$(command -v slapd || echo /usr/sbin/slapd)
    [[ -x $slapd ]] || { fail_row "$name" "slapd not found: apt-get install slapd ldap-utils"; return; }
    mkdir -p "$TMP/ldap/db"
    cat >"$TMP/ldap/slapd.conf" <<EOF
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
pidfile $TMP/ldap/slapd.pid
argsfile $TMP/ldap/slapd.args
modulepath /usr/lib/ldap
moduleload back_mdb
database mdb
maxsize 10485760
suffix "dc=example,dc=org"
rootdn "cn=admin,dc=example,dc=org"
rootpw adminpw
directory $TMP/ldap/db
index uid eq
access to attrs=userPassword by self read by anonymous auth by * none
access to * by users read by anonymous auth
EOF
    cat >"$TMP/ldap/directory.ldif" <<EOF
dn: dc=example,dc=org
objectClass: dcObject
objectClass: organization
dc: example
o: Example

dn: ou=people,dc=example,dc=org
objectClass: organizationalUnit
ou: people

dn: cn=reader,dc=example,dc=org
objectClass: simpleSecurityObject
objectClass: organizationalRole
cn: reader
userPassword: readerpw

dn: uid=ldapci,ou=people,dc=example,dc=org
objectClass: inetOrgPerson
uid: ldapci
cn: CI
sn: CI
userPassword: $PASSWORD
EOF
    "$(dirname "$slapd")/slapadd" -f "$TMP/ldap/slapd.conf" -l "$TMP/ldap/directory.ldif" 2>"$TMP/ldap/slapadd.log" ||
        { fail_row "$name" "slapadd failed: $(tail -1 "$TMP/ldap/slapadd.log")"; return; }
    port=$(free_port)
    # -d 0: foreground, so the PID is slapd's own; on CPU 1 with wrk, off
    # regauth's CPU (the cached case never reaches it anyway).
    "${WRK_PIN[@]}" "$slapd" -d 0 -h "ldap://127.0.0.1:$port/" -f "$TMP/ldap/slapd.conf" 2>"$TMP/ldap/slapd.log" &
    local slapd_pid=$!
    PIDS+=("$slapd_pid")
    printf 'readerpw' >"$TMP/ldap/bind_password"
    write_config "$TMP/regauth-ldap.yml" "$TMP/acl.yml" "ldap_auth:
  addr: \"127.0.0.1:$port\"
  tls: none
  bind_dn: \"cn=reader,dc=example,dc=org\"
  bind_password_file: \"$TMP/ldap/bind_password\"
  base: \"ou=people,dc=example,dc=org\"
  filter: \"(uid=\${account})\""
    local check
    if ! check=$("$REGAUTH" check --config "$TMP/regauth-ldap.yml" 2>&1); then
        if [[ $check == *ldap_auth* ]]; then
            fail_row "$name" "LDAP backend not available (regauth check: $(tail -1 <<<"$check"))"
        else
            fail_row "$name" "config rejected: $(tail -1 <<<"$check")"
        fi
        return
    fi
    local i
    for i in $(seq 50); do
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
        sleep 0.1
    done
    start_regauth "$TMP/regauth-ldap.yml" || { fail_row "$name" "regauth did not start"; return; }
    local pid=$REGAUTH_PID
    if [[ $(granted "$REGAUTH_URL$AUTH_URL" "$LDAP_AUTH") == *'"push"'* ]]; then
        run_wrk "$name" "$REGAUTH_URL$AUTH_URL" "$LDAP_AUTH" "$pid"
    else
        fail_row "$name" "no push granted to ldapci: LDAP backend not available or not working"
    fi
    stop "$pid"
    stop "$slapd_pid"
}
ldap_case

# --- baseline ---
port=$(free_port)
"${SERVER_PIN[@]}" "$BASELINE" "$TMP/token.key" "127.0.0.1:$port" 2>/dev/null &
pid=$!
PIDS+=("$pid")
if wait_http "http://127.0.0.1:$port/healthz" && granted "http://127.0.0.1:$port$AUTH_URL" >/dev/null; then
    run_wrk "baseline (query + ES256 sign)" "http://127.0.0.1:$port$AUTH_URL" "" "$pid"
else
    fail_row "baseline (query + ES256 sign)" "baseline did not start"
fi
stop "$pid"

# --- Table ---
base_rps=
for i in "${!NAMES[@]}"; do
    [[ ${NAMES[$i]} == baseline* && ${RPS[$i]} != - ]] && base_rps=${RPS[$i]}
done
echo
echo "Load benchmark: wrk -t1 -c$CONNS, ${DURATION}s per case (after ${WARMUP}s warm-up), loopback; $PINNING"
echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//') x $(nproc); load average before: $LOAD_BEFORE, after: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-34s %9s %9s %9s %12s %10s  %s\n' case 'req/s' 'p50 ms' 'p99 ms' 'vs baseline' 'peak RSS' ''
for i in "${!NAMES[@]}"; do
    if [[ ${RPS[$i]} == - ]]; then
        printf '%-34s %9s %9s %9s %12s %10s  %s\n' "${NAMES[$i]}" - - - - - "${NOTES[$i]}"
        continue
    fi
    ratio=-
    [[ -n $base_rps ]] && ratio=$(awk -v a="${RPS[$i]}" -v b="$base_rps" 'BEGIN {printf "%.2f", a / b}')
    printf '%-34s %9s %9.2f %9.2f %12s %9.1fM  %s\n' "${NAMES[$i]}" "${RPS[$i]}" \
        "$(awk -v x="${P50[$i]}" 'BEGIN {print x / 1000}')" "$(awk -v x="${P99[$i]}" 'BEGIN {print x / 1000}')" \
        "$ratio" "$(awk -v k="${RSS[$i]}" 'BEGIN {print k / 1024}')" "${NOTES[$i]}"
done
echo
echo "Cold-cache burst ($BURST clients at once, one user not cached, bcrypt cost 10): ${BURST_RESULT:-not run}"
if ((FAILED)); then
    echo
    echo "load.sh: some cases FAILED (see above)" >&2
    exit 1
fi
