# shellcheck shell=bash disable=SC2034 # SETUP_ERR is read by run_scenarios (lib.sh)
# refresh.sh — refresh tokens with the Docker engine: `docker
# login` stores the refresh token regauth issues as an identity token (no
# password on disk), dockerd pushes and pulls with `POST grant_type=
# refresh_token`, and a password change in htpasswd revokes that identity
# token. Plus the OAuth2 POST forms at curl level (containerd's password
# grant, the refresh grant).
#
# Sourced by run.sh after lib.sh, scenarios.sh and docker.sh (uses their
# helpers, ISSUER, the fixture images and docker.sh's dockerd: DK_READY,
# DK_DIR, dk, dk_rmi_all). Entry point: run_refresh_setup.
#
# Setup `refresh`: its own key (ES256), regauth (htpasswd file, one user
# dora with push/pull on dora/*, token.refresh_expiration: 3600) and
# registry.
#
# Tests:
#   seed                        skopeo (dora, password) pushes dora/app:v1
#   token-post-password         containerd-shaped POST grant_type=password
#                               (client_id=containerd) -> 200, token for dora
#                               with the granted actions, no refresh token;
#                               wrong password -> 401 + Basic challenge
#   token-post-refresh          POST password grant with access_type=offline ->
#                               a refresh token (rt1..., not a JWT); POST
#                               grant_type=refresh_token -> 200 token for dora;
#                               other service / tampered token -> 401, none -> 400
#   docker-login                `docker login` -> config.json holds an
#                               identitytoken and no password; regauth saw GET
#                               offline_token=true, client_id=docker
#   docker-pull                 local images removed, `docker pull dora/app:v1`:
#                               every token request is POST grant=refresh_token
#   docker-push                 `docker tag` + `docker push dora/pushed:v1` (layer
#                               mounted from dora/app: two scopes in one refresh
#                               grant), then local images removed and pulled
#                               back: all POST grant=refresh_token, digest as pushed
#   password-change-revokes     htpasswd rewritten with a new password (same
#                               path), regauth reloads by itself; `docker pull`
#                               with the stored identity token fails with an
#                               auth error, regauth logs the refused refresh
#   docker-relogin              `docker login` with the new password -> a new
#                               identity token; `docker pull` works again

R_USER="dora"
R_PW="dora-refresh-Pw1"
R_NEW_PW="dora-refresh-Pw2"
R_WRONG_PW="not-doras-password"

# ------------------------------------------------------------------ setup ---

# r_htpasswd PASSWORD — write $R_DIR/htpasswd (dora with PASSWORD, bcrypt
# cost 4 via `regauth hash`) through a temp file and a rename, so regauth's
# watcher never reads a half-written file. Same path every time.
r_htpasswd() {
	local h
	h=$(printf '%s' "$1" | "$REGAUTH" hash --cost 4) || return 1
	printf '%s:%s\n' "$R_USER" "$h" >"$R_DIR/htpasswd.new"
	mv -f "$R_DIR/htpasswd.new" "$R_DIR/htpasswd"
}

# refresh_setup_up — key, htpasswd, configs, regauth, registry. Sets
# SETUP_ERR and returns 1 on any error.
refresh_setup_up() {
	R_DIR="$E2E_TMP/refresh"
	local keys="$R_DIR/keys" log="$E2E_LOGS/refresh_startup.log"
	SETUP_ERR=""
	mkdir -p "$keys"
	if ! "$REGAUTH" keygen --out "$keys" --alg ES256 >>"$log" 2>&1; then
		SETUP_ERR="regauth keygen failed: $(tail -n1 "$log")"
		return 1
	fi
	if ! r_htpasswd "$R_PW" 2>>"$log"; then
		SETUP_ERR="regauth hash --cost 4 failed: $(tail -n1 "$log")"
		return 1
	fi
	local ap rp
	free_ports ap rp || return 1
	R_BASE="http://127.0.0.1:$ap"
	R_AUTH_URL="$R_BASE/auth"
	R_REG="127.0.0.1:$rp"
	R_SVC="e2e-registry-refresh"

	cat >"$R_DIR/regauth.yml" <<EOF
server:
  addr: "127.0.0.1:$ap"
token:
  issuer: "$ISSUER"
  expiration: 900
  refresh_expiration: 3600
  certificate: "$keys/token.pem"
  key: "$keys/token.key"
htpasswd: "$R_DIR/htpasswd"
acl:
  - match: {account: "$R_USER", name: "$R_USER/*"}
    actions: ["push", "pull"]
    comment: "dora owns dora/*"
EOF
	write_registry_config "$R_DIR/registry.yml" "$R_DIR/registry-data" "$R_REG" "$R_AUTH_URL" "$R_SVC" "$keys/token.pem"
	if ! "$REGAUTH" check --config "$R_DIR/regauth.yml" >>"$log" 2>&1; then
		SETUP_ERR="regauth check rejects $R_DIR/regauth.yml: $(tail -n1 "$log")"
		return 1
	fi
	R_REGAUTH_LOG="$E2E_LOGS/refresh_regauth.log"
	setup_regauth "$R_REGAUTH_LOG" "$R_DIR/regauth.yml" "$R_BASE" "$log" || return 1
	R_REGAUTH_PID=$BG_PID

	R_REGISTRY_LOG="$E2E_LOGS/refresh_registry.log"
	setup_registry "$R_REGISTRY_LOG" "$R_DIR/registry.yml" "http://$R_REG" "$log" || return 1
	R_REGISTRY_PID=$BG_PID
	export R_DIR R_BASE R_AUTH_URL R_REG R_SVC R_REGAUTH_LOG R_REGISTRY_LOG
	return 0
}

# refresh_setup_down — stop the registry and regauth (by PID).
refresh_setup_down() {
	stop_vars R_REGISTRY_PID R_REGAUTH_PID
}

# ---------------------------------------------------------------- helpers ---

# r_audit_mark / r_audit_since MARK — regauth's audit lines after MARK.
r_audit_mark() { log_mark "$R_REGAUTH_LOG"; }
r_audit_since() { log_since "$R_REGAUTH_LOG" "$1" | grep -F 'regauth::audit' || true; }

# r_note_audit_on_exit — at the end of the test, copy the token requests
# regauth saw meanwhile into the test's log (what the client really sent).
r_note_audit_on_exit() {
	R_AUDIT_MARK=$(r_audit_mark)
	trap 'note "token requests regauth saw during this test:"; r_audit_since "$R_AUDIT_MARK" >&2' EXIT
}

# r_post FORM... — POST the url-encoded FORM fields (name=value, encoded by
# curl) to the token endpoint; status in R_CODE, body in $R_DIR/last.body,
# headers in $R_DIR/last.headers. Tokens in the body are recorded as secrets.
r_post() {
	local -a args=()
	local f
	for f in "$@"; do
		args+=(--data-urlencode "$f")
	done
	R_CODE=$(curl -sS --max-time 20 -o "$R_DIR/last.body" -D "$R_DIR/last.headers" -w '%{http_code}' \
		"${args[@]}" "$R_AUTH_URL") || fail "curl POST $R_AUTH_URL failed"
	r_record_tokens "$R_DIR/last.body"
	note "POST $R_AUTH_URL ($(printf '%s ' "${@%%=*}")) -> $R_CODE"
}

# r_record_tokens FILE — record every token/refresh_token in a JSON body.
r_record_tokens() {
	local t
	while read -r t; do
		record_secret "$t"
	done < <(jq -r '.token?, .access_token?, .refresh_token? | strings' "$1" 2>/dev/null || true)
}

# r_field NAME — a string field of the last r_post body ("" if absent).
r_field() { jq -r --arg k "$1" '.[$k] // empty | strings' "$R_DIR/last.body" 2>/dev/null || true; }

# r_dk_as — docker CLI config for dora (docker.sh's dk uses DK_CONFIG).
r_dk_as() {
	[[ -n "${DK_READY:-}" ]] || fail "not run: docker/startup failed"
	DK_CONFIG="$R_DIR/docker-config"
	mkdir -p "$DK_CONFIG"
}

# r_dk_login PASSWORD — docker login $R_REG as dora (docker.sh's dk_login).
r_dk_login() { REG=$R_REG dk_login "$R_USER" "$1"; }

# r_identity_token — the identity token docker stored for $R_REG ("" if none).
r_identity_token() {
	[[ -s "$DK_CONFIG/config.json" ]] || return 0
	jq -r --arg r "$R_REG" '.auths[$r].identitytoken // empty' "$DK_CONFIG/config.json"
}

# r_expect_refresh_only MARK WHAT — every audit line since MARK is a POST
# refresh-token grant for dora that was issued (at least one such line).
r_expect_refresh_only() {
	local lines
	lines=$(r_audit_since "$1")
	[[ -n "$lines" ]] || fail "$2: regauth saw no token request"
	if grep -v 'method="POST"' <<<"$lines" | grep -q .; then
		fail "$2: token requests other than POST: $(grep -v 'method="POST"' <<<"$lines" | head -n1 | cut -c1-300)"
	fi
	if grep -v 'grant="refresh_token"' <<<"$lines" | grep -q .; then
		fail "$2: token requests with another grant than refresh_token: $(grep -v 'grant="refresh_token"' <<<"$lines" | head -n1 | cut -c1-300)"
	fi
	if grep -v 'outcome="issued"' <<<"$lines" | grep -q .; then
		fail "$2: refused token requests: $(grep -v 'outcome="issued"' <<<"$lines" | head -n1 | cut -c1-300)"
	fi
	if grep -v "account=\"$R_USER\" " <<<"$lines" | grep -q .; then
		fail "$2: a refreshed token is not for $R_USER: $(grep -v "account=\"$R_USER\" " <<<"$lines" | head -n1 | cut -c1-300)"
	fi
	note "$2: $(wc -l <<<"$lines") token request(s), all POST grant=refresh_token"
}

# ------------------------------------------------------------------ tests ---

# t_r_seed — dora pushes the fixture image with her password (skopeo).
t_r_seed() {
	record_secret "$(printf '%s:%s' "$R_USER" "$R_PW" | base64 -w0)"
	expect_ok "skopeo push $R_USER/app:v1" sk copy --dest-tls-verify=false --dest-creds "$R_USER:$R_PW" \
		"oci:$IMG_V1:v1" "docker://$R_REG/$R_USER/app:v1"
}

# t_r_token_post_password — what containerd sends when it has a password:
# an OAuth2 password grant in a POST form, scope space-separated.
t_r_token_post_password() {
	r_note_audit_on_exit
	local mark
	mark=$(r_audit_mark)
	r_post grant_type=password "username=$R_USER" "password=$R_PW" "service=$R_SVC" client_id=containerd \
		"scope=repository:$R_USER/app:pull,push repository:other/app:pull"
	assert_eq "status of the password grant" 200 "$R_CODE"
	local tok claims
	tok=$(r_field token)
	[[ -n "$tok" ]] || fail "no token in: $(head -c 300 "$R_DIR/last.body")"
	assert_eq "access_token equals token" "$tok" "$(r_field access_token)"
	assert_eq "refresh_token without access_type=offline" "" "$(r_field refresh_token)"
	claims=$(jwt_part "$tok" 1) || fail "token is not a JWT: $tok"
	note "claims: $claims"
	assert_eq "sub" "$R_USER" "$(jq -r .sub <<<"$claims")"
	assert_eq "aud" "$R_SVC" "$(jq -r .aud <<<"$claims")"
	assert_eq "access" \
		"[{\"type\":\"repository\",\"name\":\"$R_USER/app\",\"actions\":[\"pull\",\"push\"]},{\"type\":\"repository\",\"name\":\"other/app\",\"actions\":[]}]" \
		"$(jq -c '.access|map(.actions|=sort)' <<<"$claims")"
	local line
	line=$(r_audit_since "$mark" | tail -n1)
	assert_contains "audit line" "$line" 'method="POST" grant="password" client_id="containerd"'
	assert_contains "audit line" "$line" 'offline_requested=false refresh_token_issued=false'

	r_post grant_type=password "username=$R_USER" "password=$R_WRONG_PW" "service=$R_SVC" client_id=containerd \
		"scope=repository:$R_USER/app:pull"
	assert_eq "status of the password grant with a wrong password" 401 "$R_CODE"
	grep -qi '^www-authenticate: *basic' "$R_DIR/last.headers" || fail "401 without 'WWW-Authenticate: Basic ...'"
	assert_eq "token in the 401 body" "" "$(r_field token)"
}

# t_r_token_post_refresh — the refresh grant at HTTP level: a refresh token
# comes with access_type=offline, buys access tokens for its own service
# only, and a forged one is refused.
t_r_token_post_refresh() {
	r_note_audit_on_exit
	r_post grant_type=password "username=$R_USER" "password=$R_PW" "service=$R_SVC" client_id=e2e \
		access_type=offline "scope=repository:$R_USER/app:pull"
	assert_eq "status of the password grant with access_type=offline" 200 "$R_CODE"
	local rt
	rt=$(r_field refresh_token)
	[[ "$rt" == rt1.* ]] || fail "no rt1.* refresh_token in: $(head -c 300 "$R_DIR/last.body")"
	[[ "$rt" != eyJ* ]] || fail "the refresh token looks like a JWT"

	local mark
	mark=$(r_audit_mark)
	r_post grant_type=refresh_token "refresh_token=$rt" "service=$R_SVC" client_id=e2e \
		"scope=repository:$R_USER/app:pull,push"
	assert_eq "status of the refresh grant" 200 "$R_CODE"
	assert_eq "sub of the refreshed token" "$R_USER" "$(jwt_part "$(r_field token)" 1 | jq -r .sub)"
	assert_eq "actions of the refreshed token" "pull,push" \
		"$(jwt_part "$(r_field token)" 1 | jq -r '.access[0].actions|sort|join(",")')"
	assert_contains "audit line" "$(r_audit_since "$mark")" 'method="POST" grant="refresh_token" client_id="e2e"'

	r_post grant_type=refresh_token "refresh_token=$rt" "service=another-service" client_id=e2e \
		"scope=repository:$R_USER/app:pull"
	assert_eq "status of the refresh grant for another service" 401 "$R_CODE"
	# The MAC with its first character changed (still canonical base64url).
	local sig=${rt##*.} forged
	forged="${rt%.*}.$([[ "${sig:0:1}" == A ]] && echo B || echo A)${sig:1}"
	r_post grant_type=refresh_token "refresh_token=$forged" "service=$R_SVC" client_id=e2e \
		"scope=repository:$R_USER/app:pull"
	assert_eq "status of the refresh grant with a tampered token" 401 "$R_CODE"
	r_post grant_type=refresh_token "service=$R_SVC" client_id=e2e
	assert_eq "status of the refresh grant without refresh_token" 400 "$R_CODE"
}

# t_r_docker_login — `docker login`: dockerd asks with offline_token=true,
# regauth returns a refresh token, the CLI stores it as identitytoken and
# keeps no password (the "auth" field is absent, empty or "dora:").
t_r_docker_login() {
	r_dk_as
	r_note_audit_on_exit
	local mark
	mark=$(r_audit_mark)
	expect_ok "docker login -u $R_USER --password-stdin $R_REG" r_dk_login "$R_PW"
	assert_contains "docker login output" "$E2E_OUT" "Login Succeeded"
	local it auth
	it=$(r_identity_token)
	[[ -n "$it" ]] || fail "no identitytoken for $R_REG in $DK_CONFIG/config.json: $(jq -c . "$DK_CONFIG/config.json")"
	record_secret "$it"
	[[ "$it" == rt1.* ]] || fail "the identity token is not a regauth refresh token: ${it:0:12}..."
	auth=$(jq -r --arg r "$R_REG" '.auths[$r].auth // empty' "$DK_CONFIG/config.json")
	if [[ -n "$auth" ]]; then
		assert_eq "stored auth (user name only, no password)" "$R_USER:" "$(base64 -d <<<"$auth")"
	fi
	if grep -qF -- "$R_PW" "$DK_CONFIG/config.json" ||
		grep -qF -- "$(printf '%s:%s' "$R_USER" "$R_PW" | base64 -w0)" "$DK_CONFIG/config.json"; then
		fail "config.json holds the password"
	fi
	local line
	line=$(r_audit_since "$mark" | grep -F 'refresh_token_issued=true' | tail -n1)
	[[ -n "$line" ]] || fail "regauth issued no refresh token during docker login"
	assert_contains "login audit line" "$line" 'method="GET" grant="password" client_id="docker"'
	assert_contains "login audit line" "$line" 'offline_requested=true'
}

# t_r_docker_pull — with only the identity token: local images removed,
# `docker pull` downloads dora/app:v1 and every token request dockerd makes
# is a POST refresh-token grant.
t_r_docker_pull() {
	r_dk_as
	r_note_audit_on_exit
	[[ -n "$(r_identity_token)" ]] || fail "no identity token stored (docker-login failed?)"
	expect_ok "remove local images" dk_rmi_all
	local mark
	mark=$(r_audit_mark)
	expect_ok "docker pull $R_REG/$R_USER/app:v1" dk pull "$R_REG/$R_USER/app:v1"
	assert_contains "pull output" "$E2E_OUT" "Digest: $DIG_V1"
	assert_contains "pull output" "$E2E_OUT" "Downloaded newer image for $R_REG/$R_USER/app:v1"
	r_expect_refresh_only "$mark" "docker pull"
}

# t_r_docker_push — push (with a cross-repository mount: two scopes in one
# refresh grant), then pull the pushed image back from scratch.
t_r_docker_push() {
	r_dk_as
	r_note_audit_on_exit
	[[ -n "$(r_identity_token)" ]] || fail "no identity token stored (docker-login failed?)"
	local mark pushed
	mark=$(r_audit_mark)
	expect_ok "docker tag" dk tag "$R_REG/$R_USER/app:v1" "$R_REG/$R_USER/pushed:v1"
	expect_ok "docker push $R_REG/$R_USER/pushed:v1" dk push "$R_REG/$R_USER/pushed:v1"
	pushed=$(grep -Eo 'digest: sha256:[0-9a-f]{64}' <<<"$E2E_OUT" | tail -n1 | cut -d' ' -f2)
	[[ -n "$pushed" ]] || fail "docker push printed no digest"
	# The layer came from dora/app: docker asks for repository:dora/pushed:
	# push,pull plus repository:dora/app:pull in one refresh grant and mounts.
	assert_contains "push output (cross-repository mount)" "$E2E_OUT" "Mounted from $R_USER/app"
	r_expect_refresh_only "$mark" "docker push"
	r_audit_since "$mark" | grep -F "repository:$R_USER/pushed:[pull,push]" | grep -qF "repository:$R_USER/app:[pull]" ||
		fail "no refresh grant gave push on $R_USER/pushed and pull on $R_USER/app"

	expect_ok "remove local images" dk_rmi_all
	mark=$(r_audit_mark)
	expect_ok "docker pull $R_REG/$R_USER/pushed:v1" dk pull "$R_REG/$R_USER/pushed:v1"
	assert_contains "pull output" "$E2E_OUT" "Digest: $pushed"
	assert_contains "pull output" "$E2E_OUT" "Downloaded newer image for $R_REG/$R_USER/pushed:v1"
	r_expect_refresh_only "$mark" "docker pull of the pushed image"
}

# r_wait_reload COUNT — wait (up to 10 s) until regauth's log holds more
# than COUNT "configuration reloaded" lines.
r_wait_reload() {
	local i n
	for ((i = 0; i < 100; i++)); do
		n=$(grep -c 'configuration reloaded' "$R_REGAUTH_LOG" || true)
		((n > $1)) && return 0
		sleep 0.1
	done
	return 1
}

# t_r_password_change_revokes — dora's password changes in htpasswd (same
# path, new bcrypt hash); regauth notices by itself (file watch). The
# identity token docker stored is then refused: `docker pull` fails with an
# auth error and regauth logs a refused refresh grant.
t_r_password_change_revokes() {
	r_dk_as
	r_note_audit_on_exit
	[[ -n "$(r_identity_token)" ]] || fail "no identity token stored (docker-login failed?)"
	local reloads t0
	reloads=$(grep -c 'configuration reloaded' "$R_REGAUTH_LOG" || true)
	expect_ok "rewrite $R_DIR/htpasswd with a new password" r_htpasswd "$R_NEW_PW"
	t0=$(date +%s%N)
	r_wait_reload "$reloads" || fail "regauth did not reload within 10s after htpasswd changed"
	note "regauth reloaded $((($(date +%s%N) - t0) / 1000000)) ms after the htpasswd rewrite"
	# The new password is live, the old one is not (plain GET, Basic).
	local code
	code=$(curl -sS -o /dev/null -w '%{http_code}' --max-time 20 -u "$R_USER:$R_PW" -G "$R_AUTH_URL" \
		--data-urlencode "service=$R_SVC") || fail "curl failed"
	assert_eq "status with the old password" 401 "$code"
	code=$(curl -sS -o /dev/null -w '%{http_code}' --max-time 20 -u "$R_USER:$R_NEW_PW" -G "$R_AUTH_URL" \
		--data-urlencode "service=$R_SVC") || fail "curl failed"
	assert_eq "status with the new password" 200 "$code"

	expect_ok "remove local images" dk_rmi_all
	local mark lines
	mark=$(r_audit_mark)
	expect_auth_denied "docker pull with the revoked identity token" dk pull "$R_REG/$R_USER/app:v1"
	log_has "$R_REGAUTH_LOG" "$mark" 'regauth::audit' 'outcome="refused"' 'method="POST"' 'grant="refresh_token"' || true
	lines=$(r_audit_since "$mark")
	grep 'outcome="refused"' <<<"$lines" | grep 'method="POST"' | grep -q 'grant="refresh_token"' ||
		fail "regauth logged no refused POST refresh grant: $(head -n1 <<<"$lines" | cut -c1-300)"
	if grep -q 'outcome="issued"' <<<"$lines"; then
		fail "regauth still issued a token: $(grep 'outcome="issued"' <<<"$lines" | head -n1 | cut -c1-300)"
	fi
	log_has "$R_REGAUTH_LOG" "$mark" 'refresh token refused' 'credentials changed' ||
		fail "no 'refresh token refused ... credentials changed' line in regauth's log"
}

# t_r_docker_relogin — with the new password docker gets a new identity
# token and can pull again (the refusal above was the revocation, nothing else).
t_r_docker_relogin() {
	r_dk_as
	r_note_audit_on_exit
	local old new
	old=$(r_identity_token)
	record_secret "$(printf '%s:%s' "$R_USER" "$R_NEW_PW" | base64 -w0)"
	expect_ok "docker login with the new password" r_dk_login "$R_NEW_PW"
	new=$(r_identity_token)
	record_secret "$new"
	[[ "$new" == rt1.* ]] || fail "no new identity token after the login"
	[[ "$new" != "$old" ]] || fail "the identity token did not change"
	local mark
	mark=$(r_audit_mark)
	expect_ok "docker pull $R_REG/$R_USER/app:v1" dk pull "$R_REG/$R_USER/app:v1"
	assert_contains "pull output" "$E2E_OUT" "Digest: $DIG_V1"
	r_expect_refresh_only "$mark" "docker pull after the new login"
	dk_rmi_all >/dev/null 2>&1 || true
}

# ----------------------------------------------------------------- driver ---

REFRESH_SCENARIOS=(
	seed:t_r_seed
	token-post-password:t_r_token_post_password
	token-post-refresh:t_r_token_post_refresh
	docker-login:t_r_docker_login
	docker-pull:t_r_docker_pull
	docker-push:t_r_docker_push
	password-change-revokes:t_r_password_change_revokes
	docker-relogin:t_r_docker_relogin
)

# run_refresh_setup — bring the refresh setup up, run its scenarios (those
# matching $E2E_ONLY, if set), bring it down. Needs docker.sh's dockerd up.
run_refresh_setup() {
	local up=0
	echo "== setup refresh: htpasswd user, refresh tokens (identity tokens) with the Docker engine"
	refresh_setup_up || up=$?
	run_scenarios refresh "$up" "${REFRESH_SCENARIOS[@]}"
	refresh_setup_down
}
