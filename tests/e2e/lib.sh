# shellcheck shell=bash
# lib.sh — helpers for the end-to-end suite: the test runner, background
# processes, ports, readiness polling, client wrappers and assertions.
#
# Sourced by run.sh (inner part, inside the private namespaces). Expects
# E2E_TMP (the run's temp dir) and REGAUTH (the binary) in the environment.

# ---------------------------------------------------------------- results ---

E2E_PASSED=0
E2E_FAILED=0
E2E_FAILED_NAMES=()
E2E_LOGS="$E2E_TMP/logs"
mkdir -p "$E2E_LOGS"

# run_test NAME FUNC [ARGS...]
# Runs FUNC in a subshell with errexit on; its stdout+stderr go to
# $E2E_LOGS/<NAME>.log. Prints exactly one line: "PASS NAME" or
# "FAIL NAME: reason". The reason is what the test passed to `fail`, or else
# the last line of its log. Never aborts the suite.
run_test() {
	local name=$1 fn=$2
	shift 2
	local log="$E2E_LOGS/${name//\//_}.log" rc
	E2E_REASON_FILE="$log.reason"
	export E2E_REASON_FILE
	rm -f "$E2E_REASON_FILE"
	local t0=$SECONDS
	# Audit lines written from now on belong to this test (expect_granted).
	E2E_TEST_START=$(date -u +%Y-%m-%dT%H:%M:%S.%6NZ)
	export E2E_TEST_START
	set +e
	(
		set -euo pipefail
		"$fn" "$@"
	) >"$log" 2>&1
	rc=$?
	set -e
	if [[ $rc -eq 0 ]]; then
		E2E_PASSED=$((E2E_PASSED + 1))
		printf 'PASS %s\n' "$name"
	else
		local reason
		if [[ -s "$E2E_REASON_FILE" ]]; then
			reason=$(head -c 600 "$E2E_REASON_FILE")
		else
			reason="exit $rc; last log line: $(tail -n 1 "$log" | head -c 400)"
		fi
		E2E_FAILED=$((E2E_FAILED + 1))
		E2E_FAILED_NAMES+=("$name")
		printf 'FAIL %s: %s\n' "$name" "${reason//$'\n'/ | }"
		printf '     log: %s\n' "$log"
	fi
	if ((SECONDS - t0 > 20)); then
		printf '     (slow: %ss)\n' "$((SECONDS - t0))"
	fi
}

# run_scenarios NAME UP_STATUS SCENARIO... — after a setup's startup
# (UP_STATUS 0 = it came up): one PASS/FAIL line for NAME/startup, then each
# "test:function" scenario (only those matching $E2E_ONLY, if set), or, when
# the setup failed, a FAIL "not run" line for each so nothing is skipped
# silently.
run_scenarios() {
	local name=$1 up=$2 entry test fn
	shift 2
	if [[ $up -eq 0 ]]; then
		printf 'PASS %s/startup\n' "$name"
		E2E_PASSED=$((E2E_PASSED + 1))
		for entry in "$@"; do
			test=${entry%%:*} fn=${entry#*:}
			if [[ -n "${E2E_ONLY:-}" && ! "$name/$test" =~ $E2E_ONLY ]]; then
				continue
			fi
			run_test "$name/$test" "$fn"
		done
	else
		record_fail "$name/startup" "$SETUP_ERR"
		for entry in "$@"; do
			record_fail "$name/${entry%%:*}" "not run: $name/startup failed"
		done
	fi
}

# expect_granted LOG ACCOUNT GRANT... — regauth's audit log LOG holds, since
# the current test began, a token issued to ACCOUNT ("" = anonymous) whose
# grants include each GRANT, written as the audit line spells it:
# "repository:alice/app:[pull,push]" or "repository:alice/app:[]" (denied).
# This checks what regauth decided, next to what the client saw.
expect_granted() {
	local log=$1 account=$2 grant
	shift 2
	for grant in "$@"; do
		eventually granted_since "$log" "$account" "$grant" ||
			fail "regauth audit: no token for account=\"$account\" granting $grant since $E2E_TEST_START (in $log)"
	done
	note "regauth granted account=\"$account\": $*"
}

# granted_since LOG ACCOUNT GRANT — one check of expect_granted.
granted_since() {
	awk -v s="$E2E_TEST_START" '$1 >= s' "$1" |
		line_with_all 'regauth::audit' 'outcome="issued"' " account=\"$2\" " "\"$3 by "
}

# eventually CMD... — runs CMD until it succeeds, every 0.05 s for up to
# 10 s (see log_has).
eventually() {
	local deadline=$((SECONDS + 10))
	until "$@"; do
		((SECONDS < deadline)) || return 1
		sleep 0.05
	done
}

# record_fail NAME REASON — count a test that could not run at all.
record_fail() {
	E2E_FAILED=$((E2E_FAILED + 1))
	E2E_FAILED_NAMES+=("$1")
	printf 'FAIL %s: %s\n' "$1" "$2"
}

# fail REASON — inside a test: record the reason and end the test.
fail() {
	printf '%s\n' "$*" >"$E2E_REASON_FILE"
	printf 'FAILED: %s\n' "$*" >&2
	exit 1
}

# note MSG — a line in the test's log (not on the console).
note() {
	printf '>>> %s\n' "$*" >&2
}

# --------------------------------------------------------------- processes ---

E2E_PIDS=()

# start_bg LOGFILE CMD [ARGS...] — start CMD in the background, logging to
# LOGFILE; its PID is remembered for cleanup and left in BG_PID.
start_bg() {
	local logfile=$1
	shift
	"$@" >"$logfile" 2>&1 </dev/null &
	BG_PID=$!
	E2E_PIDS+=("$BG_PID")
	printf '%s %s\n' "$BG_PID" "$1" >>"$E2E_TMP/pids"
}

# stop_pid PID — TERM, wait up to 5 s, then KILL. Only ever our own PIDs.
stop_pid() {
	local pid=$1 i
	kill -0 "$pid" 2>/dev/null || return 0
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < 50; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		kill -KILL "$pid" 2>/dev/null || true
	fi
	wait "$pid" 2>/dev/null || true
}

# stop_vars NAME... — stop_pid the PID each named variable holds (if any),
# in order, then empty the variable.
stop_vars() {
	local v
	for v in "$@"; do
		[[ -n "${!v:-}" ]] && stop_pid "${!v}"
		printf -v "$v" '%s' ''
	done
}

# stop_all — stop every process start_bg started (used by the EXIT trap).
stop_all() {
	local pid
	for pid in "${E2E_PIDS[@]}"; do
		stop_pid "$pid"
	done
	E2E_PIDS=()
}

# ----------------------------------------------------------------- regauth ---

# Log level (RUST_LOG) of every regauth server the suite starts: debug, so
# that secrets.sh checks the most talkative logs regauth can write.
E2E_REGAUTH_LOG_LEVEL=${E2E_REGAUTH_LOG_LEVEL:-debug}
# One line per regauth server started: "PID<TAB>LOGFILE" (read by secrets.sh).
E2E_REGAUTH_LOGS="$E2E_TMP/regauth-logs.list"
# Secrets the suite sent to or got from regauth, one per line (secrets.sh).
E2E_SECRETS="$E2E_TMP/secrets.list"
: >>"$E2E_REGAUTH_LOGS"
: >>"$E2E_SECRETS"
# A password sent (Basic) with each start_regauth readiness probe.
E2E_CANARY_PW="e2e-canary-Pw9"

# record_secret VALUE... — remember values that must never appear in a
# regauth log (passwords, tokens, Basic credentials). Works from subshells.
record_secret() {
	local s
	for s in "$@"; do
		[[ -n "$s" ]] && printf '%s\n' "$s" >>"$E2E_SECRETS"
	done
	return 0
}

# start_regauth LOGFILE CONFIG BASE_URL — start `regauth serve --config
# CONFIG` at log level $E2E_REGAUTH_LOG_LEVEL (PID in BG_PID), wait until
# BASE_URL/healthz answers 200, then send one HTTP/2 (h2c) request with
# Basic credentials: at debug level the HTTP/2 layer logs its frames, so the
# log shows DEBUG lines exactly when debug logging is on (regauth itself
# logs nothing at debug on the token path). Fails if regauth never gets healthy.
start_regauth() {
	local logfile=$1 config=$2 base=$3 pid
	start_bg "$logfile" env NO_COLOR=1 RUST_LOG="$E2E_REGAUTH_LOG_LEVEL" "$REGAUTH" serve --config "$config"
	pid=$BG_PID
	printf '%s\t%s\n' "$pid" "$logfile" >>"$E2E_REGAUTH_LOGS"
	wait_http "$base/healthz" 200 "$pid" 20 || return 1
	record_secret "$E2E_CANARY_PW" "$(printf 'e2e-canary:%s' "$E2E_CANARY_PW" | base64 -w0)"
	curl -sS -o /dev/null --max-time 5 --http2-prior-knowledge -u "e2e-canary:$E2E_CANARY_PW" "$base/healthz" ||
		echo "start_regauth: HTTP/2 probe of $base/healthz failed" >&2
	BG_PID=$pid
}

# log_mark FILE — FILE's length in lines; log_since FILE MARK — the lines
# appended to FILE after MARK (what a test caused in a server's log). Both
# wait for FILE to settle first (see log_settle).
log_mark() {
	log_settle "$1"
	wc -l <"$1"
}
log_since() {
	log_settle "$1"
	tail -n "+$(($2 + 1))" "$1"
}

# log_settle FILE — waits until FILE has not grown for 0.1 s (at most 5 s).
# regauth writes its log in batches, up to 50 ms after the request that
# caused a line: once the file has settled, the lines of the requests
# already answered are in it, and a mark taken then does not count them
# as the next test's.
log_settle() {
	local size last=-1 still=0 deadline=$((SECONDS + 5))
	while ((SECONDS < deadline)); do
		size=$(stat -c %s "$1" 2>/dev/null || echo 0)
		if [[ $size == "$last" ]]; then
			((++still < 2)) || return 0
		else
			still=0 last=$size
		fi
		sleep 0.05
	done
}

# log_has FILE MARK TEXT... — a line of FILE after line MARK (0: the whole
# file) contains every TEXT (fixed strings); waits up to 10 s for it, as
# a line may be written a moment after the request that caused it.
log_has() { eventually lines_after_have "$@"; }

# lines_after_have FILE MARK TEXT... — one check of log_has (no waiting).
lines_after_have() { tail -n "+$(($2 + 1))" "$1" | line_with_all "${@:3}"; }

# line_with_all TEXT... — a line of standard input contains every TEXT.
line_with_all() {
	awk 'BEGIN { for (i = 1; i < ARGC; i++) want[i] = ARGV[i]; n = ARGC - 1; ARGC = 1 }
		{ for (i = 1; i <= n; i++) if (!index($0, want[i])) next; found = 1; exit }
		END { exit !found }' "$@"
}

# setup_regauth LOGFILE CONFIG BASE_URL SETUP_LOG — start_regauth for a
# setup: on failure sets SETUP_ERR (with the head of regauth's log) and
# returns 1. The PID is left in BG_PID.
setup_regauth() {
	local logfile=$1 config=$2 base=$3 log=$4
	if ! start_regauth "$logfile" "$config" "$base" >>"$log" 2>&1; then
		# shellcheck disable=SC2034 # read by the setup's caller
		SETUP_ERR="regauth did not become healthy: $(tail -n1 "$log"); regauth log: $(head -n 3 "$logfile" | tr '\n' ' ' | cut -c1-400)"
		return 1
	fi
}

# setup_registry LOGFILE CONFIG BASE_URL SETUP_LOG — start docker-registry
# and wait for its 401 challenge on BASE_URL/v2/ (token auth on; BASE_URL is
# http://HOST:PORT or https://HOST:PORT). distribution reads
# every REGISTRY_<SECTION>_<KEY> environment variable as a config override
# (REGISTRY_AUTH_FILE, set for containers in run.sh, would become auth.file),
# so all of them are unset. On failure sets SETUP_ERR and returns 1. The PID
# is left in BG_PID.
setup_registry() {
	local logfile=$1 config=$2 base=$3 log=$4 v pid
	local -a unset_env=()
	for v in $(compgen -e); do
		[[ "$v" == REGISTRY_* ]] && unset_env+=(-u "$v")
	done
	start_bg "$logfile" env "${unset_env[@]}" docker-registry serve "$config"
	pid=$BG_PID
	if ! wait_http "$base/v2/" "401" "$pid" 20 >>"$log" 2>&1; then
		# shellcheck disable=SC2034 # read by the setup's caller
		SETUP_ERR="registry did not come up: $(tail -n1 "$log"); registry log: $(head -n 2 "$logfile" | tr '\n' ' ' | cut -c1-400)"
		return 1
	fi
	BG_PID=$pid
}

# ------------------------------------------------------------------- ports ---

E2E_PORTS_GIVEN=" "

# write_registry_config FILE DATA ADDR REALM SERVICE BUNDLE [delete] [tls CERT KEY]
# — a distribution 2.x config in FILE: storage under DATA (upload purging
# off), HTTP on ADDR, bearer tokens from REALM for SERVICE signed by the
# certificate(s) in BUNDLE (issuer $ISSUER); `delete` enables deletes, `tls`
# serves HTTPS with CERT and KEY.
write_registry_config() {
	local file=$1 data=$2 addr=$3 realm=$4 service=$5 bundle=$6 delete="" tls=""
	shift 6
	while (($#)); do
		case $1 in
		delete) delete=$'\n  delete:\n    enabled: true' ;;
		tls)
			tls=$'\n  tls:\n    certificate: "'"$2"$'"\n    key: "'"$3"'"'
			shift 2
			;;
		*) echo "write_registry_config: unknown option $1" >&2; return 1 ;;
		esac
		shift
	done
	cat >"$file" <<EOF
version: 0.1
log:
  level: info
  formatter: text
storage:
  filesystem:
    rootdirectory: "$data"$delete
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: "$addr"
  secret: "e2e-not-a-secret"$tls
auth:
  token:
    realm: "$realm"
    service: "$service"
    issuer: "$ISSUER"
    rootcertbundle: "$bundle"
EOF
}

# write_containerd_config DIR SOCKET — DIR/config.toml (and DIR's root,
# state, tmp and opt) for a containerd that keeps everything under DIR and
# listens only on the unix socket SOCKET: no TCP debug or metrics address,
# and the CRI plugin (a Kubernetes runtime with CNI networking) off.
write_containerd_config() {
	local dir=$1 sock=$2
	mkdir -p "$dir/root" "$dir/state" "$dir/tmp" "$dir/opt"
	cat >"$dir/config.toml" <<EOF
version = 2
root = "$dir/root"
state = "$dir/state"
temp = "$dir/tmp"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$sock"
[ttrpc]
  address = ""
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "$dir/opt"
EOF
}

# free_ports NAME... — set each named variable (declared by the caller) to
# a loopback TCP port nobody listens on and that this run has not handed
# out before; runs in the caller's shell, so the ports it hands out are
# remembered. On failure: SETUP_ERR="no free port", status 1.
# Ports come from below the ephemeral range: a port in it can be the local
# end of some client's connection, which no listening-socket check sees
# and which makes a server's bind fail ("address already in use").
free_ports() {
	local _name _p _i _lo=10000 _hi=32768
	read -r _hi _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || true
	((_hi - _lo >= 1000)) || _lo=20000 _hi=60000
	for _name in "$@"; do
		for ((_i = 0; _i < 200; _i++)); do
			_p=$((_lo + (RANDOM * 32768 + RANDOM) % (_hi - _lo)))
			[[ "$E2E_PORTS_GIVEN" == *" $_p "* ]] && continue
			[[ -z "$(ss -Htln "sport = :$_p")" ]] && break
		done
		if ((_i == 200)); then
			SETUP_ERR="no free port"
			return 1
		fi
		E2E_PORTS_GIVEN+="$_p "
		printf -v "$_name" '%s' "$_p"
	done
}

# wait_http URL CODES PID [SECONDS] — poll URL until its HTTP status is one of
# CODES (space-separated), while PID is alive. Fails on timeout or if PID died.
wait_http() {
	local url=$1 codes=$2 pid=$3 secs=${4:-20} code i
	for ((i = 0; i < secs * 10; i++)); do
		if ! kill -0 "$pid" 2>/dev/null; then
			echo "wait_http: process $pid exited while waiting for $url" >&2
			return 1
		fi
		code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$url" || true)
		if [[ " $codes " == *" $code "* ]]; then
			return 0
		fi
		sleep 0.1
	done
	echo "wait_http: $url did not answer with one of [$codes] within ${secs}s (last: $code)" >&2
	return 1
}

# ----------------------------------------------------------------- clients ---
# Each client runs under `timeout` so a hang becomes a failure, never a stuck
# suite. Configuration comes from the temp dir only (see run.sh).

E2E_CLIENT_TIMEOUT=${E2E_CLIENT_TIMEOUT:-90}

# skopeo with the suite's policy and registries config.
sk() {
	timeout "$E2E_CLIENT_TIMEOUT" skopeo \
		--policy "$E2E_TMP/etc-containers/policy.json" \
		--registries-conf "$E2E_TMP/etc-containers/registries.conf" \
		--registries.d "$E2E_TMP/etc-containers/registries.d" \
		"$@"
}

# podman as root with storage, run state and events under the temp dir.
pm() {
	timeout "$E2E_CLIENT_TIMEOUT" podman \
		--root "$E2E_TMP/podman/root" \
		--runroot "$E2E_TMP/podman/runroot" \
		--tmpdir "$E2E_TMP/podman/tmp" \
		--storage-driver vfs \
		--events-backend file \
		--cgroup-manager cgroupfs \
		"$@"
}

# buildah as root with its own storage under the temp dir.
bh() {
	timeout "$E2E_CLIENT_TIMEOUT" buildah \
		--root "$E2E_TMP/buildah/root" \
		--runroot "$E2E_TMP/buildah/runroot" \
		--storage-driver vfs \
		"$@"
}

# -------------------------------------------------------------- assertions ---

# Text a client prints when the registry or token server said no.
AUTH_ERR_RE='unauthorized|authentication required|denied|invalid username/password|insufficient_scope|status code 401|status code 403|401 Unauthorized|403 Forbidden'
# Text that means the client never got an HTTP answer (the test would then be
# proving nothing about authorisation).
CONN_ERR_RE='connection refused|no such host|i/o timeout|connection reset|network is unreachable|no route to host|server misbehaving|proxyconnect'

# expect_ok DESC CMD [ARGS...] — CMD must succeed; its output goes to the log,
# stdout is also kept in $E2E_OUT for the caller.
expect_ok() {
	local desc=$1 rc=0
	shift
	note "expect ok: $desc: $*"
	"$@" >"$E2E_TMP/out" 2>"$E2E_TMP/err" || rc=$?
	cat "$E2E_TMP/out" "$E2E_TMP/err" >&2
	# shellcheck disable=SC2034 # read by the scenarios
	E2E_OUT=$(cat "$E2E_TMP/out")
	if [[ $rc -ne 0 ]]; then
		fail "$desc failed (exit $rc): $(last_err_line)"
	fi
}

# expect_auth_denied DESC CMD [ARGS...] — CMD must fail, and with an
# authentication/authorisation error rather than a connection error.
expect_auth_denied() {
	local desc=$1 rc=0
	shift
	note "expect auth denial: $desc: $*"
	"$@" >"$E2E_TMP/out" 2>"$E2E_TMP/err" || rc=$?
	cat "$E2E_TMP/out" "$E2E_TMP/err" >&2
	if [[ $rc -eq 0 ]]; then
		fail "$desc unexpectedly succeeded"
	fi
	if [[ $rc -eq 124 ]]; then
		fail "$desc timed out after ${E2E_CLIENT_TIMEOUT}s"
	fi
	if grep -Eqi "$CONN_ERR_RE" "$E2E_TMP/err"; then
		fail "$desc failed with a connection error, not an auth error: $(last_err_line)"
	fi
	if ! grep -Eqi "$AUTH_ERR_RE" "$E2E_TMP/err"; then
		fail "$desc failed, but not with an auth error: $(last_err_line)"
	fi
	note "denied as expected: $(last_err_line)"
}

# The last non-empty line of the last command's stderr, trimmed.
last_err_line() {
	grep -v '^[[:space:]]*$' "$E2E_TMP/err" | tail -n 1 | cut -c1-400
}

# assert_eq WHAT EXPECTED ACTUAL
assert_eq() {
	if [[ "$2" != "$3" ]]; then
		fail "$1: expected '$2', got '$3'"
	fi
}

# assert_contains WHAT HAYSTACK NEEDLE
assert_contains() {
	if [[ "$2" != *"$3"* ]]; then
		fail "$1: '$3' not found in: $(printf '%s' "$2" | tr '\n' ' ' | cut -c1-300)"
	fi
}

# assert_not_contains WHAT HAYSTACK NEEDLE
assert_not_contains() {
	if [[ "$2" == *"$3"* ]]; then
		fail "$1: '$3' unexpectedly present in: $(printf '%s' "$2" | tr '\n' ' ' | cut -c1-300)"
	fi
}

# ------------------------------------------------------------------- JWTs ---

# b64url_decode STRING — decode base64url without padding.
b64url_decode() {
	local s=${1//-/+}
	s=${s//_//}
	case $((${#s} % 4)) in
	2) s+="==" ;;
	3) s+="=" ;;
	esac
	printf '%s' "$s" | base64 -d
}

# jwt_part TOKEN N — the decoded JSON of part N (0 = header, 1 = claims).
jwt_part() {
	local IFS=.
	# shellcheck disable=SC2206 # splitting on '.' is the point
	local parts=($1)
	b64url_decode "${parts[$2]}"
}

# libtrust_kid CERT.pem — the libtrust key ID of the certificate's public key:
# SHA-256 of the DER SubjectPublicKeyInfo, first 30 bytes, base32 (no
# padding), in 12 colon-separated groups of 4. Computed independently of
# regauth, with openssl.
libtrust_kid() {
	openssl x509 -in "$1" -noout -pubkey |
		openssl pkey -pubin -outform DER |
		openssl dgst -sha256 -binary |
		head -c 30 | base32 -w0 | tr -d '=' |
		sed -E 's/(....)/\1:/g; s/:$//'
}

# cert_der_b64 CERT.pem — the certificate as standard base64 DER (an x5c entry).
cert_der_b64() {
	openssl x509 -in "$1" -outform DER | base64 -w0
}
