# shellcheck shell=bash disable=SC2034 # SETUP_ERR is read by run_scenarios (lib.sh)
# troubleshoot.sh — the README's Troubleshooting table, produced for real:
# each row's mistake is made in a registry (or token server, or mirror
# front) of its own, a real client (skopeo) meets it, and the test checks
# that the client message and the log lines the table documents appear —
# the registry's lines come from the real docker-registry (distribution
# 2.8), regauth's from its log.
#
# Sourced by run.sh after lib.sh and scenarios.sh (uses ISSUER and the
# password hash t_cli_hash wrote). Entry point: run_troubleshoot_setup.
#
# Setup `troubleshoot` (one run): regauth (ES256, services: [ts-registry],
# alice may do everything); a second regauth, same configuration, whose
# clock runs 10 minutes ahead (faketime); one docker-registry per row:
#
#   issuer        auth.token.issuer differs from token.issuer
#   bundle        rootcertbundle holds another key's certificate
#   service       auth.token.service is not in regauth's services:
#   realm-path    auth.token.realm points at /token instead of /auth
#   clock-skew    realm is the regauth whose clock is ahead
#   mirror-front  a correct registry behind an nginx front that rewrites the
#                 path (/v2/X -> /v2/docker.io/X) but not the challenge's
#                 service, so regauth never learns the request is a mirror's
#
# and, on the correct registry, the README's ways to use a minted token:
# skopeo --registry-token (mint-registry-token), and --format docker-config,
# which Docker reads and skopeo ignores (mint-docker-config; uses docker.sh's
# dockerd).

TS_SVC="ts-registry"

TS_SCENARIOS=(
	issuer:t_ts_issuer
	bundle:t_ts_bundle
	service:t_ts_service
	realm-path:t_ts_realm_path
	clock-skew:t_ts_clock_skew
	mirror-front:t_ts_mirror_front
	mint-registry-token:t_ts_mint_registry_token
	mint-docker-config:t_ts_mint_docker_config
)

# ts_registry NAME PORT REALM SERVICE ISSUER BUNDLE LOG — write and start
# one registry; its PID is appended to TS_PIDS.
ts_registry() {
	local name=$1 port=$2 realm=$3 service=$4 issuer=$5 bundle=$6 log=$7
	local cfg="$TS_DIR/registry-$name.yml"
	ISSUER="$issuer" write_registry_config "$cfg" "$TS_DIR/data-$name" "127.0.0.1:$port" "$realm" "$service" "$bundle"
	setup_registry "$E2E_LOGS/troubleshoot_registry-$name.log" "$cfg" "http://127.0.0.1:$port" "$log" || return 1
	TS_PIDS+=("$BG_PID")
}

# troubleshoot_setup_up — keys, regauth (twice), the registries and the
# front. Sets SETUP_ERR and returns 1 on any error.
troubleshoot_setup_up() {
	TS_DIR="$E2E_TMP/troubleshoot"
	TS_PIDS=()
	SETUP_ERR=""
	local log="$E2E_LOGS/troubleshoot_startup.log"
	mkdir -p "$TS_DIR"
	if ! "$REGAUTH" keygen --out "$TS_DIR/keys" >>"$log" 2>&1 ||
		! "$REGAUTH" keygen --out "$TS_DIR/other" >>"$log" 2>&1; then
		SETUP_ERR="regauth keygen failed: $(tail -n1 "$log")"
		return 1
	fi
	local h
	if ! h=$(cat "$E2E_TMP/fixtures/alice.hash" 2>/dev/null); then
		SETUP_ERR="no password hash (cli/hash failed)"
		return 1
	fi
	local ap sp p_issuer p_bundle p_service p_realm p_skew p_good p_front
	free_ports ap sp p_issuer p_bundle p_service p_realm p_skew p_good p_front || return 1
	local cfg
	for cfg in "regauth:$ap" "regauth-skew:$sp"; do
		cat >"$TS_DIR/${cfg%%:*}.yml" <<EOF
server:
  addr: "127.0.0.1:${cfg#*:}"
token:
  issuer: "$ISSUER"
  expiration: 900
  key: "$TS_DIR/keys/token.key"
  certificate: "$TS_DIR/keys/token.pem"
users:
  alice: {password: "$h"}
acl:
  - match: {account: alice}
    actions: ["*"]
services: [$TS_SVC]
mirrors:
  - {service: docker.io, prefix: docker.io, audience: $TS_SVC}
EOF
	done
	TS_REGAUTH_LOG="$E2E_LOGS/troubleshoot_regauth.log"
	setup_regauth "$TS_REGAUTH_LOG" "$TS_DIR/regauth.yml" "http://127.0.0.1:$ap" "$log" || return 1
	TS_PIDS+=("$BG_PID")
	# The same server with its clock 10 minutes ahead.
	TS_SKEW_LOG="$E2E_LOGS/troubleshoot_regauth-skew.log"
	# libfaketime preloaded directly, without the shared memory the
	# `faketime` wrapper sets up for its children: the wrapper leaves its
	# semaphore behind when it is killed, and a later run reusing the PID
	# inside a new namespace fails with "sem_open: File exists".
	local libfaketime
	libfaketime=$(dpkg -L libfaketime 2>/dev/null | grep '/libfaketime\.so\.1$' | head -n 1)
	if [[ -z $libfaketime ]]; then
		SETUP_ERR="libfaketime not found; install it with: apt-get install faketime"
		return 1
	fi
	start_bg "$TS_SKEW_LOG" env NO_COLOR=1 RUST_LOG="$E2E_REGAUTH_LOG_LEVEL" \
		LD_PRELOAD="$libfaketime" FAKETIME="+10m" FAKETIME_DISABLE_SHM=1 \
		"$REGAUTH" serve --config "$TS_DIR/regauth-skew.yml"
	TS_PIDS+=("$BG_PID")
	printf '%s\t%s\n' "$BG_PID" "$TS_SKEW_LOG" >>"$E2E_REGAUTH_LOGS"
	if ! wait_http "http://127.0.0.1:$sp/healthz" 200 "$BG_PID" 20 >>"$log" 2>&1; then
		SETUP_ERR="regauth under faketime did not start: $(head -n 3 "$TS_SKEW_LOG" | tr '\n' ' ' | cut -c1-400)"
		return 1
	fi

	local realm="http://127.0.0.1:$ap/auth" bundle="$TS_DIR/keys/token.pem"
	ts_registry issuer "$p_issuer" "$realm" "$TS_SVC" "not-$ISSUER" "$bundle" "$log" || return 1
	ts_registry bundle "$p_bundle" "$realm" "$TS_SVC" "$ISSUER" "$TS_DIR/other/token.pem" "$log" || return 1
	ts_registry service "$p_service" "$realm" "other-registry" "$ISSUER" "$bundle" "$log" || return 1
	ts_registry realm "$p_realm" "http://127.0.0.1:$ap/token" "$TS_SVC" "$ISSUER" "$bundle" "$log" || return 1
	ts_registry skew "$p_skew" "http://127.0.0.1:$sp/auth" "$TS_SVC" "$ISSUER" "$bundle" "$log" || return 1
	ts_registry good "$p_good" "$realm" "$TS_SVC" "$ISSUER" "$bundle" "$log" || return 1

	# A mirror front that does half the job: the path, not the challenge.
	local ng="$TS_DIR/front"
	mkdir -p "$ng/logs" "$ng/tmp"
	cat >"$ng/nginx.conf" <<EOF
worker_processes 1;
pid nginx.pid;
error_log logs/error.log info;
events { worker_connections 64; }
http {
    access_log logs/access.log;
    client_body_temp_path tmp/client_body;
    proxy_temp_path tmp/proxy;
    fastcgi_temp_path tmp/fastcgi;
    uwsgi_temp_path tmp/uwsgi;
    scgi_temp_path tmp/scgi;
    server {
        listen 127.0.0.1:$p_front;
        location = /v2/ { proxy_pass http://127.0.0.1:$p_good; }
        location /v2/ {
            rewrite ^/v2/(.+)\$ /v2/docker.io/\$1 break;
            proxy_pass http://127.0.0.1:$p_good;
        }
    }
}
EOF
	start_bg "$E2E_LOGS/troubleshoot_nginx.log" nginx -p "$ng/" -c "$ng/nginx.conf" -g 'daemon off;'
	TS_PIDS+=("$BG_PID")
	if ! wait_http "http://127.0.0.1:$p_front/v2/" 401 "$BG_PID" 20 >>"$log" 2>&1; then
		SETUP_ERR="nginx front did not come up: $(tail -n 2 "$ng/logs/error.log" 2>/dev/null | tr '\n' ' ' | cut -c1-400)"
		return 1
	fi
	record_secret "$ALICE_PW" "$(printf 'alice:%s' "$ALICE_PW" | base64 -w0)"
	TS_ISSUER_REG="127.0.0.1:$p_issuer" TS_BUNDLE_REG="127.0.0.1:$p_bundle"
	TS_SERVICE_REG="127.0.0.1:$p_service" TS_REALM_REG="127.0.0.1:$p_realm"
	TS_SKEW_REG="127.0.0.1:$p_skew" TS_FRONT="127.0.0.1:$p_front" TS_GOOD_REG="127.0.0.1:$p_good"
	export TS_DIR TS_REGAUTH_LOG TS_SKEW_LOG TS_ISSUER_REG TS_BUNDLE_REG TS_SERVICE_REG TS_REALM_REG TS_SKEW_REG TS_FRONT TS_GOOD_REG
}

troubleshoot_setup_down() {
	local pid
	for pid in "${TS_PIDS[@]}"; do
		stop_pid "$pid"
	done
	TS_PIDS=()
}

# ts_pull REGISTRY NAME — skopeo inspect as alice; must fail. The client's
# error is left in $E2E_TMP/err.
ts_pull() {
	local rc=0
	note "skopeo inspect docker://$1/$2 as alice (expected to fail)"
	sk inspect --tls-verify=false --creds "alice:$ALICE_PW" "docker://$1/$2" >"$E2E_TMP/out" 2>"$E2E_TMP/err" || rc=$?
	cat "$E2E_TMP/err" >&2
	[[ $rc -ne 0 ]] || fail "skopeo inspect docker://$1/$2 unexpectedly succeeded"
	[[ $rc -ne 124 ]] || fail "skopeo inspect docker://$1/$2 timed out"
}

# ts_expect_line WHAT FILE MARK TEXT — FILE got a line containing TEXT
# after MARK, within 5 s (regauth writes its log lines in batches, a few
# milliseconds after the response).
ts_expect_line() {
	local what=$1 file=$2 mark=$3 text=$4 i
	for ((i = 0; i < 50; i++)); do
		log_since "$file" "$mark" | grep -qF -- "$text" && break
		sleep 0.1
	done
	if ! log_since "$file" "$mark" | grep -qF -- "$text"; then
		fail "$what: no line with '$text' in $file; got: $(log_since "$file" "$mark" | tail -n 3 | tr '\n' ' ' | cut -c1-400)"
	fi
	note "found in $(basename "$file"): $text"
}

# The client message of rows whose token the registry refuses.
TS_UNAUTHORIZED="unauthorized: authentication required"

t_ts_issuer() {
	local log="$E2E_LOGS/troubleshoot_registry-issuer.log" m
	m=$(log_mark "$log")
	ts_pull "$TS_ISSUER_REG" team/app:1
	assert_contains "client message" "$(cat "$E2E_TMP/err")" "$TS_UNAUTHORIZED"
	ts_expect_line "registry log" "$log" "$m" "token from untrusted issuer: \\\"$ISSUER\\\""
}

t_ts_bundle() {
	local log="$E2E_LOGS/troubleshoot_registry-bundle.log" m kid
	m=$(log_mark "$log")
	ts_pull "$TS_BUNDLE_REG" team/app:1
	assert_contains "client message" "$(cat "$E2E_TMP/err")" "$TS_UNAUTHORIZED"
	# The ID the registry names is the kid regauth logs at start.
	kid=$(grep -o 'kid="[^"]*"' "$TS_REGAUTH_LOG" | head -n 1 | cut -d'"' -f2)
	[[ -n "$kid" ]] || fail "no kid in regauth's start line"
	ts_expect_line "registry log" "$log" "$m" "token signed by untrusted key with ID: \\\"$kid\\\""
}

t_ts_service() {
	local m
	m=$(log_mark "$TS_REGAUTH_LOG")
	ts_pull "$TS_SERVICE_REG" team/app:1
	assert_contains "client message" "$(cat "$E2E_TMP/err")" "invalid status code from registry 400 (Bad Request)"
	ts_expect_line "regauth log" "$TS_REGAUTH_LOG" "$m" 'reason="unknown service \"other-registry\""'
}

t_ts_realm_path() {
	local m
	m=$(log_mark "$TS_REGAUTH_LOG")
	ts_pull "$TS_REALM_REG" team/app:1
	assert_contains "client message" "$(cat "$E2E_TMP/err")" "invalid status code from registry 404 (Not Found)"
	ts_expect_line "regauth log" "$TS_REGAUTH_LOG" "$m" 'no endpoint at GET "/token": the token endpoint is /auth'
}

t_ts_clock_skew() {
	local log="$E2E_LOGS/troubleshoot_registry-skew.log" m
	m=$(log_mark "$log")
	ts_pull "$TS_SKEW_REG" team/app:1
	assert_contains "client message" "$(cat "$E2E_TMP/err")" "$TS_UNAUTHORIZED"
	ts_expect_line "registry log" "$log" "$m" "token not to be used before"
}

t_ts_mirror_front() {
	local log="$E2E_LOGS/troubleshoot_registry-good.log" m r
	m=$(log_mark "$log")
	r=$(log_mark "$TS_REGAUTH_LOG")
	# The front's challenge still names the registry's service.
	local challenge
	challenge=$(curl -sS -o /dev/null -D - --max-time 10 "http://$TS_FRONT/v2/library/debian/manifests/12" | tr -d '\r' | grep -i '^www-authenticate:' || true)
	assert_contains "front challenge" "$challenge" "service=\"$TS_SVC\""
	sk inspect --tls-verify=false --creds "alice:$ALICE_PW" "docker://$TS_FRONT/library/debian:12" >"$E2E_TMP/out" 2>"$E2E_TMP/err" || true
	cat "$E2E_TMP/err" >&2
	ts_expect_line "registry log" "$log" "$m" "error authorizing context: insufficient scope"
	ts_expect_line "regauth audit line" "$TS_REGAUTH_LOG" "$r" "service=\"$TS_SVC\" audience=\"$TS_SVC\" requested=[\"repository:library/debian:pull\"]"
}

# t_ts_mint_registry_token — `regauth mint` then `skopeo --registry-token`,
# as the README shows for CI: the registry takes the token for the scope
# minted (the image is absent: "manifest unknown" is the registry's answer
# after the token was accepted) and refuses it for another repository.
t_ts_mint_registry_token() {
	local token
	expect_ok "regauth mint" "$REGAUTH" mint --config "$TS_DIR/regauth.yml" --account alice \
		--service "$TS_SVC" --scope repository:team/app:pull --ttl 600
	token=$E2E_OUT
	record_secret "$token"
	local rc=0
	sk inspect --tls-verify=false --registry-token "$token" "docker://$TS_GOOD_REG/team/app:1" >"$E2E_TMP/out" 2>"$E2E_TMP/err" || rc=$?
	cat "$E2E_TMP/err" >&2
	assert_contains "skopeo --registry-token, minted scope" "$(cat "$E2E_TMP/err")" "manifest unknown"
	sk inspect --tls-verify=false --registry-token "$token" "docker://$TS_GOOD_REG/other/app:1" >"$E2E_TMP/out" 2>"$E2E_TMP/err" || rc=$?
	cat "$E2E_TMP/err" >&2
	assert_contains "skopeo --registry-token, another repository" "$(cat "$E2E_TMP/err")" "requested access to the resource is denied"
}

# t_ts_mint_docker_config — `regauth mint --format docker-config`: Docker
# sends its registrytoken (the registry answers "manifest unknown" once the
# token was accepted); skopeo with the same file as its authfile does not
# (it knows no registrytoken, and its token request is refused).
t_ts_mint_docker_config() {
	[[ -n "${DK_READY:-}" ]] || fail "dockerd is not up (see docker/startup)"
	local dir="$TS_DIR/docker-config"
	mkdir -p "$dir"
	expect_ok "regauth mint --format docker-config" "$REGAUTH" mint --config "$TS_DIR/regauth.yml" \
		--account alice --service "$TS_SVC" --scope repository:team/app:pull --ttl 600 \
		--format docker-config --registry "$TS_GOOD_REG"
	printf '%s\n' "$E2E_OUT" >"$dir/config.json"
	record_secret "$(jq -r '.auths[].registrytoken' "$dir/config.json")"
	local rc=0
	DK_CONFIG=$dir dk pull "$TS_GOOD_REG/team/app:1" >"$E2E_TMP/out" 2>"$E2E_TMP/err" || rc=$?
	cat "$E2E_TMP/err" >&2
	assert_contains "docker pull with the minted config.json" "$(cat "$E2E_TMP/err")" "manifest unknown"
	sk inspect --tls-verify=false --authfile "$dir/config.json" "docker://$TS_GOOD_REG/team/app:1" >"$E2E_TMP/out" 2>"$E2E_TMP/err" || rc=$?
	cat "$E2E_TMP/err" >&2
	assert_contains "skopeo with the minted config.json as authfile" "$(cat "$E2E_TMP/err")" "invalid username/password"
}

# run_troubleshoot_setup — bring the setup up, run its tests, bring it down.
run_troubleshoot_setup() {
	local up=0
	echo "== setup troubleshoot: one mistake per registry, as the README's Troubleshooting table lists them"
	troubleshoot_setup_up || up=$?
	run_scenarios troubleshoot "$up" "${TS_SCENARIOS[@]}"
	troubleshoot_setup_down
}
