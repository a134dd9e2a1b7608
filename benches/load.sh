#!/usr/bin/env bash
# Load benchmark (`make bench`): regauth (release) under wrk on loopback, next
# to the baseline server (benches/baseline/server.rs: parse the query, sign
# one ES256 token with aws-lc-rs and a key parsed once — the practical ceiling).
#
# Cases, each for BENCH_DURATION seconds after a short warm-up, with
# BENCH_CONNECTIONS (64) connections:
#   regauth  anonymous                  no credentials, small ACL
#   regauth  htpasswd (cached)          Basic, bcrypt cost 10, credential cache warm
#   regauth  htpasswd, 10,000-rule ACL  the same against a 10,000-entry ACL
#   regauth  LDAP (cached)              Basic against slapd on loopback, cache warm
#   regauth  robot (repeat login)       Basic with a robot secret (robots_file):
#                                       SHA-256 per request, no credential cache
#   baseline                            the same query, no auth, no ACL
# one cold-cache burst: BENCH_BURST clients (default 100) at once, with one
# user's credentials not yet cached: concurrent verifications of the same
# credentials are coalesced, so one bcrypt serves them all and every client
# must get 200;
# and the flood, twice: one wrk (benches/wrk/flood.lua, BENCH_FLOOD_CONNECTIONS
# connections) sends wrong passwords for random user names while a second wrk
# (BENCH_FLOOD_USER_CONNECTIONS connections) measures a cached user. regauth
# sits behind a (pretend) proxy there (`real_ip_header: X-Forwarded-For`), so
# the attacker and the user have different client addresses on one loopback.
#   throttle on    the default brute-force throttle: after 30 failures the
#                  attacker's address gets 429 before any bcrypt
#   throttle off   max_failures_per_ip/per_account 0: every flood request
#                  needs a bcrypt verification; the pool's queue fills and
#                  the rest get 503 at once
#
# Prints req/s, p50/p99 latency, each regauth figure as a ratio of the
# baseline's, item 1's ratio in each round, each regauth process's peak
# RSS (VmHWM), the flood figures, the micro-benchmark figures (criterion's
# estimates under target/criterion), and one PASS/FAIL line per item the
# benchmark checks:
#   1. anonymous and cached htpasswd: req/s >= 0.9 x baseline, p99 <= 2 x baseline
#   2. ACL of 10,000 rules <= 2 x the cost of 10 rules per request (micro)
#   3. peak RSS of every regauth process <= 64 MB (64,000,000 bytes)
#   4. under both floods the cached user: every request 2xx, p99 <= 50 ms
# Exits non-zero when any item fails or any case failed (a non-2xx answer,
# a socket error, a setup error, a burst client without 200); failed rows
# say why. Nothing listens or connects beyond 127.0.0.1.
#
# The baseline and the two regauth cases of item 1 run in BENCH_ROUNDS
# interleaved rounds of BENCH_SLICE seconds per case: the baseline, then
# the two cases (in reverse order every other round), and one closing
# baseline slice. A case's ratio in a round is its req/s over the mean of
# the baseline slices just before and just after it, and its "vs baseline"
# figure is the median of those ratios: the machine's speed drifts (on the
# 2-core VMs this was built on, by 10-25 % for seconds at a time), and a
# drift slower than a round cancels out of a bracketed ratio, where it
# would land on one side of a ratio of separate measurements.
# Environment: BENCH_DURATION (s, default 5), BENCH_ROUNDS (default 15),
# BENCH_SLICE (s, default 1),
# BENCH_WARMUP (s, default 1),
# BENCH_CONNECTIONS (default 64), BENCH_BURST (default 100),
# BENCH_FLOOD_CONNECTIONS (default 64), BENCH_FLOOD_USER_CONNECTIONS
# (default 8), BENCH_PIN (1: server on CPU 0, wrk on CPU 1 when there are
# two or more CPUs; 0: no pinning), BENCH_MICRO_SINCE (a file: the
# criterion estimates must be newer than it; `make bench` sets it so that
# item 2 is computed from the same run; unset: whatever estimates exist),
# BENCH_REGAUTH and BENCH_BASELINE (the binaries; default: target/release's,
# set them to measure builds copied aside, e.g. of another release profile).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
DURATION=${BENCH_DURATION:-5}
ROUNDS=${BENCH_ROUNDS:-15}
SLICE=${BENCH_SLICE:-1}
WARMUP=${BENCH_WARMUP:-1}
CONNS=${BENCH_CONNECTIONS:-64}
PIN=${BENCH_PIN:-1}
BURST=${BENCH_BURST:-100}
FLOOD_CONNS=${BENCH_FLOOD_CONNECTIONS:-64}
USER_CONNS=${BENCH_FLOOD_USER_CONNECTIONS:-8}
MICRO_SINCE=${BENCH_MICRO_SINCE:-}
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
REGAUTH=${BENCH_REGAUTH:-$TARGET/release/regauth}
BASELINE=${BENCH_BASELINE:-$TARGET/release/examples/baseline}
CRITERION=$TARGET/criterion
LUA=$ROOT/benches/wrk/report.lua
FLOOD_LUA=$ROOT/benches/wrk/flood.lua
ATTACKER_IP=203.0.113.66 # the flood's client address (X-Forwarded-For)
USER_IP=198.51.100.10    # the cached user's
# The items' thresholds.
MIN_RATIO=0.9 MAX_P99_FACTOR=2 MAX_ACL_FACTOR=2 MAX_RSS_BYTES=64000000 MAX_FLOOD_P99_MS=50
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

# shellcheck source=benches/lib.sh
. "$ROOT/benches/lib.sh"

# wait_http URL [PID]: until it answers (10 s at most; gives up at once if
# process PID has exited).
wait_http() {
    local i
    for i in $(seq 100); do
        curl -sf -o /dev/null "$1" && return 0
        [[ -z ${2:-} ]] || kill -0 "$2" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

# The `access` claim of the token issued for URL (with Basic AUTH and
# X-Forwarded-For FORWARDED when given), as JSON text.
granted() {
    local url=$1 auth=${2:-} forwarded=${3:-} body payload args=()
    [[ -n $auth ]] && args+=(-H "Authorization: Basic $auth")
    [[ -n $forwarded ]] && args+=(-H "X-Forwarded-For: $forwarded")
    body=$(curl -sf "${args[@]}" "$url") || return 1
    payload=$(sed -n 's/.*"token":"[^".]*\.\([^".]*\)\..*/\1/p' <<<"$body" | tr '_-' '/+')
    [[ -n $payload ]] || return 1
    while ((${#payload} % 4)); do payload+="="; done
    base64 -d <<<"$payload" | sed -n 's/.*"access":\(\[.*\]\).*/\1/p'
}

peak_rss_kib() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status"; }

# --- Results: one row per case ---
NAMES=() RPS=() P50=() P99=() RSS=() NOTES=() RATIO=() PER_ROUND=()
FAILED=0
# row NAME REQ/S P50 P99 RSS NOTE [RATIO]: RATIO, the bracketed ratio to the
# baseline (run_rounds); without it the ratio is req/s over the baseline's.
row() { NAMES+=("$1") RPS+=("$2") P50+=("$3") P99+=("$4") RSS+=("$5") NOTES+=("$6") RATIO+=("${7:-}"); }
fail_row() {
    row "$1" - - - - "FAILED: $2"
    FAILED=1
    echo "load.sh: $1: FAILED: $2" >&2
}

# measure URL AUTH WARM [SECONDS]: one wrk measurement (after a warm-up
# when WARM is 1) of SECONDS (default BENCH_DURATION); prints "req/s p50
# p99" (µs), or the reason it failed (and fails).
measure() {
    local url=$1 auth=$2 warm=$3 secs=${4:-$DURATION} out line reqs p50 p99 non2xx errors
    if ((warm && WARMUP > 0)); then
        BENCH_AUTH=$auth "${WRK_PIN[@]}" wrk -t1 -c"$CONNS" -d"${WARMUP}s" -s "$LUA" "$url" >/dev/null ||
            { echo "wrk failed"; return 1; }
    fi
    out=$(BENCH_AUTH=$auth "${WRK_PIN[@]}" wrk -t1 -c"$CONNS" -d"${secs}s" --timeout 5s -s "$LUA" "$url") ||
        { echo "wrk failed"; return 1; }
    line=$(grep '^RESULT ' <<<"$out") || { echo "no wrk result"; return 1; }
    read -r _ reqs secs p50 p99 non2xx errors <<<"$line"
    ((non2xx == 0 && errors == 0)) || { echo "$non2xx non-2xx answers, $errors socket errors"; return 1; }
    awk -v r="$reqs" -v s="$secs" -v a="$p50" -v b="$p99" 'BEGIN {printf "%.0f %s %s\n", r / s, a, b}'
}

# run_wrk NAME URL AUTH PID: warm up, measure, add a row (RSS of PID).
run_wrk() {
    local m rps p50 p99 rss=-
    m=$(measure "$2" "$3" 1) || { fail_row "$1" "$m"; return; }
    read -r rps p50 p99 <<<"$m"
    [[ -n $4 ]] && rss=$(peak_rss_kib "$4")
    row "$1" "$rps" "$p50" "$p99" "$rss" ""
}

# run_rounds BASE "NAME|URL|AUTH|PID"...: BASE is the baseline's spec (same
# form, or empty). ROUNDS rounds of SLICE seconds per case (see the top of
# this file); a warm-up before each one's first slice. One row per case:
# the medians of its slices, and the median of its bracketed ratios.
run_rounds() {
    local base=$1
    shift
    local -A R=() P5=() P9=() BAD=()
    local -a cases=("$@") order
    local r i spec name url auth pid list
    # slice SPEC WARM: one measurement, into R/P5/P9 (or BAD).
    slice() {
        local name url auth pid m rps p50 p99
        IFS='|' read -r name url auth pid <<<"$1"
        [[ -z ${BAD[$name]:-} ]] || return 0
        if m=$(measure "$url" "$auth" "$2" "$SLICE"); then
            read -r rps p50 p99 <<<"$m"
            R[$name]+=" $rps" P5[$name]+=" $p50" P9[$name]+=" $p99"
        else
            BAD[$name]=$m
        fi
    }
    for ((r = 1; r <= ROUNDS; r++)); do
        [[ -z $base ]] || slice "$base" $((r == 1))
        order=()
        for ((i = 0; i < ${#cases[@]}; i++)); do
            order+=("${cases[$((r % 2 ? i : ${#cases[@]} - 1 - i))]}")
        done
        for spec in "${order[@]}"; do slice "$spec" $((r == 1)); done
    done
    [[ -z $base ]] || slice "$base" 0
    local base_name="" base_list=""
    if [[ -n $base ]]; then
        IFS='|' read -r base_name _ _ pid <<<"$base"
        base_list=${R[$base_name]:-}
    fi
    for spec in ${base:+"$base"} "${cases[@]}"; do
        IFS='|' read -r name url auth pid <<<"$spec"
        if [[ -n ${BAD[$name]:-} ]]; then
            fail_row "$name" "${BAD[$name]}"
            continue
        fi
        list=${R[$name]# }
        local med="" note
        note="median of $(wc -w <<<"$list") slices of ${SLICE}s"
        if [[ $name != "$base_name" && -n $base_list && -z ${BAD[$base_name]:-} ]]; then
            local lo hi n
            read -r med lo hi n < <(bracketed "$base_list" "$list")
            note+="; ratio to the baseline around it: median of $n, range $lo-$hi"
            PER_ROUND+=("$(printf '%-34s' "$name"; ratios "$base_list" "$list" | awk '{printf " %.2f", $1}')")
        fi
        # shellcheck disable=SC2086 # word splitting of the lists is meant
        row "$name" "$(median ${R[$name]})" "$(median ${P5[$name]})" "$(median ${P9[$name]})" \
            "$(peak_rss_kib "$pid")" "$note" "$med"
    done
}

# start_regauth CONFIG: starts it pinned, sets REGAUTH_PID and REGAUTH_URL
# (three tries, on another port each time).
start_regauth() {
    local config=$1 port
    for _ in 1 2 3; do
        port=$(free_port)
        # Audit logging stays at its default (info, one line per request):
        # its cost is part of the figures; the lines go to /dev/null.
        "${SERVER_PIN[@]}" "$REGAUTH" serve --config "$config" --listen "127.0.0.1:$port" 2>/dev/null &
        REGAUTH_PID=$!
        PIDS+=("$REGAUTH_PID")
        REGAUTH_URL="http://127.0.0.1:$port"
        wait_http "$REGAUTH_URL/healthz" "$REGAUTH_PID" && return 0
        stop "$REGAUTH_PID"
    done
    return 1
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

# write_config FILE ACL [EXTRA] [SERVER_EXTRA]: a regauth config with
# anonymous allowed and the htpasswd user `ci`; EXTRA is appended, and
# SERVER_EXTRA goes into the `server` map.
write_config() {
    cat >"$1" <<EOF
server: {addr: "127.0.0.1:0"${4:+, $4}}
token: {issuer: regauth-bench, expiration: 900, key: "$TMP/token.key", certificate: "$TMP/token.pem"}
users: {"": {}}
htpasswd: "$TMP/htpasswd"
acl_file: "$2"
${3:-}
EOF
}
write_config "$TMP/regauth.yml" "$TMP/acl.yml"
# The robot case: one robot whose scopes allow its own namespace (the ACL's
# personal namespaces grant it), its secret from `regauth robot add`.
ROBOT_SECRET=$("$REGAUTH" robot add --file "$TMP/robots.yaml" --name robot-ci \
    --scope 'repository:robot-ci/*:push,pull' --expires 1d 2>/dev/null)
ROBOT_AUTH=$(printf 'robot-ci:%s' "$ROBOT_SECRET" | base64 -w0)
write_config "$TMP/regauth-robot.yml" "$TMP/acl.yml" "robots_file: \"$TMP/robots.yaml\""
ROBOT_URL="/auth?service=$SERVICE&scope=repository:robot-ci/app:pull,push"
write_config "$TMP/regauth10k.yml" "$TMP/acl10k.yml"
# The flood: behind a proxy that reports the client address (so that the
# attacker and the user differ on loopback), throttle at its defaults (on)
# or off.
PROXIED='real_ip_header: X-Forwarded-For, real_ip_pos: -1'
write_config "$TMP/regauth-flood-on.yml" "$TMP/acl.yml" "" "$PROXIED"
write_config "$TMP/regauth-flood-off.yml" "$TMP/acl.yml" \
    'throttle: {max_failures_per_ip: 0, max_failures_per_account: 0}' "$PROXIED"

ANON_URL="/auth?service=$SERVICE&scope=repository:public/app:pull"
AUTH_URL="/auth?service=$SERVICE&scope=repository:team/app:pull,push"
BIG_URL="/auth?service=$SERVICE&scope=repository:team$((TEAMS - 1))/app:pull,push"

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
echo "load.sh: wrk -t1 -c$CONNS; item 1 in $ROUNDS rounds of ${SLICE}s, other cases ${DURATION}s; $PINNING; load average $LOAD_BEFORE" >&2

# --- Item 1: baseline, regauth anonymous and htpasswd (cached), small ACL,
# measured in interleaved rounds ---
BASE_PID="" BASE_URL=""
for _ in 1 2 3; do
    port=$(free_port)
    "${SERVER_PIN[@]}" "$BASELINE" "$TMP/token.key" "127.0.0.1:$port" 2>/dev/null &
    pid=$!
    PIDS+=("$pid")
    if wait_http "http://127.0.0.1:$port/healthz" "$pid" && granted "http://127.0.0.1:$port$AUTH_URL" >/dev/null; then
        BASE_PID=$pid BASE_URL="http://127.0.0.1:$port"
        break
    fi
    stop "$pid"
done
BASE_NAME="baseline (query + ES256 sign)"
if start_regauth "$TMP/regauth.yml"; then
    pid=$REGAUTH_PID
    specs=()
    if [[ $(granted "$REGAUTH_URL$ANON_URL") == *'"pull"'* ]]; then
        specs+=("regauth anonymous|$REGAUTH_URL$ANON_URL||$pid")
    else
        fail_row "regauth anonymous" "no pull granted to anonymous"
    fi
    # The first request verifies bcrypt (~56 ms) and fills the cache.
    if [[ $(granted "$REGAUTH_URL$AUTH_URL" "$CI_AUTH") == *'"push"'* ]]; then
        specs+=("regauth htpasswd (cached)|$REGAUTH_URL$AUTH_URL|$CI_AUTH|$pid")
    else
        fail_row "regauth htpasswd (cached)" "no push granted to ci"
    fi
    base_spec=""
    if [[ -n $BASE_PID ]]; then
        base_spec="$BASE_NAME|$BASE_URL$AUTH_URL||$BASE_PID"
    else
        fail_row "$BASE_NAME" "baseline did not start"
    fi
    ((${#specs[@]} == 0)) || run_rounds "$base_spec" "${specs[@]}"
    # BURST clients at once (on wrk's CPU) for a user whose credentials are
    # not cached yet: coalesced, one bcrypt, every client must get 200.
    "${WRK_PIN[@]}" bash -c 'seq "$1" | xargs -P "$1" -I{} curl -s -o /dev/null \
        -w "%{http_code} %{time_total}\n" -H "Authorization: Basic $2" "$3"' _ \
        "$BURST" "$BURST_AUTH" "$REGAUTH_URL$AUTH_URL" >"$TMP/burst.out" || true
    BURST_RESULT=$(sort "$TMP/burst.out" |
        awk '{n[$1]++; if ($2 > m[$1]) m[$1] = $2} END {for (c in n) printf "%d x %s (slowest %.3f s); ", n[c], c, m[c]}')
    BURST_RESULT=${BURST_RESULT%; }
    BURST_OK=$(awk -v want="$BURST" '$1 == 200 {ok++} END {print (ok == want && NR == want) ? 1 : 0}' "$TMP/burst.out")
    if [[ $BURST_OK != 1 ]]; then
        FAILED=1
        echo "load.sh: cold-cache burst: FAILED: not every client got 200: $BURST_RESULT" >&2
    fi
    stop "$pid"
else
    fail_row "regauth anonymous" "regauth did not start: $("$REGAUTH" check --config "$TMP/regauth.yml" 2>&1 | tail -1)"
    if [[ -n $BASE_PID ]]; then
        run_wrk "$BASE_NAME" "$BASE_URL$AUTH_URL" "" "$BASE_PID"
    else
        fail_row "$BASE_NAME" "baseline did not start"
    fi
fi
[[ -z $BASE_PID ]] || stop "$BASE_PID"

# single_case NAME CONFIG URL AUTH WHO: one case on a regauth of its own,
# after checking that AUTH (the credentials of WHO) is granted push.
single_case() {
    local name=$1 config=$2 url=$3 auth=$4 who=$5 pid
    if ! start_regauth "$config"; then
        fail_row "$name" "regauth did not start: $("$REGAUTH" check --config "$config" 2>&1 | tail -1)"
        return
    fi
    pid=$REGAUTH_PID
    if [[ $(granted "$REGAUTH_URL$url" "$auth") == *'"push"'* ]]; then
        run_wrk "$name" "$REGAUTH_URL$url" "$auth" "$pid"
    else
        fail_row "$name" "no push granted to $who"
    fi
    stop "$pid"
}

# --- regauth: htpasswd (cached), 10,000-rule ACL, the last team's repository ---
single_case "regauth htpasswd, 10k-rule ACL" "$TMP/regauth10k.yml" "$BIG_URL" "$CI_AUTH" ci

# --- regauth: a robot, logging in again and again ---
single_case "regauth robot (repeat login)" "$TMP/regauth-robot.yml" "$ROBOT_URL" "$ROBOT_AUTH" robot-ci

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
    single_case "$name" "$TMP/regauth-ldap.yml" "$AUTH_URL" "$LDAP_AUTH" \
        "ldapci: LDAP backend not available or not working"
    stop "$slapd_pid"
}
ldap_case

# --- The flood: wrong passwords for random users next to a cached user ---
# flood_case VARIANT CONFIG: sets FLOOD_<field>[VARIANT].
declare -A FL_RPS FL_401 FL_429 FL_503 FL_OTHER FL_ERR US_RPS US_OK US_P50 US_P99 US_N US_BAD FL_RSS FL_NOTE
FLOOD_VARIANTS=()
flood_case() {
    local v=$1 config=$2 pid fl_pid out line
    FLOOD_VARIANTS+=("$v")
    FL_NOTE[$v]=""
    start_regauth "$config" || { FL_NOTE[$v]="regauth did not start"; FAILED=1; return; }
    pid=$REGAUTH_PID
    # The user's first request verifies bcrypt and fills the cache.
    if [[ $(granted "$REGAUTH_URL$AUTH_URL" "$CI_AUTH" "$USER_IP") != *'"push"'* ]]; then
        FL_NOTE[$v]="no push granted to ci"; FAILED=1; stop "$pid"; return
    fi
    # The flood outlasts the user's measurement, and lasts at least 7 s: with
    # the throttle on, the attacker's first 30 failures take about 4 s of
    # bcrypt (which shares the server's core with everything else).
    local flood_secs=$((DURATION + 2 > 7 ? DURATION + 2 : 7))
    BENCH_FORWARDED_FOR=$ATTACKER_IP "${WRK_PIN[@]}" wrk -t1 -c"$FLOOD_CONNS" -d"${flood_secs}s" \
        --timeout 5s -s "$FLOOD_LUA" "$REGAUTH_URL$AUTH_URL" >"$TMP/flood-$v.out" 2>&1 &
    fl_pid=$!
    PIDS+=("$fl_pid")
    # The user's measurement starts once the flood runs (half a second in:
    # with the throttle on, the attacker's first 30 failures, ~2 s of
    # bcrypt, fall inside it) and ends before the flood does.
    sleep 0.5
    out=$(BENCH_AUTH=$CI_AUTH BENCH_FORWARDED_FOR=$USER_IP "${WRK_PIN[@]}" wrk -t1 -c"$USER_CONNS" \
        -d"${DURATION}s" --timeout 5s -s "$LUA" "$REGAUTH_URL$AUTH_URL") || out=""
    wait "$fl_pid" || true
    FL_RSS[$v]=$(peak_rss_kib "$pid")
    stop "$pid"
    line=$(grep '^FLOOD ' "$TMP/flood-$v.out") || { FL_NOTE[$v]="no flood result"; FAILED=1; return; }
    local reqs secs c401 c429 c503 cother errs
    read -r _ reqs secs c401 c429 c503 cother errs _ _ <<<"$line"
    FL_RPS[$v]=$(awk -v r="$reqs" -v s="$secs" 'BEGIN {printf "%.0f", r / s}')
    FL_401[$v]=$c401 FL_429[$v]=$c429 FL_503[$v]=$c503 FL_OTHER[$v]=$cother FL_ERR[$v]=$errs
    # The scenario must be the one described: with the throttle on, the
    # attacker ends up refused (429); with it off, never, and the pool fills.
    if [[ $v == "throttle on" ]] && ((c429 == 0)); then
        FL_NOTE[$v]="FAILED: no 429, the throttle never engaged"; FAILED=1
    elif [[ $v == "throttle off" ]] && ((c429 > 0 || c503 == 0)); then
        FL_NOTE[$v]="FAILED: expected no 429 and some 503 (full bcrypt queue)"; FAILED=1
    fi
    line=$(grep '^RESULT ' <<<"$out") || { FL_NOTE[$v]="no wrk result for the cached user"; FAILED=1; return; }
    local p50 p99 non2xx
    read -r _ reqs secs p50 p99 non2xx errs <<<"$line"
    US_N[$v]=$((reqs + errs)) US_BAD[$v]=$((non2xx + errs))
    US_RPS[$v]=$(awk -v r="$reqs" -v s="$secs" 'BEGIN {printf "%.0f", r / s}')
    US_OK[$v]=$(awk -v n=$((reqs + errs)) -v ok=$((reqs - non2xx)) 'BEGIN {printf "%.2f", n ? 100 * ok / n : 0}')
    US_P50[$v]=$p50 US_P99[$v]=$p99
}
flood_case "throttle on" "$TMP/regauth-flood-on.yml"
flood_case "throttle off" "$TMP/regauth-flood-off.yml"

# --- Tables ---
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
ms() { awk -v x="$1" 'BEGIN {printf "%.2f", x / 1000}'; }
base_rps="" base_p99=""
for i in "${!NAMES[@]}"; do
    [[ ${NAMES[$i]} == baseline* && ${RPS[$i]} != - ]] && base_rps=${RPS[$i]} base_p99=${P99[$i]}
done
echo
echo "Load benchmark: wrk -t1 -c$CONNS on loopback; $PINNING; the first three cases in $ROUNDS interleaved"
echo "rounds of ${SLICE}s per case, the others ${DURATION}s each (all after a ${WARMUP}s warm-up)"
echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//') x $(nproc); load average before: $LOAD_BEFORE, after: $LOAD_AFTER"
printf '%-34s %9s %9s %9s %12s %10s  %s\n' case 'req/s' 'p50 ms' 'p99 ms' 'vs baseline' 'peak RSS' ''
for i in "${!NAMES[@]}"; do
    if [[ ${RPS[$i]} == - ]]; then
        printf '%-34s %9s %9s %9s %12s %10s  %s\n' "${NAMES[$i]}" - - - - - "${NOTES[$i]}"
        continue
    fi
    ratio=-
    if [[ -n ${RATIO[$i]} ]]; then
        ratio=$(awk -v r="${RATIO[$i]}" 'BEGIN {printf "%.2f", r}')
    elif [[ -n $base_rps ]]; then
        ratio=$(awk -v a="${RPS[$i]}" -v b="$base_rps" 'BEGIN {printf "%.2f", a / b}')
    fi
    printf '%-34s %9s %9s %9s %12s %7.1f MiB  %s\n' "${NAMES[$i]}" "${RPS[$i]}" \
        "$(ms "${P50[$i]}")" "$(ms "${P99[$i]}")" "$ratio" "$(awk -v k="${RSS[$i]}" 'BEGIN {print k / 1024}')" "${NOTES[$i]}"
done
if ((${#PER_ROUND[@]})); then
    echo
    echo "Item 1, each round's ratio (req/s over the mean of the baseline slices before and after it), in round order:"
    printf '%s\n' "${PER_ROUND[@]}"
fi
echo
echo "Cold-cache burst ($BURST clients at once, one user not cached, bcrypt cost 10): ${BURST_RESULT:-not run}"

echo
echo "Flood: wrk -t1 -c$FLOOD_CONNS sends wrong passwords for random users (X-Forwarded-For $ATTACKER_IP) while"
echo "wrk -t1 -c$USER_CONNS measures the cached user ci (X-Forwarded-For $USER_IP) for ${DURATION}s"
printf '%-13s %11s %8s %8s %8s %6s | %10s %9s %8s %8s %10s  %s\n' variant 'flood req/s' 401 429 503 other \
    'user req/s' 'user 2xx' 'p50 ms' 'p99 ms' 'peak RSS' ''
for v in "${FLOOD_VARIANTS[@]}"; do
    if [[ -z ${US_P99[$v]:-} ]]; then
        printf '%-13s %s\n' "$v" "FAILED: ${FL_NOTE[$v]}"
        continue
    fi
    printf '%-13s %11s %8s %8s %8s %6s | %10s %8s%% %8s %8s %6.1f MiB  %s\n' "$v" "${FL_RPS[$v]}" \
        "${FL_401[$v]}" "${FL_429[$v]}" "${FL_503[$v]}" "$(( ${FL_OTHER[$v]} + ${FL_ERR[$v]} ))" \
        "${US_RPS[$v]}" "${US_OK[$v]}" "$(ms "${US_P50[$v]}")" "$(ms "${US_P99[$v]}")" \
        "$(awk -v k="${FL_RSS[$v]}" 'BEGIN {print k / 1024}')" "${FL_NOTE[$v]}"
done

# --- Micro-benchmark figures (criterion medians, ns) ---
# median_ns PATH: criterion's median for target/criterion/PATH, empty when
# missing (or older than BENCH_MICRO_SINCE).
median_ns() {
    local f=$CRITERION/$1/new/estimates.json
    [[ -f $f ]] || return 0
    [[ -z $MICRO_SINCE || $f -nt $MICRO_SINCE ]] || return 0
    sed -n 's/.*"median":{"confidence_interval":{[^}]*},"point_estimate":\([0-9.eE+-]*\).*/\1/p' "$f"
}
human() {
    awk -v x="$1" 'BEGIN {
        if (x == "") print "-"
        else if (x < 1e3) printf "%.0f ns", x
        else if (x < 1e6) printf "%.1f µs", x / 1e3
        else printf "%.2f ms", x / 1e6 }'
}
echo
if [[ -n $MICRO_SINCE ]]; then
    echo "Micro-benchmarks (criterion medians of this run):"
else
    echo "Micro-benchmarks (criterion medians from the last 'cargo bench --bench micro', if any):"
fi
ACL_WORST="" ACL_MISSING=0
for b in acl/indexed_last_team:10:10000 acl/indexed_no_match:10:10000 \
    issue_token/anonymous:acl10:acl10000 issue_token/htpasswd_cached:acl10:acl10000; do
    IFS=: read -r path small big <<<"$b"
    a=$(median_ns "$path/$small") z=$(median_ns "$path/$big")
    if [[ -z $a || -z $z ]]; then
        ACL_MISSING=1
        printf '  %-30s %s\n' "$path" "no estimates"
        continue
    fi
    r=$(awk -v a="$a" -v z="$z" 'BEGIN {printf "%.2f", z / a}')
    ACL_WORST=$(awk -v r="$r" -v w="${ACL_WORST:-0}" 'BEGIN {print (r > w) ? r : w}')
    printf '  %-30s %10s at %-5s %10s at %-8s ratio %s\n' "$path" "$(human "$a")" "$small" "$(human "$z")" "$big" "$r"
done
line="  sign (key parsed once):"
for alg in ES256 ES384 ES512 EdDSA RS256; do
    line+=" $alg $(human "$(median_ns "sign/parsed_key/$alg")");"
done
echo "${line%;}"
echo "  sign, ring alone: ES256 $(human "$(median_ns sign/ring_parsed_key/ES256)"); RS256 $(human "$(median_ns sign/ring_parsed_key/RS256)");" \
    "jsonwebtoken::encode: ES256 $(human "$(median_ns sign/jsonwebtoken_encode/ES256)"); RS256 $(human "$(median_ns sign/jsonwebtoken_encode/RS256)")"
echo "  authn: cache hit $(human "$(median_ns authn/cache_hit)"); robot verify $(human "$(median_ns authn/robot_verify)"); bcrypt cost 10 $(human "$(median_ns authn/bcrypt_cost10_verify)")"
echo "  login, whole request in process: htpasswd (cached) $(human "$(median_ns http/htpasswd_cached)");" \
    "federated ID token, ES256, keys cached $(human "$(median_ns http/federated_cached_keys)");" \
    "anonymous $(human "$(median_ns http/anonymous)")"

# --- the four items ---
VERDICT_FAIL=0
verdict() { # ITEM OK TEXT
    local word=PASS
    [[ $2 == 1 ]] || { word=FAIL; VERDICT_FAIL=1; }
    printf 'Must-show %s: %s  %s\n' "$1" "$word" "$3"
}
echo
# 1. anonymous and cached: req/s >= 0.9 x baseline, p99 <= 2 x baseline.
ok=1 text=""
for want in "regauth anonymous" "regauth htpasswd (cached)"; do
    found=0
    for i in "${!NAMES[@]}"; do
        [[ ${NAMES[$i]} == "$want" && ${RPS[$i]} != - ]] || continue
        found=1
        if [[ -z $base_rps ]]; then ok=0; text+="$want: no baseline; "; continue; fi
        # The bracketed ratio when the case ran in rounds with the baseline.
        read -r r f good < <(awk -v a="${RPS[$i]}" -v b="$base_rps" -v p="${P99[$i]}" -v q="$base_p99" \
            -v br="${RATIO[$i]}" -v mr="$MIN_RATIO" -v mf="$MAX_P99_FACTOR" \
            'BEGIN {r = (br != "") ? br : a / b; f = p / q; printf "%.2f %.2f %d\n", r, f, (r >= mr && f <= mf)}')
        ((good)) || ok=0
        text+="$want: ${RPS[$i]} req/s = $r x baseline (>= $MIN_RATIO), p99 $(ms "${P99[$i]}") ms = $f x baseline's $(ms "$base_p99") ms (<= $MAX_P99_FACTOR); "
    done
    ((found)) || { ok=0; text+="$want: not measured; "; }
done
verdict 1 "$ok" "${text%; }"
# 2. ACL of 10,000 rules vs 10 rules, per request (micro-benchmarks).
if [[ -z $ACL_WORST || $ACL_MISSING == 1 ]]; then
    verdict 2 0 "no micro-benchmark estimates$([[ -n $MICRO_SINCE ]] && echo " from this run") under $CRITERION (run: cargo bench --bench micro)"
else
    ok=$(awk -v w="$ACL_WORST" -v m="$MAX_ACL_FACTOR" 'BEGIN {print (w <= m) ? 1 : 0}')
    verdict 2 "$ok" "10,000-rule ACL costs at most $ACL_WORST x the 10-rule ACL per request (<= $MAX_ACL_FACTOR; ACL evaluation and the whole issue_token, above)"
fi
# 3. Peak RSS of every regauth process (the main cases ran with $CONNS connections).
max_kib=0 max_case="" n=0
for i in "${!NAMES[@]}"; do
    [[ ${NAMES[$i]} == regauth* && ${RSS[$i]} != - ]] || continue
    n=$((n + 1))
    ((RSS[i] > max_kib)) && max_kib=${RSS[$i]} max_case=${NAMES[$i]}
done
for v in "${FLOOD_VARIANTS[@]}"; do
    [[ -n ${FL_RSS[$v]:-} ]] || continue
    n=$((n + 1))
    k=${FL_RSS[$v]}
    ((k > max_kib)) && max_kib=$k max_case="flood, $v"
done
if ((n == 0)); then
    verdict 3 0 "no regauth process measured"
else
    verdict 3 "$(((max_kib * 1024 <= MAX_RSS_BYTES) ? 1 : 0))" \
        "peak RSS (VmHWM) of regauth with $CONNS connections, highest of $n processes: $(awk -v k="$max_kib" 'BEGIN {printf "%.1f MiB (%.1f MB)", k / 1024, k * 1024 / 1e6}') in \"$max_case\" (<= 64 MB)"
fi
# 4. The cached user under both floods: all 2xx, p99 <= 50 ms.
ok=1 text=""
for v in "${FLOOD_VARIANTS[@]}"; do
    if [[ -z ${US_P99[$v]:-} ]]; then ok=0; text+="$v: not measured (${FL_NOTE[$v]}); "; continue; fi
    good=$(awk -v p="${US_P99[$v]}" -v bad="${US_BAD[$v]}" -v m="$MAX_FLOOD_P99_MS" 'BEGIN {print (bad == 0 && p <= m * 1000) ? 1 : 0}')
    ((good)) || ok=0
    text+="$v: ${US_OK[$v]}% of ${US_N[$v]} succeeded, p99 $(ms "${US_P99[$v]}") ms; "
done
((${#FLOOD_VARIANTS[@]})) || { ok=0; text="not run"; }
verdict 4 "$ok" "cached user under the flood (all 2xx, p99 <= $MAX_FLOOD_P99_MS ms): ${text%; }"

if ((FAILED || VERDICT_FAIL)); then
    echo
    ((FAILED)) && echo "load.sh: some cases FAILED (see above)" >&2
    ((VERDICT_FAIL)) && echo "load.sh: some Must-show items FAILED" >&2
    exit 1
fi
