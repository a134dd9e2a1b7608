# shellcheck shell=bash disable=SC2034 # SETUP_ERR is read by run_scenarios (lib.sh)
# mirror.sh — pull-through mirror scenarios: one distribution
# registry that stores Docker Hub under docker.io/... and GHCR under
# ghcr.io/..., two nginx mirror fronts on loopback that serve those prefixes
# as if they were the upstream registries, and regauth rebuilding the scopes
# (config `mirrors:` + `services:`).
#
# Every configuration file comes from examples/mirror/ (rendered with its
# render.sh), so the documented deployment is the tested one.
#
# Sourced by run.sh after lib.sh, mkimage.sh and scenarios.sh (uses their
# helpers, ISSUER and the fixture images). Entry point: run_mirror_setup.
#
# Setup `mirror` (one run): regauth (ES256, examples/mirror/regauth/config.yml
# with `services:` + `mirrors:` for docker.io and ghcr.io), docker-registry
# (service registry.local), nginx with the example fronts (hub on one port,
# ghcr on another), a second nginx from the same files in front of a stub
# upstream (Link header), and a containerd for ctr. Users: admin (`*`),
# alice (team acme), bob (team web); anonymous may pull docker.io/library/*.
#
# Tests:
#   seed                       admin pushes docker.io/library/debian:{12,latest},
#                              docker.io/someuser/private:v1, ghcr.io/{acme/app,web/site}:v1
#                              and acme/app:v1 directly to the registry
#   front-challenge            fronts map /v2/X -> /v2/<prefix>/X (/v2/ unchanged) and
#                              rewrite the 401 challenge: service="docker.io"|"ghcr.io",
#                              scope without the prefix; the registry's own challenge is untouched
#   token-docker-style         curl: service=docker.io, repository:library/debian:pull ->
#                              aud registry.local, access docker.io/library/debian [pull];
#                              the token works for HEAD/GET through the front, not for
#                              another repository (insufficient_scope challenge rewritten too)
#   token-podman-style         prefixed name with service=registry.local (as podman sends)
#                              and with service=docker.io: no double prefix
#   token-containerd-style     challenge scope + own scope (identical, or prefixed +
#                              unprefixed, or space-separated in one value) -> ONE access
#                              entry; pull + push on the two spellings merge
#   token-stays-under-prefix   acme/app via docker.io = docker.io/acme/app (denied), via
#                              ghcr.io = ghcr.io/acme/app; registry:catalog:* not rebuilt
#   token-services-allow-list  service evil.example / "" / docker.io.evil -> 400
#   skopeo-hub-anonymous       skopeo inspect + copy <hub-front>/library/debian:12, digest
#                              and layer content checked, blob served under docker.io/
#   skopeo-hub-denied          someuser/private (exists, ACL-denied) and acme/app (the
#                              registry's own repo) refused through the hub front
#   skopeo-ghcr-private        ghcr front: alice acme/app, bob web/site OK; anonymous,
#                              wrong password, bob acme/app, alice web/site refused
#   podman-pull-mirror         podman pull docker.io/library/debian:12 and ghcr.io/acme/app:v1
#                              with the example registries.conf (<registry>/docker.io,
#                              <registry>/ghcr.io) + auth.json keyed by the mirror location;
#                              `podman login <registry>/ghcr.io` writes such an entry
#   pull-mirror-denied         podman without credentials, skopeo with --creds only (not
#                              sent to mirrors), an ACL-denied name: the mirror says 401,
#                              the fallback to the real upstream hits the dead proxy
#   skopeo-registries-conf     skopeo --registries-conf with both example files (namespace
#                              mirrors on the registry; the fronts), checked in both logs
#   containerd-hosts-toml      ctr content fetch with the example certs.d/*/hosts.toml:
#                              docker.io anonymously, ghcr.io with --user; ?ns= passed on;
#                              anonymous ghcr refused, fallback ends at the dead proxy
#   front-tags                 tags/list through the front: body "name" without prefix,
#                              skopeo list-tags works; Link header rewritten (stub upstream)
#   front-refuses              POST/DELETE -> 403, /v2/_catalog -> 404, none reach the registry
#   docker-registry-mirrors    (with docker.sh) dockerd reloaded with the example
#                              daemon.json: docker pull debian:12 via the hub front; an
#                              ACL-denied name is refused and the fallback hits the dead proxy

M_SVC="registry.local"
M_ADMIN_PW="admin-mirror-Pw0"
M_ALICE_PW="alice-mirror-Pw1"
M_BOB_PW="bob-mirror-Pw2"
M_WRONG_PW="not-the-password"

# ------------------------------------------------------------------ setup ---

# mirror_setup_up — keygen, hashes, render examples/mirror, start regauth, the
# registry and nginx, wait until each answers. Sets SETUP_ERR and returns 1
# on any error.
mirror_setup_up() {
	M_DIR="$E2E_TMP/mirror"
	M_CONF="$M_DIR/conf"
	local keys="$M_DIR/keys" log="$E2E_LOGS/mirror_startup.log"
	SETUP_ERR=""
	mkdir -p "$M_DIR" "$keys"

	if ! "$REGAUTH" keygen --out "$keys" --alg ES256 >>"$log" 2>&1; then
		SETUP_ERR="regauth keygen failed: $(tail -n1 "$log")"
		return 1
	fi
	# bcrypt cost 4 keeps the many authenticated token requests cheap (a debug
	# build verifies cost 10 in ~0.4 s); production uses the default.
	local who pw h
	local -A hash=()
	for who in admin alice bob; do
		case $who in
		admin) pw=$M_ADMIN_PW ;;
		alice) pw=$M_ALICE_PW ;;
		bob) pw=$M_BOB_PW ;;
		esac
		if ! h=$(printf '%s' "$pw" | "$REGAUTH" hash --cost 4 2>>"$log"); then
			SETUP_ERR="regauth hash --cost 4 failed: $(tail -n1 "$log")"
			return 1
		fi
		hash[$who]=$h
	done

	local ap rp hp gp
	free_ports ap rp hp gp || return 1
	M_AUTH_URL="http://127.0.0.1:$ap/auth"
	M_REG="127.0.0.1:$rp"  # the registry itself (podman/skopeo namespace mirrors, admin pushes)
	M_HUB="127.0.0.1:$hp"  # nginx front: Docker Hub mirror (service docker.io, prefix docker.io)
	M_GHCR="127.0.0.1:$gp" # nginx front: GHCR mirror (service ghcr.io, prefix ghcr.io)

	if ! "$REPO_ROOT/examples/mirror/render.sh" "$M_CONF" \
		REGISTRY_LISTEN="$M_REG" REGISTRY_UPSTREAM="$M_REG" REGISTRY_HOST="$M_REG" \
		REGISTRY_SERVICE="$M_SVC" REGISTRY_DATA="$M_DIR/registry-data" HTTP_SECRET="e2e-not-a-secret" \
		REALM="$M_AUTH_URL" ISSUER="$ISSUER" REGAUTH_LISTEN="127.0.0.1:$ap" \
		TOKEN_KEY="$keys/token.key" TOKEN_CERT="$keys/token.pem" \
		ADMIN_HASH="${hash[admin]}" ALICE_HASH="${hash[alice]}" BOB_HASH="${hash[bob]}" \
		HUB_LISTEN="$M_HUB" HUB_SERVER_NAME=localhost GHCR_LISTEN="$M_GHCR" GHCR_SERVER_NAME=localhost \
		HUB_MIRROR="$M_HUB" GHCR_MIRROR="$M_GHCR" \
		HUB_MIRROR_URL="http://$M_HUB" GHCR_MIRROR_URL="http://$M_GHCR" INSECURE=true \
		ALICE_AUTH="$(printf '%s' "alice:$M_ALICE_PW" | base64 -w0)" >>"$log" 2>&1; then
		SETUP_ERR="examples/mirror/render.sh failed: $(tail -n1 "$log")"
		return 1
	fi

	# Client configuration: the suite's registries.conf header (no search
	# registries, short names off) + the example's tables.
	M_REGCONF="$M_DIR/registries.conf"
	M_REGCONF_FRONTS="$M_DIR/registries-via-fronts.conf"
	{
		printf 'unqualified-search-registries = []\nshort-name-mode = "disabled"\n\n'
		cat "$M_CONF/clients/registries.conf"
	} >"$M_REGCONF"
	{
		printf 'unqualified-search-registries = []\nshort-name-mode = "disabled"\n\n'
		cat "$M_CONF/clients/registries-via-fronts.conf"
	} >"$M_REGCONF_FRONTS"
	M_AUTHFILE="$M_CONF/clients/auth.json"
	M_NOAUTH="$M_DIR/empty-auth.json"
	printf '{"auths":{}}\n' >"$M_NOAUTH"
	if ! jq -e . "$M_AUTHFILE" >/dev/null 2>>"$log"; then
		SETUP_ERR="rendered auth.json is not JSON: $(tail -n1 "$log")"
		return 1
	fi

	M_REGAUTH_LOG="$E2E_LOGS/mirror_regauth.log"
	if ! "$REGAUTH" check --config "$M_CONF/regauth/config.yml" >>"$log" 2>&1; then
		SETUP_ERR="regauth check rejects examples/mirror/regauth/config.yml: $(tail -n1 "$log")"
		return 1
	fi
	setup_regauth "$M_REGAUTH_LOG" "$M_CONF/regauth/config.yml" "http://127.0.0.1:$ap" "$log" || return 1
	M_REGAUTH_PID=$BG_PID

	M_REGISTRY_LOG="$E2E_LOGS/mirror_registry.log"
	setup_registry "$M_REGISTRY_LOG" "$M_CONF/registry/config.yml" "http://$M_REG" "$log" || return 1
	M_REGISTRY_PID=$BG_PID

	# nginx in the foreground with its own prefix (logs, pid, temp paths),
	# started from the fresh render exactly as the example's README says:
	# render.sh made logs/ and tmp/, nothing else is prepared here.
	local ng="$M_CONF/nginx"
	if ! nginx -t -p "$ng/" -c "$ng/nginx.conf" >>"$log" 2>&1; then
		SETUP_ERR="nginx -t rejects examples/mirror/nginx: $(grep -i emerg "$log" | tail -n1)"
		return 1
	fi
	M_NGINX_LOG="$E2E_LOGS/mirror_nginx.log"
	start_bg "$M_NGINX_LOG" nginx -p "$ng/" -c "$ng/nginx.conf" -g 'daemon off;'
	M_NGINX_PID=$BG_PID
	if ! wait_http "http://$M_HUB/v2/" "401" "$M_NGINX_PID" 20 >>"$log" 2>&1 ||
		! wait_http "http://$M_GHCR/v2/" "401" "$M_NGINX_PID" 20 >>"$log" 2>&1; then
		SETUP_ERR="nginx fronts did not come up: $(tail -n1 "$log"); nginx: $(tail -n 2 "$ng/logs/error.log" 2>/dev/null | tr '\n' ' ' | cut -c1-400)"
		return 1
	fi
	M_NGINX_ACCESS="$ng/logs/access.log"

	# containerd (only as ctr's content store; CRI off), everything under
	# $M_DIR/containerd, for the hosts.toml scenario.
	local ctd="$M_DIR/containerd" b
	for b in containerd ctr; do
		if ! command -v "$b" >/dev/null; then
			SETUP_ERR="$b not found: apt-get install --no-install-recommends containerd"
			return 1
		fi
	done
	M_CTD_SOCK="$ctd/containerd.sock"
	write_containerd_config "$ctd" "$M_CTD_SOCK"
	start_bg "$E2E_LOGS/mirror_containerd.log" containerd --config "$ctd/config.toml"
	M_CTD_PID=$BG_PID
	local i
	for ((i = 0; i < 200; i++)); do
		[[ -S "$M_CTD_SOCK" ]] && ctr --address "$M_CTD_SOCK" version >/dev/null 2>&1 && break
		if ! kill -0 "$M_CTD_PID" 2>/dev/null; then
			SETUP_ERR="containerd exited: $(tail -n 2 "$E2E_LOGS/mirror_containerd.log" | tr '\n' ' ' | cut -c1-400)"
			return 1
		fi
		sleep 0.05
	done
	if ! ctr --address "$M_CTD_SOCK" version >>"$log" 2>&1; then
		SETUP_ERR="containerd did not answer on $M_CTD_SOCK within 10s"
		return 1
	fi

	# A second instance of the same example nginx config whose upstream is a
	# fake registry (one extra server in conf.d/) that sends what
	# distribution 2.8 never does: a tags/list pagination Link header
	# (distribution 3.x, zot). Tests the example's Link map.
	local pp fp pg
	free_ports pp fp pg || return 1
	M_PROBE="127.0.0.1:$pp"
	local probe="$M_DIR/probe"
	if ! "$REPO_ROOT/examples/mirror/render.sh" "$probe" \
		REGISTRY_UPSTREAM="127.0.0.1:$fp" REGISTRY_LISTEN=unused REGISTRY_HOST=unused \
		REGISTRY_SERVICE="$M_SVC" REGISTRY_DATA=unused HTTP_SECRET=unused REALM=unused ISSUER=unused \
		REGAUTH_LISTEN=unused TOKEN_KEY=unused TOKEN_CERT=unused ADMIN_HASH=x ALICE_HASH=x BOB_HASH=x \
		HUB_LISTEN="$M_PROBE" HUB_SERVER_NAME=localhost GHCR_LISTEN="127.0.0.1:$pg" GHCR_SERVER_NAME=localhost \
		HUB_MIRROR=unused GHCR_MIRROR=unused HUB_MIRROR_URL=unused GHCR_MIRROR_URL=unused INSECURE=true \
		ALICE_AUTH=unused >>"$log" 2>&1; then
		SETUP_ERR="examples/mirror/render.sh (probe) failed: $(tail -n1 "$log")"
		return 1
	fi
	cat >"$probe/nginx/conf.d/zz-e2e-fake-registry.conf" <<EOF
# e2e only: a fake upstream registry for the probe front.
server {
    listen 127.0.0.1:$fp;
    location = /v2/docker.io/library/debian/tags/list {
        add_header Link '</v2/docker.io/library/debian/tags/list?last=12&n=1>; rel="next"' always;
        default_type application/json;
        return 200 '{"name":"docker.io/library/debian","tags":["12"]}';
    }
}
EOF
	start_bg "$E2E_LOGS/mirror_nginx-probe.log" nginx -p "$probe/nginx/" -c "$probe/nginx/nginx.conf" -g 'daemon off;'
	M_PROBE_PID=$BG_PID
	if ! wait_http "http://$M_PROBE/" "404" "$M_PROBE_PID" 20 >>"$log" 2>&1; then
		SETUP_ERR="probe nginx did not come up: $(tail -n1 "$log"); nginx: $(tail -n 2 "$probe/nginx/logs/error.log" 2>/dev/null | tr '\n' ' ' | cut -c1-400)"
		return 1
	fi
	export M_DIR M_CONF M_AUTH_URL M_REG M_HUB M_GHCR M_PROBE M_CTD_SOCK M_REGCONF M_REGCONF_FRONTS M_AUTHFILE M_NOAUTH
	export M_REGAUTH_LOG M_REGISTRY_LOG M_NGINX_ACCESS
	return 0
}

# mirror_setup_down — stop nginx, the registry and regauth (by PID).
mirror_setup_down() {
	stop_vars M_CTD_PID M_PROBE_PID M_NGINX_PID M_REGISTRY_PID M_REGAUTH_PID
}

# ---------------------------------------------------------------- helpers ---

# m_token USER PASS SERVICE SCOPE... — the JSON token response (curl GET,
# one scope= parameter per SCOPE). USER "" = anonymous.
m_token() {
	local user=$1 pw=$2 svc=$3
	shift 3
	local -a args=(-sS -f --max-time 20 -G "$M_AUTH_URL" --data-urlencode "service=$svc")
	[[ -n "$user" ]] && args+=(-u "$user:$pw")
	local s
	for s in "$@"; do
		args+=(--data-urlencode "scope=$s")
	done
	curl "${args[@]}"
}

# m_claims USER PASS SERVICE SCOPE... — request a token and leave its raw
# value in M_TOK and its decoded claims in M_CLAIMS (the test fails if none).
m_claims() {
	expect_ok "token request (${1:-anonymous}, service=$3, scopes: ${*:4})" m_token "$@"
	M_TOK=$(jq -r '.token // empty' <<<"$E2E_OUT")
	[[ -n "$M_TOK" ]] || fail "no .token in the response: $E2E_OUT"
	M_CLAIMS=$(jwt_part "$M_TOK" 1) || fail "JWT claims are not base64url: $M_TOK"
	note "claims: $M_CLAIMS"
}

# assert_access DESC EXPECTED_JSON — M_CLAIMS' aud is the registry's service
# and its access equals EXPECTED_JSON (compared as normalised JSON).
assert_access() {
	assert_eq "$1: aud" "$M_SVC" "$(jq -r .aud <<<"$M_CLAIMS")"
	assert_eq "$1: access" "$(jq -cS . <<<"$2")" "$(jq -cS .access <<<"$M_CLAIMS")"
}

# m_reg_status MARK METHOD PATH — distinct statuses the registry answered to
# "METHOD PATH" since MARK (its access log), space-separated; empty if none.
m_reg_status() {
	log_since "$M_REGISTRY_LOG" "$1" | grep -F "\"$2 $3 HTTP/1.1\"" |
		sed -E 's/.*HTTP\/1\.1" ([0-9]{3}) .*/\1/' | sort -u | tr '\n' ' ' | sed 's/ $//'
}

# m_reg_requests MARK — the "METHOD PATH" lines the registry saw since MARK.
m_reg_requests() {
	log_since "$M_REGISTRY_LOG" "$1" | grep -oE '"(GET|HEAD|POST|PUT|PATCH|DELETE) /v2/[^ ]* HTTP/1.1" [0-9]{3}' || true
}

# m_note_audit_on_exit — at the end of the test (pass or fail), copy the
# token requests regauth saw meanwhile (its audit lines) into the test's
# log: what each client really asked for. Informational only.
m_note_audit_on_exit() {
	M_AUDIT_MARK=$(log_mark "$M_REGAUTH_LOG")
	trap 'm_note_audit' EXIT
}
m_note_audit() {
	note "token requests regauth saw during this test:"
	log_since "$M_REGAUTH_LOG" "$M_AUDIT_MARK" | grep -F 'regauth::audit' >&2 || note "(no audit lines)"
}

# m_curl URL [CURL ARGS...] — status, headers (lower-cased names) and body of
# one request, as "M_CODE", "$M_DIR/last.headers" and "$M_DIR/last.body".
m_curl() {
	local url=$1
	shift
	M_CODE=$(curl -sS --max-time 20 -o "$M_DIR/last.body" -D "$M_DIR/last.headers" -w '%{http_code}' "$@" "$url") ||
		fail "curl $url failed"
	note "$* $url -> $M_CODE"
	cat "$M_DIR/last.headers" "$M_DIR/last.body" >&2
	printf '\n' >&2
}

# m_header NAME — the value of header NAME in the last m_curl response.
m_header() {
	grep -i "^$1:" "$M_DIR/last.headers" | head -n1 | cut -d: -f2- | sed -E 's/^ +//; s/\r$//'
}

# The Accept header of a client that takes OCI and Docker manifests.
M_ACCEPT="application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.index.v1+json"

# m_pm ... — podman with the example's registries.conf (mirrors on the
# registry itself, under namespaces).
m_pm() { CONTAINERS_REGISTRIES_CONF=$M_REGCONF pm "$@"; }

# m_sk_conf REGISTRIES_CONF ARGS... — skopeo with that registries.conf
# (skopeo ignores CONTAINERS_REGISTRIES_CONF). `inspect` needs --no-tags:
# listing tags always goes to the primary location, never to a mirror.
m_sk_conf() {
	local conf=$1
	shift
	timeout "$E2E_CLIENT_TIMEOUT" skopeo --policy "$E2E_TMP/etc-containers/policy.json" \
		--registries-conf "$conf" --registries.d "$E2E_TMP/etc-containers/registries.d" "$@"
}

# m_expect_mirror_denied DESC CMD... — a podman/skopeo pull through a
# registries.conf mirror must fail because the MIRROR refused it with an auth
# error; containers/image then falls back to the real registry, which inside
# this namespace can only hit the dead proxy (proving no packet left).
m_expect_mirror_denied() {
	local desc=$1 rc=0
	shift
	note "expect mirror auth denial: $desc: $*"
	"$@" >"$E2E_TMP/out" 2>"$E2E_TMP/err" || rc=$?
	cat "$E2E_TMP/out" "$E2E_TMP/err" >&2
	[[ $rc -ne 0 ]] || fail "$desc unexpectedly succeeded"
	[[ $rc -ne 124 ]] || fail "$desc timed out"
	grep -qi 'mirrors also failed' "$E2E_TMP/err" || fail "$desc: no mirror was tried: $(last_err_line)"
	local mirror_err
	mirror_err=$(grep -io 'mirrors also failed.*' "$E2E_TMP/err" | head -n1)
	grep -Eqi "$AUTH_ERR_RE" <<<"$mirror_err" || fail "$desc: the mirror failed, but not with an auth error: $mirror_err"
	grep -Eqi '127\.0\.0\.1:9|proxyconnect' "$E2E_TMP/err" ||
		fail "$desc: the fallback to the upstream did not end at the dead proxy: $(last_err_line)"
}

# ---------------------------------------------------------------- tests ---

# t_m_seed — admin populates the mirror namespaces directly on the registry
# (service registry.local, real names), as a sync job would; plus one of the
# registry's own repositories (acme/app) outside any mirror prefix.
t_m_seed() {
	local -a plan=(
		"$IMG_V1:v1 docker.io/library/debian:12"
		"$IMG_V1:v1 docker.io/library/debian:latest"
		"$IMG_V2:v2 docker.io/someuser/private:v1"
		"$IMG_BASE:v1 ghcr.io/acme/app:v1"
		"$IMG_V2:v2 ghcr.io/web/site:v1"
		"$IMG_V2:v2 acme/app:v1"
	)
	local p
	for p in "${plan[@]}"; do
		expect_ok "admin pushes ${p#* }" sk copy --dest-tls-verify=false --dest-creds "admin:$M_ADMIN_PW" \
			"oci:${p%% *}" "docker://$M_REG/${p#* }"
	done
}

# t_m_front_challenge — the fronts map /v2/<name> to /v2/<prefix>/<name> and
# rewrite the registry's challenge: service = the mirror's service, scope
# without the prefix. /v2/ itself is passed unchanged. The registry itself
# still challenges with its own service and the real name (what podman sees).
t_m_front_challenge() {
	local mark realm="realm=\"$M_AUTH_URL\""
	mark=$(log_mark "$M_REGISTRY_LOG")

	m_curl "http://$M_HUB/v2/"
	assert_eq "hub front GET /v2/ status" 401 "$M_CODE"
	assert_eq "hub front /v2/ challenge" "Bearer $realm,service=\"docker.io\"" "$(m_header www-authenticate)"
	assert_eq "registry saw GET /v2/ unchanged" 401 "$(m_reg_status "$mark" GET /v2/)"

	m_curl "http://$M_HUB/v2/library/debian/manifests/12" -H "Accept: $M_ACCEPT"
	assert_eq "hub front manifest status (no token)" 401 "$M_CODE"
	assert_eq "hub front manifest challenge" \
		"Bearer $realm,service=\"docker.io\",scope=\"repository:library/debian:pull\"" "$(m_header www-authenticate)"
	assert_eq "registry saw the prefixed path" 401 "$(m_reg_status "$mark" GET /v2/docker.io/library/debian/manifests/12)"
	assert_eq "only one WWW-Authenticate header" 1 "$(grep -ci '^www-authenticate:' "$M_DIR/last.headers")"

	m_curl "http://$M_GHCR/v2/acme/app/manifests/v1" -H "Accept: $M_ACCEPT"
	assert_eq "ghcr front manifest challenge" \
		"Bearer $realm,service=\"ghcr.io\",scope=\"repository:acme/app:pull\"" "$(m_header www-authenticate)"
	assert_eq "registry saw the ghcr.io-prefixed path" 401 "$(m_reg_status "$mark" GET /v2/ghcr.io/acme/app/manifests/v1)"

	m_curl "http://$M_REG/v2/docker.io/library/debian/manifests/12" -H "Accept: $M_ACCEPT"
	assert_eq "registry's own challenge" \
		"Bearer $realm,service=\"$M_SVC\",scope=\"repository:docker.io/library/debian:pull\"" "$(m_header www-authenticate)"
}

# t_m_token_docker_style — Docker (and containerd) through the hub front ask
# for service=docker.io and the UNPREFIXED name: regauth rebuilds it to
# docker.io/library/debian, aud = the registry's service; the registry
# accepts that token for the front's HEAD and GET of the manifest.
t_m_token_docker_style() {
	m_claims "" "" docker.io "repository:library/debian:pull"
	assert_access "anonymous, service=docker.io" '[{"type":"repository","name":"docker.io/library/debian","actions":["pull"]}]'
	assert_eq "sub (anonymous)" "" "$(jq -r .sub <<<"$M_CLAIMS")"

	m_curl "http://$M_HUB/v2/library/debian/manifests/12" -I -H "Accept: $M_ACCEPT" -H "Authorization: Bearer $M_TOK"
	assert_eq "HEAD manifest through the hub front with the rebuilt token" 200 "$M_CODE"
	assert_eq "Docker-Content-Digest" "$DIG_V1" "$(m_header docker-content-digest)"
	m_curl "http://$M_HUB/v2/library/debian/manifests/12" -H "Accept: $M_ACCEPT" -H "Authorization: Bearer $M_TOK"
	assert_eq "GET manifest through the hub front" 200 "$M_CODE"
	assert_eq "manifest body digest" "$DIG_V1" "sha256:$(sha256sum <"$M_DIR/last.body" | cut -d' ' -f1)"

	# The same token is worthless for any other repository.
	m_curl "http://$M_HUB/v2/someuser/private/manifests/v1" -H "Accept: $M_ACCEPT" -H "Authorization: Bearer $M_TOK"
	assert_eq "other repository with that token" 401 "$M_CODE"
	assert_eq "insufficient_scope challenge through the front" \
		"Bearer realm=\"$M_AUTH_URL\",service=\"docker.io\",scope=\"repository:someuser/private:pull\",error=\"insufficient_scope\"" \
		"$(m_header www-authenticate)"
}

# t_m_token_podman_style — podman/skopeo with a registries.conf mirror at
# <registry>/docker.io send the PREFIXED name with the registry's own service
# (nothing to rebuild); the same name with service=docker.io is not
# prefixed twice.
t_m_token_podman_style() {
	m_claims "" "" "$M_SVC" "repository:docker.io/library/debian:pull"
	assert_access "service=$M_SVC, prefixed name" '[{"type":"repository","name":"docker.io/library/debian","actions":["pull"]}]'
	m_curl "http://$M_REG/v2/docker.io/library/debian/manifests/12" -H "Accept: $M_ACCEPT" -H "Authorization: Bearer $M_TOK"
	assert_eq "GET manifest from the registry with that token" 200 "$M_CODE"

	m_claims "" "" docker.io "repository:docker.io/library/debian:pull"
	assert_access "service=docker.io, prefixed name (no double prefix)" '[{"type":"repository","name":"docker.io/library/debian","actions":["pull"]}]'
	m_claims alice "$M_ALICE_PW" ghcr.io "repository:ghcr.io/acme/app:pull"
	assert_access "alice, service=ghcr.io, prefixed name" '[{"type":"repository","name":"ghcr.io/acme/app","actions":["pull"]}]'
}

# t_m_token_containerd_style — containerd asks for the challenge's scope AND
# its own: with this front both are repository:library/debian:pull; with a
# front that leaves the prefix in the challenge they are docker.io/... and
# library/...; either way they collapse into ONE access entry, actions merged.
t_m_token_containerd_style() {
	m_claims "" "" docker.io "repository:library/debian:pull" "repository:library/debian:pull"
	assert_access "identical scopes" '[{"type":"repository","name":"docker.io/library/debian","actions":["pull"]}]'
	m_claims "" "" docker.io "repository:docker.io/library/debian:pull" "repository:library/debian:pull"
	assert_access "challenge scope with prefix + own scope" '[{"type":"repository","name":"docker.io/library/debian","actions":["pull"]}]'
	# Space-separated in one parameter, as containerd's POST form sends them.
	m_claims "" "" docker.io "repository:docker.io/library/debian:pull repository:library/debian:pull"
	assert_access "both in one scope value" '[{"type":"repository","name":"docker.io/library/debian","actions":["pull"]}]'
	# Different actions on the two spellings merge into one entry.
	m_claims admin "$M_ADMIN_PW" docker.io "repository:docker.io/library/debian:pull" "repository:library/debian:push"
	assert_access "admin, pull + push on the two spellings" '[{"type":"repository","name":"docker.io/library/debian","actions":["pull","push"]}]'
}

# t_m_token_stays_under_prefix — a mirror service only ever reaches names
# under its prefix: alice's own acme/app asked through docker.io is
# docker.io/acme/app (denied); through ghcr.io it is ghcr.io/acme/app
# (allowed by the ghcr rule); non-repository scopes are not rebuilt.
t_m_token_stays_under_prefix() {
	m_claims alice "$M_ALICE_PW" docker.io "repository:acme/app:pull,push"
	assert_access "alice's acme/app via docker.io" '[{"type":"repository","name":"docker.io/acme/app","actions":[]}]'
	m_claims alice "$M_ALICE_PW" ghcr.io "repository:acme/app:pull,push"
	assert_access "alice's acme/app via ghcr.io" '[{"type":"repository","name":"ghcr.io/acme/app","actions":["pull"]}]'
	m_claims admin "$M_ADMIN_PW" docker.io "registry:catalog:*"
	assert_access "registry:catalog:* via docker.io" '[{"type":"registry","name":"catalog","actions":["*"]}]'
	m_claims alice "$M_ALICE_PW" "$M_SVC" "repository:acme/app:pull,push"
	assert_access "alice's acme/app via the registry's own service" '[{"type":"repository","name":"acme/app","actions":["pull","push"]}]'
}

# t_m_token_services_allow_list — `services:` lists the registry's service;
# the mirrors' services are allowed implicitly; anything else is a 400.
t_m_token_services_allow_list() {
	local svc
	for svc in evil.example "" docker.io.evil; do
		m_curl "$M_AUTH_URL" -G --data-urlencode "service=$svc" --data-urlencode "scope=repository:library/debian:pull"
		assert_eq "status for service='$svc'" 400 "$M_CODE"
	done
}

# t_m_skopeo_hub_anonymous — skopeo inspects and copies library/debian
# through the hub front, anonymously, with the UNPREFIXED name.
t_m_skopeo_hub_anonymous() {
	m_note_audit_on_exit
	local mark
	mark=$(log_mark "$M_REGISTRY_LOG")
	expect_ok "skopeo inspect $M_HUB/library/debian:12" sk inspect --tls-verify=false --no-creds "docker://$M_HUB/library/debian:12"
	assert_eq "digest through the hub front" "$DIG_V1" "$(jq -r .Digest <<<"$E2E_OUT")"
	assert_eq "Name" "$M_HUB/library/debian" "$(jq -r .Name <<<"$E2E_OUT")"
	rm -rf "$M_DIR/hub-pull"
	expect_ok "skopeo copy $M_HUB/library/debian:12 to dir:" sk copy --src-tls-verify=false --src-no-creds \
		"docker://$M_HUB/library/debian:12" "dir:$M_DIR/hub-pull"
	tar -xzOf "$M_DIR/hub-pull/${V1_LAYER#sha256:}" hello.txt | grep -q "e2e image v1" ||
		fail "pulled layer does not hold the expected hello.txt"
	assert_eq "registry served the layer under docker.io/" 200 \
		"$(m_reg_status "$mark" GET "/v2/docker.io/library/debian/blobs/$V1_LAYER")"
}

# t_m_skopeo_hub_denied — names under the prefix that the ACL does not grant
# are refused through the front (docker.io/someuser/private exists), and the
# registry's own acme/app cannot be reached through the hub front at all.
t_m_skopeo_hub_denied() {
	expect_auth_denied "anonymous inspect someuser/private via the hub front" \
		sk inspect --tls-verify=false --no-creds "docker://$M_HUB/someuser/private:v1"
	expect_auth_denied "alice inspects someuser/private via the hub front" \
		sk inspect --tls-verify=false --creds "alice:$M_ALICE_PW" "docker://$M_HUB/someuser/private:v1"
	expect_auth_denied "alice inspects acme/app via the hub front (= docker.io/acme/app)" \
		sk inspect --tls-verify=false --creds "alice:$M_ALICE_PW" "docker://$M_HUB/acme/app:v1"
}

# t_m_skopeo_ghcr_private — the ghcr front needs a login: alice (team acme)
# pulls acme/app; anonymous, a wrong password, bob (team web) on acme/app and
# alice on web/site are refused.
t_m_skopeo_ghcr_private() {
	m_note_audit_on_exit
	expect_ok "alice inspects acme/app via the ghcr front" \
		sk inspect --tls-verify=false --creds "alice:$M_ALICE_PW" "docker://$M_GHCR/acme/app:v1"
	assert_eq "digest through the ghcr front" "$DIG_BASE" "$(jq -r .Digest <<<"$E2E_OUT")"
	expect_ok "bob inspects web/site via the ghcr front" \
		sk inspect --tls-verify=false --creds "bob:$M_BOB_PW" "docker://$M_GHCR/web/site:v1"
	expect_auth_denied "anonymous inspect acme/app via the ghcr front" \
		sk inspect --tls-verify=false --no-creds "docker://$M_GHCR/acme/app:v1"
	expect_auth_denied "alice with a wrong password" \
		sk inspect --tls-verify=false --creds "alice:$M_WRONG_PW" "docker://$M_GHCR/acme/app:v1"
	expect_auth_denied "bob inspects acme/app via the ghcr front" \
		sk inspect --tls-verify=false --creds "bob:$M_BOB_PW" "docker://$M_GHCR/acme/app:v1"
	expect_auth_denied "alice inspects web/site via the ghcr front" \
		sk inspect --tls-verify=false --creds "alice:$M_ALICE_PW" "docker://$M_GHCR/web/site:v1"
}

# t_m_podman_pull_mirror — podman pulls docker.io/library/debian and
# ghcr.io/acme/app through the example registries.conf (mirrors at
# <registry>/docker.io and <registry>/ghcr.io; ghcr credentials from the
# example auth.json keyed by the mirror's location). The registry sees the
# prefixed paths; nothing can reach the real upstreams.
t_m_podman_pull_mirror() {
	m_note_audit_on_exit
	local mark
	mark=$(log_mark "$M_REGISTRY_LOG")
	expect_ok "podman pull docker.io/library/debian:12" m_pm pull --authfile "$M_AUTHFILE" docker.io/library/debian:12
	expect_ok "podman image inspect" pm image inspect --format '{{.Digest}}' docker.io/library/debian:12
	assert_eq "digest of the pulled docker.io/library/debian:12" "$DIG_V1" "$E2E_OUT"
	assert_eq "registry served the manifest under docker.io/" 200 \
		"$(m_reg_status "$mark" GET /v2/docker.io/library/debian/manifests/12)"
	assert_not_contains "registry requests" "$(m_reg_requests "$mark")" "docker.io/docker.io"

	expect_ok "podman pull ghcr.io/acme/app:v1 (auth.json keyed by the mirror)" \
		m_pm pull --authfile "$M_AUTHFILE" ghcr.io/acme/app:v1
	expect_ok "podman image inspect" pm image inspect --format '{{.Digest}}' ghcr.io/acme/app:v1
	assert_eq "digest of the pulled ghcr.io/acme/app:v1" "$DIG_BASE" "$E2E_OUT"

	# `podman login <registry>/ghcr.io` writes the same kind of entry (keyed
	# by the mirror location), and a pull with only that login works.
	local login="$M_DIR/podman-login-auth.json"
	expect_ok "podman login $M_REG/ghcr.io" m_pm login --tls-verify=false --authfile "$login" \
		-u alice -p "$M_ALICE_PW" "$M_REG/ghcr.io"
	assert_eq "auth.json keys after podman login" "$M_REG/ghcr.io" "$(jq -r '.auths|keys|join(" ")' "$login")"
	expect_ok "podman rmi ghcr.io/acme/app:v1" pm rmi ghcr.io/acme/app:v1
	expect_ok "podman pull ghcr.io/acme/app:v1 with that login" m_pm pull --authfile "$login" ghcr.io/acme/app:v1
}

# t_m_pull_mirror_denied — refusals through the registries.conf mirrors:
# no auth.json entry for the private ghcr mirror (podman); --creds, which
# containers/image does not send to mirrors, and an ACL-denied name under
# docker.io/ (skopeo: same library, but no 3 x 1 s retries). Each time the
# mirror answers with an auth error and the fallback to the real registry
# ends at the dead proxy.
t_m_pull_mirror_denied() {
	m_note_audit_on_exit
	m_expect_mirror_denied "podman pull ghcr.io/acme/app:v1 without credentials" \
		m_pm pull --authfile "$M_NOAUTH" ghcr.io/acme/app:v1
	m_expect_mirror_denied "skopeo inspect ghcr.io/acme/app:v1 with --creds only" \
		m_sk_conf "$M_REGCONF" inspect --no-tags --authfile "$M_NOAUTH" --creds "alice:$M_ALICE_PW" docker://ghcr.io/acme/app:v1
	m_expect_mirror_denied "skopeo inspect docker.io/someuser/private:v1" \
		m_sk_conf "$M_REGCONF" inspect --no-tags --authfile "$M_AUTHFILE" docker://docker.io/someuser/private:v1
}

# m_ctr ARGS... — ctr against our containerd, with the example's
# certs.d/*/hosts.toml (the fronts as pull/resolve hosts).
m_ctr() {
	timeout "$E2E_CLIENT_TIMEOUT" ctr --address "$M_CTD_SOCK" --namespace e2e-mirror "$@"
}

# t_m_containerd_hosts_toml — containerd (ctr 1.6, the resolver every
# containerd client uses) fetches docker.io/library/debian:12 and, with
# alice's credentials, ghcr.io/acme/app:v1 through the fronts named in the
# example hosts.toml files: requests carry ?ns=<upstream>, the registry sees
# the prefixed paths. Without credentials the ghcr mirror refuses and the
# fallback to the real ghcr.io ends at the dead proxy.
t_m_containerd_hosts_toml() {
	m_note_audit_on_exit
	local hosts="$M_CONF/clients/containerd/certs.d" mark ngmark
	mark=$(log_mark "$M_REGISTRY_LOG")
	ngmark=$(log_mark "$M_NGINX_ACCESS")
	expect_ok "ctr content fetch docker.io/library/debian:12" \
		m_ctr content fetch --hosts-dir "$hosts" docker.io/library/debian:12
	expect_ok "ctr images ls" m_ctr images ls
	assert_contains "ctr images ls" "$E2E_OUT" "docker.io/library/debian:12"
	assert_contains "ctr images ls (digest)" "$E2E_OUT" "$DIG_V1"
	assert_contains "front access log" "$(log_since "$M_NGINX_ACCESS" "$ngmark")" \
		"\"HEAD /v2/library/debian/manifests/12?ns=docker.io HTTP/1.1\" 200"
	assert_eq "registry served the layer under docker.io/" 200 \
		"$(m_reg_status "$mark" GET "/v2/docker.io/library/debian/blobs/$V1_LAYER?ns=docker.io")"

	expect_ok "ctr content fetch ghcr.io/acme/app:v1 --user alice" \
		m_ctr content fetch --hosts-dir "$hosts" --user "alice:$M_ALICE_PW" ghcr.io/acme/app:v1
	expect_ok "ctr images ls" m_ctr images ls
	assert_contains "ctr images ls (ghcr digest)" "$E2E_OUT" "$DIG_BASE"

	local rc=0
	note "expect mirror auth denial: anonymous ctr content fetch ghcr.io/acme/app:v1"
	m_ctr content fetch --hosts-dir "$hosts" ghcr.io/acme/app:v1 >"$E2E_TMP/out" 2>"$E2E_TMP/err" || rc=$?
	cat "$E2E_TMP/out" "$E2E_TMP/err" >&2
	[[ $rc -ne 0 ]] || fail "anonymous fetch through the private ghcr mirror succeeded"
	grep "host=\"$M_GHCR\"" "$E2E_TMP/err" | grep -Eqi "$AUTH_ERR_RE" ||
		fail "the ghcr front did not refuse with an auth error: $(last_err_line)"
	if ! grep -q 'host=ghcr.io' "$E2E_TMP/err" || ! grep -q '127.0.0.1:9' "$E2E_TMP/err"; then
		fail "the fallback to ghcr.io did not end at the dead proxy: $(last_err_line)"
	fi
}

# t_m_docker_registry_mirrors — Docker Engine (docker.sh's dockerd, which
# runs with --insecure-registry 127.0.0.1/32) with the example daemon.json:
# `registry-mirrors` is reloadable, so the file is swapped in and dockerd
# gets a SIGHUP (undone on exit). `docker pull debian:12` then comes from
# the hub front (unprefixed path, service=docker.io token), and a name the
# ACL denies under docker.io/ is refused by the mirror, after which Docker's
# fallback to Docker Hub ends at the dead proxy.
t_m_docker_registry_mirrors() {
	[[ -n "${DK_READY:-}" ]] || fail "not run: docker/startup failed"
	DK_CONFIG="$M_DIR/docker-config"
	mkdir -p "$DK_CONFIG"
	cp "$DK_DIR/daemon.json" "$M_DIR/daemon.json.orig"
	# shellcheck disable=SC2064 # expand now, on purpose
	M_AUDIT_MARK=$(log_mark "$M_REGAUTH_LOG")
	# shellcheck disable=SC2064 # expanded now, on purpose
	trap "m_note_audit; cp '$M_DIR/daemon.json.orig' '$DK_DIR/daemon.json'; kill -HUP '$DK_PID' 2>/dev/null; dk rmi -f debian:12 >/dev/null 2>&1 || true" EXIT
	cp "$M_CONF/clients/daemon.json" "$DK_DIR/daemon.json"
	kill -HUP "$DK_PID"
	local i mirrors=""
	for ((i = 0; i < 100; i++)); do
		mirrors=$(dk info --format '{{json .RegistryConfig.Mirrors}}' 2>/dev/null || true)
		[[ "$mirrors" == *"http://$M_HUB/"* ]] && break
		sleep 0.1
	done
	assert_eq "dockerd's registry mirrors after the reload" "[\"http://$M_HUB/\"]" "$mirrors"

	local ngmark
	ngmark=$(log_mark "$M_NGINX_ACCESS")
	expect_ok "docker pull debian:12" dk pull debian:12
	expect_ok "docker image inspect" dk image inspect --format '{{json .RepoDigests}}' debian:12
	assert_contains "RepoDigests" "$E2E_OUT" "debian@$DIG_V1"
	log_since "$M_NGINX_ACCESS" "$ngmark" | grep -F '"HEAD /v2/library/debian/manifests/12 HTTP/1.1" 200' | grep -q '"docker/' ||
		fail "the hub front did not serve Docker's HEAD /v2/library/debian/manifests/12"

	local rc=0
	ngmark=$(log_mark "$M_NGINX_ACCESS")
	note "expect mirror auth denial: docker pull someuser/private:v1"
	dk pull someuser/private:v1 >"$E2E_TMP/out" 2>"$E2E_TMP/err" || rc=$?
	cat "$E2E_TMP/out" "$E2E_TMP/err" >&2
	[[ $rc -ne 0 ]] || fail "docker pull someuser/private:v1 succeeded"
	log_since "$M_NGINX_ACCESS" "$ngmark" | grep -qF '"GET /v2/someuser/private/manifests/v1 HTTP/1.1" 401' ||
		fail "the hub front did not refuse someuser/private with 401"
	grep -q '127.0.0.1:9' "$E2E_TMP/err" || fail "Docker's fallback did not end at the dead proxy: $(last_err_line)"
}

# t_m_skopeo_registries_conf — skopeo (which ignores CONTAINERS_REGISTRIES_CONF)
# with --registries-conf: both example files, the one with namespace mirrors
# on the registry and the one through the fronts; credentials from auth.json.
t_m_skopeo_registries_conf() {
	m_note_audit_on_exit
	local conf mark ngmark via
	for conf in "$M_REGCONF" "$M_REGCONF_FRONTS"; do
		mark=$(log_mark "$M_REGISTRY_LOG")
		ngmark=$(log_mark "$M_NGINX_ACCESS")
		expect_ok "skopeo inspect docker.io/library/debian:12 ($(basename "$conf"))" \
			m_sk_conf "$conf" inspect --no-tags --authfile "$M_AUTHFILE" docker://docker.io/library/debian:12
		assert_eq "digest" "$DIG_V1" "$(jq -r .Digest <<<"$E2E_OUT")"
		expect_ok "skopeo inspect ghcr.io/acme/app:v1 ($(basename "$conf"))" \
			m_sk_conf "$conf" inspect --no-tags --authfile "$M_AUTHFILE" docker://ghcr.io/acme/app:v1
		assert_eq "digest" "$DIG_BASE" "$(jq -r .Digest <<<"$E2E_OUT")"
		assert_eq "registry served docker.io/library/debian:12" 200 \
			"$(m_reg_status "$mark" GET /v2/docker.io/library/debian/manifests/12)"
		assert_eq "registry served ghcr.io/acme/app:v1" 200 \
			"$(m_reg_status "$mark" GET /v2/ghcr.io/acme/app/manifests/v1)"
		# Through the fronts (unprefixed paths in nginx's log) or not at all.
		via=$(log_since "$M_NGINX_ACCESS" "$ngmark" | { grep -oE '"GET /v2/[^ ]*/manifests/[^ ]* HTTP/1.1" 200' || true; } | sort -u | tr '\n' ' ')
		if [[ "$conf" == "$M_REGCONF_FRONTS" ]]; then
			assert_eq "manifest requests the fronts served" \
				'"GET /v2/acme/app/manifests/v1 HTTP/1.1" 200 "GET /v2/library/debian/manifests/12 HTTP/1.1" 200 ' "$via"
		else
			assert_eq "manifest requests the fronts served (namespace mirrors bypass them)" "" "$via"
		fi
	done
}

# t_m_front_tags — tag listing through the front: the repository name in
# the body loses the prefix (sub_filter), so clients see the mirror's view.
# (distribution 2.8 ignores ?n= for tags, so no Link header is sent; the
# Link map is there for registries that paginate, distribution 3.x and zot.)
t_m_front_tags() {
	m_claims "" "" docker.io "repository:library/debian:pull"
	m_curl "http://$M_HUB/v2/library/debian/tags/list" -H "Authorization: Bearer $M_TOK"
	assert_eq "tags/list status" 200 "$M_CODE"
	assert_eq "tags/list body" '{"name":"library/debian","tags":["12","latest"]}' \
		"$(jq -c '{name, tags: (.tags|sort)}' "$M_DIR/last.body")"
	assert_eq "Link header" "" "$(m_header link)"
	expect_ok "skopeo list-tags via the hub front" sk list-tags --tls-verify=false --no-creds "docker://$M_HUB/library/debian"
	assert_eq "list-tags Repository" "$M_HUB/library/debian" "$(jq -r .Repository <<<"$E2E_OUT")"
	assert_eq "tags" "12 latest" "$(jq -r '.Tags|sort|join(" ")' <<<"$E2E_OUT")"

	# A paginating registry (the probe front's fake upstream): the Link
	# header and the body lose the prefix too.
	m_curl "http://$M_PROBE/v2/library/debian/tags/list?n=1"
	assert_eq "probe tags/list status" 200 "$M_CODE"
	assert_eq "probe Link header" '</v2/library/debian/tags/list?last=12&n=1>; rel="next"' "$(m_header link)"
	assert_eq "probe tags/list body" '{"name":"library/debian","tags":["12"]}' "$(jq -c . "$M_DIR/last.body")"
}

# t_m_front_refuses — the fronts are pull-only and have no catalog: uploads
# and deletes are refused by nginx (403) and never reach the registry;
# /v2/_catalog is a 404 from nginx.
t_m_front_refuses() {
	local mark
	mark=$(log_mark "$M_REGISTRY_LOG")
	m_curl "http://$M_HUB/v2/library/debian/blobs/uploads/" -X POST -u "admin:$M_ADMIN_PW"
	assert_eq "POST blob upload via the front" 403 "$M_CODE"
	m_curl "http://$M_HUB/v2/library/debian/manifests/12" -X DELETE
	assert_eq "DELETE manifest via the front" 403 "$M_CODE"
	m_curl "http://$M_HUB/v2/_catalog"
	assert_eq "GET /v2/_catalog via the front" 404 "$M_CODE"
	assert_contains "catalog body" "$(cat "$M_DIR/last.body")" UNSUPPORTED
	assert_eq "registry requests caused by the refused calls" "" "$(m_reg_requests "$mark")"
}

# ----------------------------------------------------------------- driver ---

MIRROR_SCENARIOS=(
	seed:t_m_seed
	front-challenge:t_m_front_challenge
	token-docker-style:t_m_token_docker_style
	token-podman-style:t_m_token_podman_style
	token-containerd-style:t_m_token_containerd_style
	token-stays-under-prefix:t_m_token_stays_under_prefix
	token-services-allow-list:t_m_token_services_allow_list
	skopeo-hub-anonymous:t_m_skopeo_hub_anonymous
	skopeo-hub-denied:t_m_skopeo_hub_denied
	skopeo-ghcr-private:t_m_skopeo_ghcr_private
	podman-pull-mirror:t_m_podman_pull_mirror
	pull-mirror-denied:t_m_pull_mirror_denied
	skopeo-registries-conf:t_m_skopeo_registries_conf
	containerd-hosts-toml:t_m_containerd_hosts_toml
	front-tags:t_m_front_tags
	front-refuses:t_m_front_refuses
)

# run_mirror_setup — bring the mirror setup up, run its scenarios (those
# matching $E2E_ONLY, if set), bring it down.
run_mirror_setup() {
	local up=0
	local -a scenarios=("${MIRROR_SCENARIOS[@]}")
	# With docker.sh loaded (its dockerd is up during the setups), Docker's
	# registry-mirrors is tested too.
	if declare -F docker_up >/dev/null; then
		scenarios+=(docker-registry-mirrors:t_m_docker_registry_mirrors)
	fi
	echo "== setup mirror: registry + nginx mirror fronts (docker.io, ghcr.io), examples/mirror"
	mirror_setup_up || up=$?
	run_scenarios mirror "$up" "${scenarios[@]}"
	mirror_setup_down
}
