# shellcheck shell=bash disable=SC2034 # SETUP_ERR is read by run_scenarios (lib.sh)
# robots.sh — robot accounts end to end: `regauth robot add` prints a
# secret once, skopeo pushes with it to the real registry, the robot's
# scopes cap what the ACL grants, an expired robot and a removed one get
# 401 from the running server (the robots file is reloaded, no restart),
# and `regauth check` warns about expired robots and a world-readable file.
#
# Sourced by run.sh after lib.sh and scenarios.sh (ISSUER, fixture images).
# Entry point: run_robots_setup.
#
# Setup `robots`: its own key (ES256), registry and regauth with
# `robots_file: <tmp>/robots/robots.yaml` (created empty, mode 0600) and an
# ACL that grants every account named `ci-*` every action everywhere, so
# that only a robot's scopes limit it.
#
# Tests:
#   add-prints-secret-once  `robot add` prints one rgr_ secret on stdout and
#                           nothing else there; neither the file, stderr nor
#                           `robot list` holds it; the file stays 0600; the
#                           running server accepts it once it reloaded
#   skopeo-push             skopeo copy --dest-creds ci-push:<secret> pushes
#                           ci/app:v1; the audit says backend="robot"
#   ceiling-holds           the token for ci/app:push,pull,delete carries only
#                           [pull,push] (the ACL alone grants delete); a push
#                           to other/app and a delete of ci/app:v1 are refused
#   expired-401             the robot's expiry moved into the past: after the
#                           reload curl gets 401, skopeo an auth error; the log
#                           says reason="expired", never the secret
#   remove-revokes          `robot remove`: the secret gets 401 within 2 s,
#                           same regauth process (no restart); skopeo refused
#   check-warnings          `regauth check` warns about the expired robot, and
#                           about the file once it is world-readable

RB_ROBOT="ci-push"

# ------------------------------------------------------------------ setup ---

robots_setup_up() {
	RB_DIR="$E2E_TMP/robots"
	local keys="$RB_DIR/keys" log="$E2E_LOGS/robots_startup.log"
	SETUP_ERR=""
	mkdir -p "$keys"
	if ! "$REGAUTH" keygen --out "$keys" --alg ES256 >>"$log" 2>&1; then
		SETUP_ERR="regauth keygen failed: $(tail -n1 "$log")"
		return 1
	fi
	RB_FILE="$RB_DIR/robots.yaml"
	(umask 077 && printf '# robots of the e2e suite (regauth robot add|remove)\n' >"$RB_FILE")
	local ap rp
	free_ports ap rp || return 1
	RB_BASE="http://127.0.0.1:$ap"
	RB_AUTH_URL="$RB_BASE/auth"
	RB_REG="127.0.0.1:$rp"
	RB_SVC="e2e-registry-robots"
	cat >"$RB_DIR/regauth.yml" <<EOF
server:
  addr: "127.0.0.1:$ap"
token:
  issuer: "$ISSUER"
  expiration: 900
  certificate: "$keys/token.pem"
  key: "$keys/token.key"
robots_file: "$RB_FILE"
acl:
  - match: {account: "/^ci-/"}
    actions: ["*"]
    comment: "CI robots: whatever they ask; their scopes limit them"
EOF
	write_registry_config "$RB_DIR/registry.yml" "$RB_DIR/registry-data" "$RB_REG" "$RB_AUTH_URL" "$RB_SVC" "$keys/token.pem" delete
	if ! "$REGAUTH" check --config "$RB_DIR/regauth.yml" >>"$log" 2>&1; then
		SETUP_ERR="regauth check rejects $RB_DIR/regauth.yml: $(tail -n1 "$log")"
		return 1
	fi
	RB_REGAUTH_LOG="$E2E_LOGS/robots_regauth.log"
	setup_regauth "$RB_REGAUTH_LOG" "$RB_DIR/regauth.yml" "$RB_BASE" "$log" || return 1
	RB_REGAUTH_PID=$BG_PID
	RB_REGISTRY_LOG="$E2E_LOGS/robots_registry.log"
	setup_registry "$RB_REGISTRY_LOG" "$RB_DIR/registry.yml" "http://$RB_REG" "$log" || return 1
	RB_REGISTRY_PID=$BG_PID
	export RB_DIR RB_FILE RB_BASE RB_AUTH_URL RB_REG RB_SVC RB_REGAUTH_LOG RB_REGAUTH_PID
}

robots_setup_down() {
	stop_vars RB_REGISTRY_PID RB_REGAUTH_PID
}

# ---------------------------------------------------------------- helpers ---

# rb_add NAME SCOPE... — `regauth robot add` (90 days); the secret is kept
# in $RB_DIR/NAME.secret for the later tests and recorded for secrets.sh.
rb_add() {
	local name=$1 s
	shift
	local -a scopes=()
	for s in "$@"; do
		scopes+=(--scope "$s")
	done
	"$REGAUTH" robot add --file "$RB_FILE" --name "$name" "${scopes[@]}" --expires 90d \
		--comment "e2e $name" >"$RB_DIR/$name.out" 2>"$RB_DIR/$name.err" ||
		fail "robot add $name: $(cat "$RB_DIR/$name.err")"
	s=$(cat "$RB_DIR/$name.out")
	record_secret "$s" "$(printf '%s:%s' "$name" "$s" | base64 -w0)"
	printf '%s' "$s" >"$RB_DIR/$name.secret"
	note "robot add $name: $(cat "$RB_DIR/$name.err")"
}

rb_secret() { cat "$RB_DIR/$1.secret"; }

# rb_code NAME SECRET SCOPE — the status of a token request as NAME (body
# in $RB_DIR/last.body).
rb_code() {
	curl -sS --max-time 10 -o "$RB_DIR/last.body" -w '%{http_code}' -u "$1:$2" \
		"$RB_AUTH_URL?service=$RB_SVC&scope=$3" || echo "curl-failed"
}

# rb_wait_code NAME SECRET CODE LIMIT_MS — poll every 50 ms until a token
# request as NAME answers CODE; prints the milliseconds it took, fails
# after LIMIT_MS.
rb_wait_code() {
	local name=$1 secret=$2 want=$3 limit=$4 t0 now code
	t0=$(date +%s%3N)
	while :; do
		code=$(rb_code "$name" "$secret" "repository:ci/app:pull")
		now=$(date +%s%3N)
		[[ "$code" == "$want" ]] && break
		((now - t0 < limit)) || fail "$name: still $code after ${limit} ms (wanted $want)"
		sleep 0.05
	done
	printf '%s' $((now - t0))
}

# rb_sha256 SECRET — the hex SHA-256 of SECRET (as the robots file holds it).
rb_sha256() { printf '%s' "$1" | sha256sum | cut -d' ' -f1; }

# ------------------------------------------------------------------ tests ---

# t_rb_add — `robot add` prints the secret once, on stdout only.
t_rb_add() {
	rb_add "$RB_ROBOT" "repository:ci/*:push,pull"
	local s
	s=$(rb_secret "$RB_ROBOT")
	assert_eq "lines on stdout" 1 "$(wc -l <"$RB_DIR/$RB_ROBOT.out")"
	[[ "$s" =~ ^rgr_[A-Za-z0-9_-]{43}$ ]] || fail "not a robot secret: ${s:0:6}… (${#s} chars)"
	if grep -qF "$s" "$RB_DIR/$RB_ROBOT.err"; then fail "the secret is on stderr too"; fi
	if grep -qF "$s" "$RB_FILE"; then fail "the secret is in the robots file"; fi
	grep -qE "secret_sha256: $(rb_sha256 "$s")\$" "$RB_FILE" ||
		fail "the file does not hold the secret's SHA-256"
	assert_eq "robots file mode" 600 "$(stat -c %a "$RB_FILE")"
	assert_contains "file comments kept" "$(head -n1 "$RB_FILE")" "# robots of the e2e suite"
	expect_ok "robot list" "$REGAUTH" robot list --file "$RB_FILE"
	assert_contains "robot list" "$E2E_OUT" "$RB_ROBOT  expires "
	assert_contains "robot list" "$E2E_OUT" "scopes [repository:ci/*:pull,push]"
	assert_not_contains "robot list" "$E2E_OUT" "rgr_"
	assert_not_contains "robot list" "$E2E_OUT" "$(rb_sha256 "$s" | cut -c1-16)"
	# The running server reloads the file by itself.
	note "accepted after $(rb_wait_code "$RB_ROBOT" "$s" 200 5000) ms"
}

# t_rb_skopeo_push — skopeo pushes and inspects with the robot's secret.
t_rb_skopeo_push() {
	local s
	s=$(rb_secret "$RB_ROBOT")
	expect_ok "skopeo push ci/app:v1 as the robot" sk copy --dest-tls-verify=false \
		--dest-creds "$RB_ROBOT:$s" "oci:$IMG_V1:v1" "docker://$RB_REG/ci/app:v1"
	expect_ok "skopeo inspect ci/app:v1 as the robot" sk inspect --tls-verify=false \
		--creds "$RB_ROBOT:$s" "docker://$RB_REG/ci/app:v1"
	assert_eq "digest" "$DIG_V1" "$(jq -r .Digest <<<"$E2E_OUT")"
	expect_granted "$RB_REGAUTH_LOG" "$RB_ROBOT" "repository:ci/app:[pull,push]"
	log_has "$RB_REGAUTH_LOG" 0 'regauth::audit' "account=\"$RB_ROBOT\"" 'backend="robot"' ||
		fail "no audit line with backend=\"robot\" for $RB_ROBOT"
}

# t_rb_ceiling — the ACL grants ci-* everything; the robot's scopes do not.
t_rb_ceiling() {
	local s tok claims
	s=$(rb_secret "$RB_ROBOT")
	assert_eq "token status" 200 "$(rb_code "$RB_ROBOT" "$s" "repository:ci/app:push,pull,delete")"
	tok=$(jq -r .token "$RB_DIR/last.body")
	record_secret "$tok"
	claims=$(jwt_part "$tok" 1)
	note "claims: $claims"
	assert_eq "access (the ACL alone grants delete too)" \
		'[{"type":"repository","name":"ci/app","actions":["pull","push"]}]' "$(jq -c .access <<<"$claims")"
	log_has "$RB_REGAUTH_LOG" 0 'regauth::audit' \
		"repository:ci/app:[pull,push] by acl[0] (CI robots: whatever they ask; their scopes limit them) within the robot's scopes" ||
		fail "no audit line saying the robot's scopes capped the grant"
	expect_auth_denied "skopeo push other/app (outside the robot's scopes)" sk copy --dest-tls-verify=false \
		--dest-creds "$RB_ROBOT:$s" "oci:$IMG_V1:v1" "docker://$RB_REG/other/app:v1"
	expect_auth_denied "skopeo delete ci/app:v1 (delete is outside the robot's scopes)" sk delete --tls-verify=false \
		--creds "$RB_ROBOT:$s" "docker://$RB_REG/ci/app:v1"
	expect_ok "ci/app:v1 is still there" sk inspect --tls-verify=false --creds "$RB_ROBOT:$s" "docker://$RB_REG/ci/app:v1"
}

# t_rb_expired — a robot whose expiry has passed gets 401.
t_rb_expired() {
	rb_add ci-expiring "repository:ci/*:push,pull"
	local s ms mark
	s=$(rb_secret ci-expiring)
	note "accepted after $(rb_wait_code ci-expiring "$s" 200 5000) ms"
	# Its expiry moved into the past; the file replaced atomically.
	awk '/^- name: /{r=($3=="ci-expiring")} r && /^  expires: /{print "  expires: 2021-06-01T00:00:00Z"; next} {print}' \
		"$RB_FILE" >"$RB_FILE.new"
	chmod 600 "$RB_FILE.new" && mv -f "$RB_FILE.new" "$RB_FILE"
	mark=$(log_mark "$RB_REGAUTH_LOG")
	ms=$(rb_wait_code ci-expiring "$s" 401 5000)
	note "refused after $ms ms"
	expect_auth_denied "skopeo push as the expired robot" sk copy --dest-tls-verify=false \
		--dest-creds "ci-expiring:$s" "oci:$IMG_V1:v1" "docker://$RB_REG/ci/expired:v1"
	log_has "$RB_REGAUTH_LOG" "$mark" 'robot login refused' 'robot=ci-expiring' 'reason="expired"' ||
		fail "no log line saying the robot expired: $(log_since "$RB_REGAUTH_LOG" "$mark" | grep -F ci-expiring | head -n2)"
	log_has "$RB_REGAUTH_LOG" "$mark" 'regauth::audit' 'outcome="refused"' \
		'account="ci-expiring"' 'backend="robot"' 'failed_check="expired"' ||
		fail "no refused audit line for ci-expiring with backend=\"robot\" failed_check=\"expired\""
	if grep -qF "$s" "$RB_REGAUTH_LOG"; then fail "the secret is in regauth's log"; fi
}

# t_rb_remove — `robot remove` revokes within 2 s, without a restart.
t_rb_remove() {
	rb_add ci-revoked "repository:ci/*:push,pull"
	local s ms
	s=$(rb_secret ci-revoked)
	note "accepted after $(rb_wait_code ci-revoked "$s" 200 5000) ms"
	expect_ok "skopeo push as the robot before removal" sk copy --dest-tls-verify=false \
		--dest-creds "ci-revoked:$s" "oci:$IMG_V1:v1" "docker://$RB_REG/ci/revoked:v1"
	expect_ok "robot remove" "$REGAUTH" robot remove --file "$RB_FILE" --name ci-revoked
	ms=$(rb_wait_code ci-revoked "$s" 401 2000)
	note "refused ${ms} ms after robot remove"
	kill -0 "$RB_REGAUTH_PID" || fail "regauth is not running"
	assert_eq "regauth starts in its log (no restart)" 1 "$(grep -c "regauth listening" "$RB_REGAUTH_LOG" || true)"
	expect_auth_denied "skopeo push as the removed robot" sk copy --dest-tls-verify=false \
		--dest-creds "ci-revoked:$s" "oci:$IMG_V1:v1" "docker://$RB_REG/ci/revoked:v2"
	# The other robot carries on.
	assert_eq "the other robot" 200 "$(rb_code "$RB_ROBOT" "$(rb_secret "$RB_ROBOT")" "repository:ci/app:pull")"
	record_secret "$(jq -r .token "$RB_DIR/last.body")"
}

# t_rb_check — `regauth check` warns about expired robots and a
# world-readable robots file.
t_rb_check() {
	expect_ok "regauth check" "$REGAUTH" check --config "$RB_DIR/regauth.yml"
	assert_contains "check warnings" "$(cat "$E2E_TMP/err")" "expired robots (their logins are refused): ci-expiring"
	assert_not_contains "check warnings" "$(cat "$E2E_TMP/err")" "readable by every user"
	chmod 644 "$RB_FILE"
	expect_ok "regauth check" "$REGAUTH" check --config "$RB_DIR/regauth.yml"
	chmod 600 "$RB_FILE"
	assert_contains "check warnings" "$(cat "$E2E_TMP/err")" "robots_file $RB_FILE is readable by every user"
}

ROBOTS_SCENARIOS=(
	add-prints-secret-once:t_rb_add
	skopeo-push:t_rb_skopeo_push
	ceiling-holds:t_rb_ceiling
	expired-401:t_rb_expired
	remove-revokes:t_rb_remove
	check-warnings:t_rb_check
)

# run_robots_setup — bring the robots setup up, run its scenarios (those
# matching $E2E_ONLY, if set), bring it down.
run_robots_setup() {
	local up=0
	echo "== setup robots: robot accounts (robots_file), scope ceilings, expiry, revocation"
	robots_setup_up || up=$?
	run_scenarios robots "$up" "${ROBOTS_SCENARIOS[@]}"
	robots_setup_down
}
