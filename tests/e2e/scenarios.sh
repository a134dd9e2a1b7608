# shellcheck shell=bash disable=SC2034 # SETUP_ERR is read by run_scenarios (lib.sh)
# scenarios.sh — the end-to-end scenarios: bring up regauth + a distribution
# registry for one "setup" (key algorithm / kid / x5c variant), then exercise
# them with skopeo, curl, podman and buildah.
#
# Sourced by run.sh after lib.sh and mkimage.sh. Every test function runs in a
# subshell (see run_test) and talks to the globals set by setup_up.

# ------------------------------------------------------------ fixed data ---

ISSUER="regauth-e2e"
ALICE_PW="alice-e2e-Pw1"
BOB_PW="bob-e2e-Pw2"
CAROL_PW="carol-e2e-Pw3"
WRONG_PW="not-the-password"

# prepare_fixtures — the test images, built once and pushed to every setup.
# Runs in the main shell. (Password hashes come from t_cli_hash.)
prepare_fixtures() {
	local fx="$E2E_TMP/fixtures"
	mkdir -p "$fx"
	# Three images with distinct content, hence distinct layers and digests:
	# v1 is the general-purpose image, v2 exists to be deleted, base is pushed
	# to exactly one repository so a blob mount has exactly one source.
	IMG_V1="$fx/img-v1"
	IMG_V2="$fx/img-v2"
	IMG_BASE="$fx/img-base"
	DIG_V1=$(mkimage "$IMG_V1" v1 "e2e image v1")
	DIG_V2=$(mkimage "$IMG_V2" v2 "e2e image v2")
	DIG_BASE=$(mkimage "$IMG_BASE" v1 "e2e base image for blob mounts")
	BASE_LAYER=$(jq -r '.layers[0].digest' "$IMG_BASE/blobs/sha256/${DIG_BASE#sha256:}")
	V1_LAYER=$(jq -r '.layers[0].digest' "$IMG_V1/blobs/sha256/${DIG_V1#sha256:}")
	export IMG_V1 IMG_V2 IMG_BASE DIG_V1 DIG_V2 DIG_BASE BASE_LAYER V1_LAYER
}

# t_cli_hash — `regauth hash` turns each password into a bcrypt hash.
t_cli_hash() {
	local who pw h
	for who in alice bob carol; do
		case $who in
		alice) pw=$ALICE_PW ;;
		bob) pw=$BOB_PW ;;
		carol) pw=$CAROL_PW ;;
		esac
		# shellcheck disable=SC2016 # expanded by sh -c, on purpose
		expect_ok "regauth hash ($who)" sh -c 'printf "%s" "$1" | "$REGAUTH" hash' _ "$pw"
		h=$(printf '%s' "$E2E_OUT" | tr -d '\r\n')
		[[ "$h" =~ ^\$2[aby]\$[0-9]{2}\$[./A-Za-z0-9]{53}$ ]] ||
			fail "regauth hash output is not a bcrypt hash: '$h'"
		printf '%s\n' "$h" >"$E2E_TMP/fixtures/$who.hash"
	done
}

# ----------------------------------------------------------------- setups ---

# setup_up NAME ALG TOKEN_EXTRA — keygen, configs, start regauth and the
# registry, wait until both answer. Sets the globals the tests use. On error
# sets SETUP_ERR and returns 1 (runs in an `if`, so every step is checked).
setup_up() {
	S_NAME=$1 S_ALG=$2
	local token_extra=$3
	S_DIR="$E2E_TMP/$S_NAME"
	S_KEYS="$S_DIR/keys"
	SVC="e2e-registry-$S_NAME"
	SETUP_ERR=""
	mkdir -p "$S_DIR" "$S_KEYS"
	local log="$E2E_LOGS/${S_NAME}_startup.log"

	if ! "$REGAUTH" keygen --out "$S_KEYS" --alg "$S_ALG" >>"$log" 2>&1; then
		SETUP_ERR="regauth keygen --out $S_KEYS --alg $S_ALG failed: $(tail -n1 "$log")"
		return 1
	fi
	if [[ ! -s "$S_KEYS/token.key" || ! -s "$S_KEYS/token.pem" ]]; then
		SETUP_ERR="regauth keygen did not write $S_KEYS/token.key and token.pem"
		return 1
	fi
	if ! openssl x509 -in "$S_KEYS/token.pem" -noout >>"$log" 2>&1; then
		SETUP_ERR="$S_KEYS/token.pem is not a PEM certificate (openssl x509 fails)"
		return 1
	fi

	local h_alice h_bob h_carol
	if ! h_alice=$(cat "$E2E_TMP/fixtures/alice.hash" 2>/dev/null) ||
		! h_bob=$(cat "$E2E_TMP/fixtures/bob.hash" 2>/dev/null) ||
		! h_carol=$(cat "$E2E_TMP/fixtures/carol.hash" 2>/dev/null); then
		SETUP_ERR="no password hashes (cli/hash failed)"
		return 1
	fi

	local ap rp
	free_ports ap rp || return 1
	AUTH_URL="http://127.0.0.1:$ap/auth"
	AUTH_BASE="http://127.0.0.1:$ap"
	REG="127.0.0.1:$rp"

	# docker_auth-format configuration (README, "Configuration").
	cat >"$S_DIR/regauth.yml" <<EOF
server:
  addr: "127.0.0.1:$ap"
token:
  issuer: "$ISSUER"
  expiration: 900
  certificate: "$S_KEYS/token.pem"
  key: "$S_KEYS/token.key"
$token_extra
users:
  "": {}
  alice: {password: "$h_alice"}
  bob: {password: "$h_bob"}
  carol: {password: "$h_carol"}
acl:
  - match: {account: "alice"}
    actions: ["*"]
    comment: "alice is admin"
  - match: {account: "bob", name: "team/*"}
    actions: ["pull"]
    comment: "bob may only pull team repositories"
  - match: {account: "carol", name: "carol/*"}
    actions: ["push", "pull"]
    comment: "carol owns carol/* and nothing else"
  - match: {account: "", name: "public/*"}
    actions: ["pull"]
    comment: "anonymous pulls of public/*"
EOF

	# distribution 2.8 configuration: plain HTTP on loopback, bearer auth
	# delegated to regauth, deletes enabled.
	write_registry_config "$S_DIR/registry.yml" "$S_DIR/registry-data" "127.0.0.1:$rp" "$AUTH_URL" "$SVC" "$S_KEYS/token.pem" delete

	REGAUTH_LOG="$E2E_LOGS/${S_NAME}_regauth.log"
	setup_regauth "$REGAUTH_LOG" "$S_DIR/regauth.yml" "$AUTH_BASE" "$log" || return 1
	REGAUTH_PID=$BG_PID

	E2E_REGISTRY_LOG="$E2E_LOGS/${S_NAME}_registry.log"
	setup_registry "$E2E_REGISTRY_LOG" "$S_DIR/registry.yml" "http://$REG" "$log" || return 1
	E2E_REGISTRY_PID=$BG_PID
	export S_NAME S_ALG S_DIR S_KEYS SVC AUTH_URL AUTH_BASE REG E2E_REGISTRY_LOG REGAUTH_LOG
	return 0
}

# setup_down — stop this setup's regauth and registry (by PID).
setup_down() {
	stop_vars E2E_REGISTRY_PID REGAUTH_PID
}

# -------------------------------------------------------- token endpoint ---

# get_token USER PASS SCOPE — print the JSON token response (curl, GET).
# USER "" means anonymous.
get_token() {
	local -a auth=()
	[[ -n "$1" ]] && auth=(-u "$1:$2")
	curl -sS --max-time 20 -f "${auth[@]}" -G "$AUTH_URL" \
		--data-urlencode "service=$SVC" --data-urlencode "scope=$3"
}

# t_token_claims — the JWT regauth signs has the header this setup asks for
# (alg, libtrust kid recomputed with openssl, x5c = our certificate) and the
# claims distribution checks (iss, aud as a string, sub, exp, access).
t_token_claims() {
	expect_ok "token request (alice, registry:catalog:*)" get_token alice "$ALICE_PW" 'registry:catalog:*'
	local resp=$E2E_OUT tok hdr claims
	tok=$(jq -r '.token // empty' <<<"$resp")
	[[ -n "$tok" ]] || fail "no .token in response: $resp"
	assert_eq "expires_in is a positive number" true "$(jq '(.expires_in|type)=="number" and .expires_in>0' <<<"$resp")"
	assert_eq "access_token equals token" "$tok" "$(jq -r '.access_token // empty' <<<"$resp")"
	# containers/image rejects the whole response if issued_at is not RFC 3339.
	[[ "$(jq -r '.issued_at // empty' <<<"$resp")" =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})$ ]] ||
		fail "issued_at is not RFC 3339: $(jq -c .issued_at <<<"$resp")"
	hdr=$(jwt_part "$tok" 0) || fail "JWT header is not base64url: $tok"
	claims=$(jwt_part "$tok" 1) || fail "JWT claims are not base64url: $tok"
	note "header: $hdr"
	note "claims: $claims"

	assert_eq "header alg" "$S_ALG" "$(jq -r .alg <<<"$hdr")"
	case $S_NAME in
	*libtrust*)
		assert_eq "header kid (libtrust key ID of token.pem)" "$(libtrust_kid "$S_KEYS/token.pem")" "$(jq -r '.kid // empty' <<<"$hdr")"
		;;
	esac
	case $S_NAME in
	*x5c*)
		assert_eq "header x5c[0] (token.pem as DER)" "$(cert_der_b64 "$S_KEYS/token.pem")" "$(jq -r '.x5c[0] // empty' <<<"$hdr")"
		;;
	esac

	assert_eq "iss" "$ISSUER" "$(jq -r .iss <<<"$claims")"
	assert_eq "aud is a JSON string" "string" "$(jq -r '.aud|type' <<<"$claims")"
	assert_eq "aud" "$SVC" "$(jq -r .aud <<<"$claims")"
	assert_eq "sub" "alice" "$(jq -r .sub <<<"$claims")"
	assert_eq "exp/nbf/iat are integers, exp in the future" true \
		"$(jq --argjson now "$(date +%s)" '(.exp|type)=="number" and (.nbf|type)=="number" and (.iat|type)=="number" and .exp>$now and .nbf<=$now' <<<"$claims")"
	assert_eq "jti is a non-empty string" true "$(jq '(.jti|type)=="string" and (.jti|length)>0' <<<"$claims")"
	assert_eq "access" '[{"type":"registry","name":"catalog","actions":["*"]}]' "$(jq -c '.access' <<<"$claims")"
}

# t_token_bad_password — wrong credentials give 401 with a Basic challenge.
t_token_bad_password() {
	local hdrs="$S_DIR/bad-pw.headers" code
	code=$(curl -sS --max-time 20 -o "$S_DIR/bad-pw.body" -D "$hdrs" -w '%{http_code}' \
		-u "alice:$WRONG_PW" -G "$AUTH_URL" --data-urlencode "service=$SVC" \
		--data-urlencode "scope=repository:alice/app:pull") || fail "curl failed"
	cat "$hdrs" "$S_DIR/bad-pw.body" >&2
	assert_eq "status for a wrong password" 401 "$code"
	grep -qi '^www-authenticate: *basic' "$hdrs" || fail "401 without 'WWW-Authenticate: Basic ...' header"
}

# ------------------------------------------------------------------ skopeo ---

# t_skopeo_push — alice pushes the test images (also seeding public/ and
# team/ for the anonymous and bob scenarios).
t_skopeo_push() {
	local ref
	for ref in alice/app:v1 public/hello:v1 team/app:v1; do
		expect_ok "push $ref" sk copy --dest-tls-verify=false --dest-creds "alice:$ALICE_PW" \
			"oci:$IMG_V1:v1" "docker://$REG/$ref"
	done
	expect_ok "push alice/app:v2" sk copy --dest-tls-verify=false --dest-creds "alice:$ALICE_PW" \
		"oci:$IMG_V2:v2" "docker://$REG/alice/app:v2"
	expect_granted "$REGAUTH_LOG" alice "repository:alice/app:[pull,push]" "repository:team/app:[pull,push]"
}

# t_skopeo_inspect — alice inspects her image; the digest is the one we built.
t_skopeo_inspect() {
	expect_ok "inspect alice/app:v1" sk inspect --tls-verify=false --creds "alice:$ALICE_PW" "docker://$REG/alice/app:v1"
	assert_eq "digest of alice/app:v1" "$DIG_V1" "$(jq -r .Digest <<<"$E2E_OUT")"
	expect_granted "$REGAUTH_LOG" alice "repository:alice/app:[pull]"
}

# t_skopeo_list_tags — alice lists the tags of alice/app.
t_skopeo_list_tags() {
	expect_ok "list-tags alice/app" sk list-tags --tls-verify=false --creds "alice:$ALICE_PW" "docker://$REG/alice/app"
	assert_eq "tags of alice/app" "v1 v2" "$(jq -r '.Tags|sort|join(" ")' <<<"$E2E_OUT")"
	expect_granted "$REGAUTH_LOG" alice "repository:alice/app:[pull]"
}

# t_skopeo_delete — alice deletes alice/app:v2 (needs the delete action, here
# through "*"); v2 is then gone and v1 untouched.
t_skopeo_delete() {
	expect_ok "delete alice/app:v2" sk delete --tls-verify=false --creds "alice:$ALICE_PW" "docker://$REG/alice/app:v2"
	expect_ok "list-tags after delete" sk list-tags --tls-verify=false --creds "alice:$ALICE_PW" "docker://$REG/alice/app"
	assert_eq "tags after delete" "v1" "$(jq -r '.Tags|sort|join(" ")' <<<"$E2E_OUT")"
	local rc=0
	sk inspect --tls-verify=false --creds "alice:$ALICE_PW" "docker://$REG/alice/app:v2" >/dev/null 2>"$E2E_TMP/err" || rc=$?
	cat "$E2E_TMP/err" >&2
	[[ $rc -ne 0 ]] || fail "alice/app:v2 still inspectable after delete"
	grep -Eqi 'manifest unknown|not found' "$E2E_TMP/err" || fail "inspect after delete failed for another reason: $(last_err_line)"
	expect_granted "$REGAUTH_LOG" alice "repository:alice/app:[*]"
}

# t_skopeo_anon_pull_public — no credentials, public/*: inspect and copy work.
t_skopeo_anon_pull_public() {
	expect_ok "anonymous inspect public/hello:v1" sk inspect --tls-verify=false --no-creds "docker://$REG/public/hello:v1"
	assert_eq "digest of public/hello:v1" "$DIG_V1" "$(jq -r .Digest <<<"$E2E_OUT")"
	rm -rf "$S_DIR/anon-public"
	expect_ok "anonymous copy public/hello:v1 to dir:" sk copy --src-tls-verify=false --src-no-creds \
		"docker://$REG/public/hello:v1" "dir:$S_DIR/anon-public"
	[[ -s "$S_DIR/anon-public/${V1_LAYER#sha256:}" ]] || fail "pulled layer ${V1_LAYER} missing in dir:"
	tar -xzOf "$S_DIR/anon-public/${V1_LAYER#sha256:}" hello.txt | grep -q "e2e image v1" ||
		fail "pulled layer does not hold the expected hello.txt"
	expect_granted "$REGAUTH_LOG" "" "repository:public/hello:[pull]"
}

# t_skopeo_anon_pull_private_denied — no credentials, alice/*: refused.
t_skopeo_anon_pull_private_denied() {
	expect_auth_denied "anonymous inspect alice/app:v1" sk inspect --tls-verify=false --no-creds "docker://$REG/alice/app:v1"
	expect_auth_denied "anonymous copy alice/app:v1" sk copy --src-tls-verify=false --src-no-creds \
		"docker://$REG/alice/app:v1" "dir:$S_DIR/anon-private"
	expect_granted "$REGAUTH_LOG" "" "repository:alice/app:[]"
}

# t_skopeo_wrong_password_denied — a wrong password is an auth error.
t_skopeo_wrong_password_denied() {
	expect_auth_denied "inspect with a wrong password" sk inspect --tls-verify=false --creds "alice:$WRONG_PW" "docker://$REG/alice/app:v1"
	expect_auth_denied "push with a wrong password" sk copy --dest-tls-verify=false --dest-creds "alice:$WRONG_PW" \
		"oci:$IMG_V1:v1" "docker://$REG/alice/wrongpw:v1"
}

# t_skopeo_bob_pull_team — bob (pull on team/*) can inspect and pull.
t_skopeo_bob_pull_team() {
	expect_ok "bob inspects team/app:v1" sk inspect --tls-verify=false --creds "bob:$BOB_PW" "docker://$REG/team/app:v1"
	assert_eq "digest of team/app:v1" "$DIG_V1" "$(jq -r .Digest <<<"$E2E_OUT")"
	rm -rf "$S_DIR/bob-pull"
	expect_ok "bob copies team/app:v1 to dir:" sk copy --src-tls-verify=false --src-creds "bob:$BOB_PW" \
		"docker://$REG/team/app:v1" "dir:$S_DIR/bob-pull"
	[[ -s "$S_DIR/bob-pull/${V1_LAYER#sha256:}" ]] || fail "pulled layer missing"
	expect_granted "$REGAUTH_LOG" bob "repository:team/app:[pull]"
}

# t_skopeo_bob_push_denied — bob may not push to team/* nor read alice/*.
t_skopeo_bob_push_denied() {
	expect_auth_denied "bob pushes team/app:bob" sk copy --dest-tls-verify=false --dest-creds "bob:$BOB_PW" \
		"oci:$IMG_V2:v2" "docker://$REG/team/app:bob"
	expect_auth_denied "bob inspects alice/app:v1" sk inspect --tls-verify=false --creds "bob:$BOB_PW" "docker://$REG/alice/app:v1"
	expect_ok "list-tags team/app (alice)" sk list-tags --tls-verify=false --creds "alice:$ALICE_PW" "docker://$REG/team/app"
	assert_eq "tags of team/app after bob's refused push" "v1" "$(jq -r '.Tags|sort|join(" ")' <<<"$E2E_OUT")"
	expect_granted "$REGAUTH_LOG" bob "repository:team/app:[pull]" "repository:alice/app:[]"
}

# ----------------------------------------------------------------- catalog ---

# catalog_with USER PASS — token for registry:catalog:* then GET /v2/_catalog;
# prints "<status> <body>".
catalog_with() {
	local tok
	tok=$(get_token "$1" "$2" 'registry:catalog:*' | jq -r '.token // empty')
	[[ -n "$tok" ]] || {
		echo "no token for $1" >&2
		return 1
	}
	curl -sS --max-time 20 -o "$S_DIR/catalog.body" -w '%{http_code} ' \
		-H "Authorization: Bearer $tok" "http://$REG/v2/_catalog"
	cat "$S_DIR/catalog.body"
}

# t_catalog_alice — alice's token for registry:catalog:* lists repositories.
t_catalog_alice() {
	expect_ok "catalog as alice" catalog_with alice "$ALICE_PW"
	assert_eq "status of GET /v2/_catalog" 200 "${E2E_OUT%% *}"
	local repos
	repos=$(jq -r '.repositories|join(" ")' <<<"${E2E_OUT#* }") || fail "catalog body is not JSON: ${E2E_OUT#* }"
	assert_contains "catalog" " $repos " " alice/app "
	assert_contains "catalog" " $repos " " public/hello "
	assert_contains "catalog" " $repos " " team/app "
	expect_granted "$REGAUTH_LOG" alice "registry:catalog:[*]"
}

# t_catalog_bob_denied — bob gets a token (200) without catalog access, and
# the registry refuses the catalog with it.
t_catalog_bob_denied() {
	expect_ok "token request (bob, registry:catalog:*)" get_token bob "$BOB_PW" 'registry:catalog:*'
	local tok
	tok=$(jq -r '.token' <<<"$E2E_OUT")
	assert_eq "catalog actions granted to bob" "" "$(jwt_part "$tok" 1 | jq -r '[.access[]?|select(.type=="registry")|.actions[]]|join(",")')"
	expect_ok "catalog as bob" catalog_with bob "$BOB_PW"
	assert_eq "status of GET /v2/_catalog with bob's token" 401 "${E2E_OUT%% *}"
	assert_contains "error body" "$E2E_OUT" "UNAUTHORIZED"
	expect_granted "$REGAUTH_LOG" bob "registry:catalog:[]"
}

# ------------------------------------------------------------- blob mounts ---

# registry_log_mark — the current length (lines) of the registry's log, so a
# test can look only at the requests it caused (registry_log_since MARK).
registry_log_mark() { log_mark "$E2E_REGISTRY_LOG"; }
registry_log_since() { log_since "$E2E_REGISTRY_LOG" "$1"; }

# request_status MARK METHOD PATH — the distinct HTTP statuses the registry
# answered to "METHOD PATH" since MARK (from its combined-format access log),
# space-separated; empty if there was no such request.
request_status() {
	registry_log_since "$1" | grep -F "\"$2 $3 HTTP/1.1\"" |
		sed -E 's/.*HTTP\/1\.1" ([0-9]{3}) .*/\1/' | sort -u | tr '\n' ' ' | sed 's/ $//'
}

# mount_path REPO FROM DIGEST — the URL path of a cross-repository mount.
mount_path() {
	printf '/v2/%s/blobs/uploads/?from=%s&mount=%s' "$1" "${2//\//%2F}" "${3/:/%3A}"
}

# t_skopeo_blob_mount — alice copies alice/base -> alice/mounted; skopeo asks
# regauth for a token with the extra repository:alice/base:pull scope and the
# registry mounts the layer across repositories (201) instead of an upload.
t_skopeo_blob_mount() {
	expect_ok "push alice/base:v1" sk copy --dest-tls-verify=false --dest-creds "alice:$ALICE_PW" \
		"oci:$IMG_BASE:v1" "docker://$REG/alice/base:v1"
	local mark
	mark=$(registry_log_mark)
	expect_ok "copy alice/base:v1 -> alice/mounted:v1" sk copy --src-tls-verify=false --dest-tls-verify=false \
		--src-creds "alice:$ALICE_PW" --dest-creds "alice:$ALICE_PW" \
		"docker://$REG/alice/base:v1" "docker://$REG/alice/mounted:v1"
	assert_eq "registry status for POST $(mount_path alice/mounted alice/base "$BASE_LAYER")" 201 \
		"$(request_status "$mark" POST "$(mount_path alice/mounted alice/base "$BASE_LAYER")")"
	expect_ok "inspect alice/mounted:v1" sk inspect --tls-verify=false --creds "alice:$ALICE_PW" "docker://$REG/alice/mounted:v1"
	assert_eq "digest of alice/mounted:v1" "$DIG_BASE" "$(jq -r .Digest <<<"$E2E_OUT")"
	expect_granted "$REGAUTH_LOG" alice "repository:alice/mounted:[pull,push]" "repository:alice/base:[pull]"
}

# t_skopeo_blob_mount_denied_fallback — carol (push,pull on carol/* only)
# pushes the same image. skopeo knows the layer lives in alice/base, so it asks
# for repository:carol/app:pull,push plus repository:alice/base:pull, then
# checks the blob in alice/base with that token before mounting. regauth must
# grant the first scope and deny only the second (not fail the whole request):
# then the registry answers that HEAD with 401, skopeo gives up the mount and
# uploads the layer normally, and the push succeeds. (Had regauth failed the
# whole token request, skopeo would never send the HEAD.)
t_skopeo_blob_mount_denied_fallback() {
	local mark
	mark=$(registry_log_mark)
	expect_ok "carol pushes carol/app:v1" sk copy --dest-tls-verify=false --dest-creds "carol:$CAROL_PW" \
		"oci:$IMG_BASE:v1" "docker://$REG/carol/app:v1"
	assert_eq "registry status for carol's HEAD /v2/alice/base/blobs/$BASE_LAYER" 401 \
		"$(request_status "$mark" HEAD "/v2/alice/base/blobs/$BASE_LAYER")"
	assert_eq "registry status for carol's mount attempt (should never be sent)" "" \
		"$(request_status "$mark" POST "$(mount_path carol/app alice/base "$BASE_LAYER")")"
	expect_ok "carol inspects carol/app:v1" sk inspect --tls-verify=false --creds "carol:$CAROL_PW" "docker://$REG/carol/app:v1"
	assert_eq "digest of carol/app:v1" "$DIG_BASE" "$(jq -r .Digest <<<"$E2E_OUT")"
	expect_auth_denied "carol inspects alice/base:v1" sk inspect --tls-verify=false --creds "carol:$CAROL_PW" "docker://$REG/alice/base:v1"
	expect_granted "$REGAUTH_LOG" carol "repository:carol/app:[pull,push]" "repository:alice/base:[]"
}

# ------------------------------------------------------------------ podman ---

# Podman keeps its login in an explicit --authfile per setup.
podman_auth() { printf '%s' "$S_DIR/podman-auth.json"; }
podman_noauth() {
	printf '{"auths":{}}' >"$S_DIR/podman-empty-auth.json"
	printf '%s' "$S_DIR/podman-empty-auth.json"
}

# t_podman_login — podman login as alice stores credentials for the registry.
t_podman_login() {
	expect_ok "podman login" pm login --tls-verify=false --authfile "$(podman_auth)" \
		-u alice -p "$ALICE_PW" "$REG"
	jq -e --arg r "$REG" '.auths[$r].auth' "$(podman_auth)" >/dev/null ||
		fail "no credentials for $REG in $(podman_auth)"
	expect_granted "$REGAUTH_LOG" alice
}

# t_podman_login_wrong_password_denied — podman login with a wrong password.
t_podman_login_wrong_password_denied() {
	expect_auth_denied "podman login with a wrong password" pm login --tls-verify=false \
		--authfile "$S_DIR/podman-bad-auth.json" -u alice -p "$WRONG_PW" "$REG"
}

# t_podman_pull — podman pulls alice/app:v1 with the stored login.
t_podman_pull() {
	expect_ok "podman pull alice/app:v1" pm pull --tls-verify=false --authfile "$(podman_auth)" "$REG/alice/app:v1"
	expect_ok "podman image exists" pm image exists "$REG/alice/app:v1"
	expect_ok "podman image inspect" pm image inspect --format '{{.Digest}}' "$REG/alice/app:v1"
	assert_eq "digest of the pulled image" "$DIG_V1" "$E2E_OUT"
	expect_granted "$REGAUTH_LOG" alice "repository:alice/app:[pull]"
}

# t_podman_pull_anon_public — podman pulls public/hello:v1 without credentials.
t_podman_pull_anon_public() {
	expect_ok "anonymous podman pull public/hello:v1" pm pull --tls-verify=false --authfile "$(podman_noauth)" "$REG/public/hello:v1"
	expect_ok "podman image inspect" pm image inspect --format '{{.Digest}}' "$REG/public/hello:v1"
	assert_eq "digest of the pulled image" "$DIG_V1" "$E2E_OUT"
	expect_granted "$REGAUTH_LOG" "" "repository:public/hello:[pull]"
}

# t_podman_pull_anon_private_denied — ... but not alice/app:v1.
t_podman_pull_anon_private_denied() {
	expect_auth_denied "anonymous podman pull alice/app:v1" pm pull --tls-verify=false --authfile "$(podman_noauth)" "$REG/alice/app:v1"
	expect_granted "$REGAUTH_LOG" "" "repository:alice/app:[]"
}

# t_podman_push — podman pushes a re-tagged image as alice.
t_podman_push() {
	expect_ok "podman tag" pm tag "$REG/alice/app:v1" "$REG/alice/podman:v1"
	expect_ok "podman push alice/podman:v1" pm push --tls-verify=false --authfile "$(podman_auth)" "$REG/alice/podman:v1"
	expect_ok "inspect alice/podman:v1" sk inspect --tls-verify=false --creds "alice:$ALICE_PW" "docker://$REG/alice/podman:v1"
	assert_eq "layers of alice/podman:v1" "$V1_LAYER" "$(jq -r '.Layers|join(" ")' <<<"$E2E_OUT")"
	expect_granted "$REGAUTH_LOG" alice "repository:alice/podman:[pull,push]"
}

# t_podman_push_bob_denied — podman push with bob's credentials is refused.
t_podman_push_bob_denied() {
	expect_ok "podman tag" pm tag "$REG/alice/app:v1" "$REG/team/app:podman"
	expect_auth_denied "podman push team/app:podman as bob" pm push --tls-verify=false \
		--authfile "$(podman_noauth)" --creds "bob:$BOB_PW" "$REG/team/app:podman"
	expect_granted "$REGAUTH_LOG" bob "repository:team/app:[pull]"
}

# ----------------------------------------------------------------- buildah ---

# t_buildah_from — buildah pulls alice/app:v1 into a working container.
t_buildah_from() {
	expect_ok "buildah from alice/app:v1" bh from --tls-verify=false --creds "alice:$ALICE_PW" \
		--name "e2e-$S_NAME" "$REG/alice/app:v1"
	assert_eq "working container name" "e2e-$S_NAME" "$(tail -n1 <<<"$E2E_OUT")"
	expect_granted "$REGAUTH_LOG" alice "repository:alice/app:[pull]"
}

# t_buildah_push — buildah commits the container with a new label and pushes
# the new image as alice; skopeo sees the label.
t_buildah_push() {
	expect_ok "buildah config --label" bh config --label "e2e=buildah-$S_NAME" "e2e-$S_NAME"
	expect_ok "buildah commit" bh commit --quiet "e2e-$S_NAME" "localhost/e2e-buildah-$S_NAME:v1"
	expect_ok "buildah push alice/buildah:v1" bh push --tls-verify=false --creds "alice:$ALICE_PW" \
		"localhost/e2e-buildah-$S_NAME:v1" "docker://$REG/alice/buildah:v1"
	expect_ok "inspect alice/buildah:v1" sk inspect --tls-verify=false --creds "alice:$ALICE_PW" "docker://$REG/alice/buildah:v1"
	assert_eq "label on alice/buildah:v1" "buildah-$S_NAME" "$(jq -r '.Labels.e2e // empty' <<<"$E2E_OUT")"
	expect_granted "$REGAUTH_LOG" alice "repository:alice/buildah:[pull,push]"
}

# ----------------------------------------------------------------- driver ---

# The scenario list, in order (later ones rely on images pushed earlier).
SCENARIOS=(
	token-claims:t_token_claims
	token-bad-password:t_token_bad_password
	skopeo-push:t_skopeo_push
	skopeo-inspect:t_skopeo_inspect
	skopeo-list-tags:t_skopeo_list_tags
	skopeo-delete:t_skopeo_delete
	skopeo-anon-pull-public:t_skopeo_anon_pull_public
	skopeo-anon-pull-private-denied:t_skopeo_anon_pull_private_denied
	skopeo-wrong-password-denied:t_skopeo_wrong_password_denied
	skopeo-bob-pull-team:t_skopeo_bob_pull_team
	skopeo-bob-push-denied:t_skopeo_bob_push_denied
	catalog-alice:t_catalog_alice
	catalog-bob-denied:t_catalog_bob_denied
	skopeo-blob-mount:t_skopeo_blob_mount
	skopeo-blob-mount-denied-fallback:t_skopeo_blob_mount_denied_fallback
	podman-login:t_podman_login
	podman-login-wrong-password-denied:t_podman_login_wrong_password_denied
	podman-pull:t_podman_pull
	podman-pull-anon-public:t_podman_pull_anon_public
	podman-pull-anon-private-denied:t_podman_pull_anon_private_denied
	podman-push:t_podman_push
	podman-push-bob-denied:t_podman_push_bob_denied
	buildah-from:t_buildah_from
	buildah-push:t_buildah_push
)

# run_setup NAME ALG TOKEN_EXTRA DESCRIPTION — bring one setup up, run every
# scenario against it (optionally only those matching $E2E_ONLY), bring it down.
run_setup() {
	local up=0
	echo "== setup $1: $4"
	setup_up "$1" "$2" "$3" || up=$?
	run_scenarios "$1" "$up" "${SCENARIOS[@]}"
	setup_down
}
