# shellcheck shell=bash disable=SC2034 # SETUP_ERR is read by run_scenarios (lib.sh)
# federation.sh — CI logins with OIDC ID tokens (workload identity): two
# real, independent OIDC issuers on loopback (npm oauth2-mock-server,
# tests/e2e/oidc: discovery document, JWKS, RS256 tokens) that regauth
# discovers over http://127.0.0.1, a registry, skopeo, curl and the Docker
# engine.
#
# Sourced by run.sh after lib.sh, scenarios.sh, docker.sh and refresh.sh
# (uses their helpers, ISSUER, the fixture images and docker.sh's dockerd:
# DK_READY, dk, dk_rmi_all). Entry point: run_federation_setup.
#
# Setup `federation`: issuer `gh` shaped as GitHub Actions' (claims
# repository, repository_owner_id, ref, sub), issuer `gl` shaped as GitLab
# CI's (project_path, namespace_id, ref_type, sub); regauth with binding
# `github` (owner 4242, main only, account gh:<repository>, label repository,
# session 3600) and binding `gitlab` (namespace 77, branches only); the ACL
# grants push and pull on ${labels:repository}.
#
# Tests:
#   keys-discovered     regauth fetched both issuers' keys at start (log), and
#                       `regauth check` warns about neither
#   skopeo-push         `skopeo copy --dest-creds github:$ID_TOKEN` pushes
#                       ci-org/app:v1 (the token's repository) and is refused
#                       for ci-org/other; the audit line names the binding
#   refusals            other owner id, other ref, other audience, expired,
#                       a token of the other issuer as github: each 401, the
#                       log names the check (require, aud, exp, iss)
#   gitlab-push         a GitLab-shaped token through binding gitlab pushes
#                       gl-group/proj:v1; a tag ref (ref_type tag) is refused
#   token-exchange      curl RFC 8693 exchange -> 200, issued_token_type
#                       access_token, access = what the ACL grants gh:ci-org/app
#   docker-login        `docker login -u github` with an ID token -> an
#                       identity token (refresh token) stored, no ID token
#   docker-after-expiry the ID token is now expired (curl: 401 check=exp);
#                       docker push and pull still work through the refresh
#                       token, every token request a refresh grant
# Every ID token is recorded as a secret: secrets.sh then proves none appears
# in any regauth log.

F_OWNER_ID=4242
F_OWNER_OTHER=4243
F_NAMESPACE_ID=77

# ------------------------------------------------------------------ setup ---

# f_start_issuer NAME PORT — start tests/e2e/oidc/issuer.mjs on PORT (PID in
# BG_PID) and wait for its discovery document.
f_start_issuer() {
	local name=$1 port=$2 log=$E2E_LOGS/federation_issuer-$1.log
	start_bg "$log" node "$E2E_DIR/oidc/issuer.mjs" "$port"
	wait_http "http://127.0.0.1:$port/.well-known/openid-configuration" 200 "$BG_PID" 20 ||
		{
			SETUP_ERR="OIDC issuer $name did not start: $(tail -n2 "$log" | tr '\n' ' ')"
			return 1
		}
}

# federation_setup_up — issuers, key, configs, regauth, registry.
federation_setup_up() {
	F_DIR="$E2E_TMP/federation"
	local keys="$F_DIR/keys" log="$E2E_LOGS/federation_startup.log"
	SETUP_ERR=""
	mkdir -p "$keys"
	if ! command -v node >/dev/null; then
		SETUP_ERR="node is missing: run tests/e2e/deps.sh (installs nodejs, npm and tests/e2e/oidc's packages)"
		return 1
	fi
	if [[ ! -d "$E2E_DIR/oidc/node_modules/oauth2-mock-server" ]]; then
		SETUP_ERR="oauth2-mock-server is not installed: run tests/e2e/deps.sh (or: cd tests/e2e/oidc && npm ci)"
		return 1
	fi
	if ! "$REGAUTH" keygen --out "$keys" --alg ES256 >>"$log" 2>&1; then
		SETUP_ERR="regauth keygen failed: $(tail -n1 "$log")"
		return 1
	fi
	local ap rp gp lp
	free_ports ap rp gp lp || return 1
	F_GH="http://127.0.0.1:$gp" F_GL="http://127.0.0.1:$lp"
	f_start_issuer gh "$gp" || return 1
	F_GH_PID=$BG_PID
	f_start_issuer gl "$lp" || return 1
	F_GL_PID=$BG_PID

	F_BASE="http://127.0.0.1:$ap"
	F_AUTH_URL="$F_BASE/auth"
	F_REG="127.0.0.1:$rp"
	F_SVC="e2e-registry-federation"
	cat >"$F_DIR/regauth.yml" <<EOF
server:
  addr: "127.0.0.1:$ap"
token:
  issuer: "$ISSUER"
  expiration: 900
  certificate: "$keys/token.pem"
  key: "$keys/token.key"
federation:
  - name: github
    issuer: $F_GH
    audience: $F_SVC
    max_age: 600
    require:
      repository_owner_id: "$F_OWNER_ID"
      ref: "refs/heads/main"
    account: "gh:\${claims:repository}"
    labels: {repository: "\${claims:repository}", ref: "\${claims:ref}"}
    session: 3600
  - name: gitlab
    issuer: $F_GL
    audience: $F_SVC
    max_age: 600
    require:
      namespace_id: "$F_NAMESPACE_ID"
      ref_type: branch
    account: "gl:\${claims:project_path}"
    labels: {repository: "\${claims:project_path}"}
acl:
  - match: {account: "/^(gh|gl):/", name: "\${labels:repository}"}
    actions: ["push", "pull"]
    comment: "a CI job pushes its own repository"
EOF
	write_registry_config "$F_DIR/registry.yml" "$F_DIR/registry-data" "$F_REG" "$F_AUTH_URL" "$F_SVC" "$keys/token.pem"
	if ! "$REGAUTH" check --config "$F_DIR/regauth.yml" >"$F_DIR/check.out" 2>&1; then
		SETUP_ERR="regauth check rejects $F_DIR/regauth.yml: $(tail -n1 "$F_DIR/check.out")"
		return 1
	fi
	cat "$F_DIR/check.out" >>"$log"
	F_REGAUTH_LOG="$E2E_LOGS/federation_regauth.log"
	setup_regauth "$F_REGAUTH_LOG" "$F_DIR/regauth.yml" "$F_BASE" "$log" || return 1
	F_REGAUTH_PID=$BG_PID
	F_REGISTRY_LOG="$E2E_LOGS/federation_registry.log"
	setup_registry "$F_REGISTRY_LOG" "$F_DIR/registry.yml" "http://$F_REG" "$log" || return 1
	F_REGISTRY_PID=$BG_PID
	export F_DIR F_BASE F_AUTH_URL F_REG F_SVC F_GH F_GL F_REGAUTH_LOG
	return 0
}

federation_setup_down() {
	stop_vars F_REGISTRY_PID F_REGAUTH_PID F_GH_PID F_GL_PID
}

# ---------------------------------------------------------------- helpers ---

# f_id_token ISSUER_URL CLAIMS_JSON [TTL] — an ID token from the issuer for
# audience $F_SVC with CLAIMS_JSON added (exp = iat + TTL, default 300),
# printed and recorded as a secret.
f_id_token() {
	local tok
	tok=$(curl -sS --max-time 10 "$1/token" -d grant_type=client_credentials \
		--data-urlencode "aud=${F_AUD:-$F_SVC}" --data-urlencode "e2e_claims=$2" \
		-d "e2e_ttl=${3:-300}" | jq -r '.access_token // empty') || return 1
	[[ "$tok" == eyJ* ]] || return 1
	record_secret "$tok"
	printf '%s\n' "$tok" >>"$F_DIR/id_tokens"
	printf '%s' "$tok"
}

# f_github_claims REPOSITORY [OWNER_ID] [REF] — GitHub Actions' claims.
f_github_claims() {
	local repo=$1 owner=${2:-$F_OWNER_ID} ref=${3:-refs/heads/main}
	jq -nc --arg r "$repo" --arg o "$owner" --arg ref "$ref" \
		'{sub: "repo:\($r):ref:\($ref)", repository: $r, repository_owner: ($r|split("/")[0]),
		  repository_owner_id: $o, ref: $ref, workflow: "ci", event_name: "push"}'
}

# f_gitlab_claims PROJECT_PATH [REF_TYPE] — GitLab CI's claims.
f_gitlab_claims() {
	local p=$1 rt=${2:-branch}
	jq -nc --arg p "$p" --arg rt "$rt" --arg ns "$F_NAMESPACE_ID" \
		'{sub: "project_path:\($p):ref_type:\($rt):ref:main", project_path: $p,
		  namespace_id: $ns, namespace_path: ($p|split("/")[0]), ref: "main", ref_type: $rt}'
}

# f_get USER PASSWORD SCOPE — GET the token endpoint with Basic USER:PASSWORD;
# status in F_CODE, body in $F_DIR/last.body.
f_get() {
	F_CODE=$(curl -sS --max-time 20 -o "$F_DIR/last.body" -w '%{http_code}' -u "$1:$2" -G "$F_AUTH_URL" \
		--data-urlencode "service=$F_SVC" --data-urlencode "scope=$3") || fail "curl GET $F_AUTH_URL failed"
	r_record_tokens "$F_DIR/last.body"
}

# f_mark / f_log_since MARK — regauth's log lines after MARK.
f_mark() { log_mark "$F_REGAUTH_LOG"; }
f_log_since() { log_since "$F_REGAUTH_LOG" "$1"; }

# f_expect_refusal MARK BINDING CHECK — regauth logged a refused federated
# login under BINDING for CHECK since MARK.
f_expect_refusal() {
	local line
	log_has "$F_REGAUTH_LOG" "$1" 'federated login refused' "binding=$2" "check=$3" || true
	line=$(f_log_since "$1" | grep -F 'federated login refused' | grep -F "binding=$2" | grep -F "check=$3" | tail -n1)
	[[ -n "$line" ]] || fail "no 'federated login refused binding=$2 check=$3' line; saw: $(f_log_since "$1" | grep -F 'federated' | head -n3 | cut -c1-300)"
	note "refusal logged: $(cut -c1-300 <<<"$line")"
}

# ------------------------------------------------------------------ tests ---

t_f_keys_discovered() {
	local i
	for i in "$F_GH" "$F_GL"; do
		log_has "$F_REGAUTH_LOG" 0 'federation keys fetched' "$i/.well-known/openid-configuration" ||
			fail "regauth did not log fetching the keys of $i: $(grep -F federation "$F_REGAUTH_LOG" | head -n3 | cut -c1-300)"
	done
	if grep -F 'cannot be fetched' "$F_DIR/check.out"; then
		fail "regauth check could not fetch an issuer's keys"
	fi
	assert_contains "regauth check output" "$(cat "$F_DIR/check.out")" 'federation: "github" trusts'
}

t_f_skopeo_push() {
	local tok mark
	tok=$(f_id_token "$F_GH" "$(f_github_claims ci-org/app)") || fail "no ID token from the issuer"
	note "ID token claims: $(jwt_part "$tok" 1)"
	mark=$(f_mark)
	expect_ok "skopeo push ci-org/app:v1 as github" sk copy --dest-tls-verify=false \
		--dest-creds "github:$tok" "oci:$IMG_V1:v1" "docker://$F_REG/ci-org/app:v1"
	log_has "$F_REGAUTH_LOG" "$mark" 'regauth::audit' 'account="gh:ci-org/app"' 'binding="github"' \
		'repository:ci-org/app:[pull,push]' ||
		fail "no audit line granting gh:ci-org/app push under binding github: $(f_log_since "$mark" | grep -F audit | head -n2 | cut -c1-400)"
	expect_auth_denied "skopeo push ci-org/other:v1 with the same token" sk copy --dest-tls-verify=false \
		--dest-creds "github:$tok" "oci:$IMG_V1:v1" "docker://$F_REG/ci-org/other:v1"
	expect_ok "skopeo inspect ci-org/app:v1" sk inspect --tls-verify=false --creds "github:$tok" \
		"docker://$F_REG/ci-org/app:v1"
	assert_contains "inspect output" "$E2E_OUT" "$DIG_V1"
}

t_f_refusals() {
	local mark tok
	local scope="repository:ci-org/app:pull"
	mark=$(f_mark)
	tok=$(f_id_token "$F_GH" "$(f_github_claims ci-org/app "$F_OWNER_OTHER")") || fail "no ID token"
	f_get github "$tok" "$scope"
	assert_eq "status with another owner id" 401 "$F_CODE"
	f_expect_refusal "$mark" github require
	expect_auth_denied "skopeo push with another owner id" sk copy --dest-tls-verify=false \
		--dest-creds "github:$tok" "oci:$IMG_V1:v1" "docker://$F_REG/ci-org/app:v2"

	mark=$(f_mark)
	tok=$(f_id_token "$F_GH" "$(f_github_claims ci-org/app "$F_OWNER_ID" refs/heads/feature)") || fail "no ID token"
	f_get github "$tok" "$scope"
	assert_eq "status with another ref" 401 "$F_CODE"
	f_expect_refusal "$mark" github require

	mark=$(f_mark)
	tok=$(F_AUD=another-service f_id_token "$F_GH" "$(f_github_claims ci-org/app)") || fail "no ID token"
	f_get github "$tok" "$scope"
	assert_eq "status with another audience" 401 "$F_CODE"
	f_expect_refusal "$mark" github aud

	mark=$(f_mark)
	tok=$(f_id_token "$F_GH" "$(jq -c --argjson t "$(date +%s)" '. + {iat: ($t - 200), nbf: ($t - 200), exp: ($t - 100)}' <<<"$(f_github_claims ci-org/app)")") ||
		fail "no ID token"
	f_get github "$tok" "$scope"
	assert_eq "status with an expired token" 401 "$F_CODE"
	f_expect_refusal "$mark" github exp

	mark=$(f_mark)
	tok=$(f_id_token "$F_GL" "$(f_gitlab_claims gl-group/proj)") || fail "no ID token"
	f_get github "$tok" "$scope"
	assert_eq "status of a GitLab token presented as github" 401 "$F_CODE"
	f_expect_refusal "$mark" github iss
	assert_eq "token in a 401 body" "" "$(jq -r '.token // empty' "$F_DIR/last.body" 2>/dev/null)"
}

t_f_gitlab_push() {
	local tok mark
	tok=$(f_id_token "$F_GL" "$(f_gitlab_claims gl-group/proj)") || fail "no ID token from the GitLab-shaped issuer"
	mark=$(f_mark)
	expect_ok "skopeo push gl-group/proj:v1 as gitlab" sk copy --dest-tls-verify=false \
		--dest-creds "gitlab:$tok" "oci:$IMG_V1:v1" "docker://$F_REG/gl-group/proj:v1"
	log_has "$F_REGAUTH_LOG" "$mark" 'regauth::audit' 'account="gl:gl-group/proj"' 'binding="gitlab"' ||
		fail "no audit line for gl:gl-group/proj under binding gitlab"
	tok=$(f_id_token "$F_GL" "$(f_gitlab_claims gl-group/proj tag)") || fail "no ID token"
	mark=$(f_mark)
	expect_auth_denied "skopeo push with a tag pipeline's token" sk copy --dest-tls-verify=false \
		--dest-creds "gitlab:$tok" "oci:$IMG_V1:v1" "docker://$F_REG/gl-group/proj:v2"
	f_expect_refusal "$mark" gitlab require
}

t_f_token_exchange() {
	local tok code claims
	tok=$(f_id_token "$F_GH" "$(f_github_claims ci-org/app)") || fail "no ID token"
	code=$(curl -sS --max-time 20 -o "$F_DIR/exchange.body" -w '%{http_code}' "$F_AUTH_URL" \
		--data-urlencode grant_type=urn:ietf:params:oauth:grant-type:token-exchange \
		--data-urlencode "subject_token=$tok" \
		--data-urlencode subject_token_type=urn:ietf:params:oauth:token-type:id_token \
		--data-urlencode "service=$F_SVC" \
		--data-urlencode "scope=repository:ci-org/app:pull,push repository:ci-org/other:pull") || fail "curl failed"
	r_record_tokens "$F_DIR/exchange.body"
	assert_eq "status of the token exchange" 200 "$code"
	assert_eq "issued_token_type" "urn:ietf:params:oauth:token-type:access_token" \
		"$(jq -r .issued_token_type "$F_DIR/exchange.body")"
	assert_eq "token_type" "Bearer" "$(jq -r .token_type "$F_DIR/exchange.body")"
	claims=$(jwt_part "$(jq -r .access_token "$F_DIR/exchange.body")" 1) || fail "access_token is not a JWT"
	note "claims: $claims"
	assert_eq "sub" "gh:ci-org/app" "$(jq -r .sub <<<"$claims")"
	assert_eq "aud" "$F_SVC" "$(jq -r .aud <<<"$claims")"
	assert_eq "access" \
		'[{"type":"repository","name":"ci-org/app","actions":["pull","push"]},{"type":"repository","name":"ci-org/other","actions":[]}]' \
		"$(jq -c '.access|map(.actions|=sort)' <<<"$claims")"
	# With the token the registry answers: a catalog-free check of the tag list.
	code=$(curl -sS -o /dev/null -w '%{http_code}' --max-time 10 \
		-H "Authorization: Bearer $(jq -r .access_token "$F_DIR/exchange.body")" \
		"http://$F_REG/v2/ci-org/app/tags/list") || fail "curl registry failed"
	assert_eq "registry status with the exchanged token" 200 "$code"
}

# f_dk_as — docker CLI config for the CI job.
f_dk_as() {
	[[ -n "${DK_READY:-}" ]] || fail "not run: docker/startup failed"
	DK_CONFIG="$F_DIR/docker-config"
	mkdir -p "$DK_CONFIG"
}

f_identity_token() {
	[[ -s "$DK_CONFIG/config.json" ]] || return 0
	jq -r --arg r "$F_REG" '.auths[$r].identitytoken // empty' "$DK_CONFIG/config.json"
}

# The ID token of docker-login: issued 110 s ago, expired 50 s ago, so
# still inside the 60 s clock-skew leeway at login and past it ten seconds
# later, when docker-after-expiry runs (no minute-long sleep in the suite).
t_f_docker_login() {
	f_dk_as
	local t tok mark it
	t=$(date +%s)
	tok=$(f_id_token "$F_GH" "$(jq -c --argjson t "$t" '. + {iat: ($t - 110), nbf: ($t - 110), exp: ($t - 50)}' <<<"$(f_github_claims ci-org/app)")") ||
		fail "no ID token"
	printf '%s' "$tok" >"$F_DIR/docker-login.id-token"
	echo $((t - 50)) >"$F_DIR/docker-login.exp"
	mark=$(f_mark)
	note "docker login -u github --password-stdin $F_REG (the ID token on stdin)"
	printf '%s' "$tok" | dk login --username github --password-stdin "$F_REG" >"$E2E_TMP/out" 2>"$E2E_TMP/err" ||
		fail "docker login failed: $(last_err_line)"
	cat "$E2E_TMP/out" "$E2E_TMP/err" >&2
	assert_contains "docker login output" "$(cat "$E2E_TMP/out")" "Login Succeeded"
	it=$(f_identity_token)
	[[ "$it" == rt1.* ]] || fail "docker stored no regauth refresh token as identitytoken: $(jq -c . "$DK_CONFIG/config.json")"
	record_secret "$it"
	if grep -qF -- "$tok" "$DK_CONFIG/config.json"; then
		fail "config.json holds the ID token"
	fi
	log_has "$F_REGAUTH_LOG" "$mark" 'regauth::audit' 'binding="github"' 'refresh_token_issued=true' ||
		fail "no audit line of a federated login that issued a refresh token"
}

t_f_docker_after_expiry() {
	f_dk_as
	[[ -n "$(f_identity_token)" ]] || fail "no identity token stored (docker-login failed?)"
	local exp tok mark lines pushed
	exp=$(cat "$F_DIR/docker-login.exp") tok=$(cat "$F_DIR/docker-login.id-token")
	while (($(date +%s) <= exp + 61)); do sleep 1; done
	mark=$(f_mark)
	f_get github "$tok" "repository:ci-org/app:pull"
	assert_eq "status of the ID token docker logged in with, now expired" 401 "$F_CODE"
	f_expect_refusal "$mark" github exp

	expect_ok "remove local images" dk_rmi_all
	mark=$(f_mark)
	expect_ok "docker pull $F_REG/ci-org/app:v1" dk pull "$F_REG/ci-org/app:v1"
	assert_contains "pull output" "$E2E_OUT" "Digest: $DIG_V1"
	expect_ok "docker tag" dk tag "$F_REG/ci-org/app:v1" "$F_REG/ci-org/app:docker"
	expect_ok "docker push $F_REG/ci-org/app:docker" dk push "$F_REG/ci-org/app:docker"
	pushed=$(grep -Eo 'digest: sha256:[0-9a-f]{64}' <<<"$E2E_OUT" | tail -n1 | cut -d' ' -f2)
	[[ -n "$pushed" ]] || fail "docker push printed no digest"
	expect_ok "remove local images" dk_rmi_all
	expect_ok "docker pull $F_REG/ci-org/app:docker" dk pull "$F_REG/ci-org/app:docker"
	assert_contains "pull output" "$E2E_OUT" "Digest: $pushed"
	lines=$(f_log_since "$mark" | grep -F 'regauth::audit')
	[[ -n "$lines" ]] || fail "regauth saw no token request"
	if grep -v 'grant="refresh_token"' <<<"$lines" | grep -q .; then
		fail "token requests other than refresh grants: $(grep -v 'grant="refresh_token"' <<<"$lines" | head -n1 | cut -c1-300)"
	fi
	if grep -v 'outcome="issued"' <<<"$lines" | grep -q .; then
		fail "refused token requests: $(grep -v 'outcome="issued"' <<<"$lines" | head -n1 | cut -c1-300)"
	fi
	grep -qF 'account="gh:ci-org/app"' <<<"$lines" || fail "refreshed tokens are not for gh:ci-org/app"
	note "$(wc -l <<<"$lines") token requests after the ID token expired, all refresh grants, all issued"
	dk_rmi_all >/dev/null 2>&1 || true
}

# ----------------------------------------------------------------- driver ---

FEDERATION_SCENARIOS=(
	keys-discovered:t_f_keys_discovered
	skopeo-push:t_f_skopeo_push
	refusals:t_f_refusals
	gitlab-push:t_f_gitlab_push
	token-exchange:t_f_token_exchange
	docker-login:t_f_docker_login
	docker-after-expiry:t_f_docker_after_expiry
)

# run_federation_setup — needs docker.sh's dockerd up for the docker tests.
run_federation_setup() {
	local up=0
	echo "== setup federation: OIDC ID tokens from two oauth2-mock-server issuers (GitHub- and GitLab-shaped)"
	federation_setup_up || up=$?
	run_scenarios federation "$up" "${FEDERATION_SCENARIOS[@]}"
	federation_setup_down
}
