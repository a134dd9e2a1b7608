# shellcheck shell=bash disable=SC2034 # SETUP_ERR is read by run_scenarios (lib.sh)
# tls.sh — a TLS-served regauth works as the realm of
# the real registry, with every client verifying every certificate.
#
# Sourced by run.sh after lib.sh and scenarios.sh (uses their helpers,
# ISSUER, ALICE_PW, alice's hash from cli/hash and the fixture image
# IMG_V1/DIG_V1). Entry point: run_tls_setup.
#
# Setup `tls`: with openssl, in the temp dir, a test CA and, signed by it, one
# server certificate for regauth and one for the registry (both for IP SAN
# 127.0.0.1 and DNS SAN localhost); also a "rogue" CA nobody trusts and a
# certificate with the same names signed by it. regauth serves HTTPS
# (`server.certificate`/`server.key`, through a directory symlink so the
# pair can be swapped atomically); distribution serves HTTPS as well
# (`http.tls`) with `auth.token.realm: https://127.0.0.1:<port>/auth`.
# Clients run with TLS verification ON and trust the test CA through
# `--cert-dir DIR` (DIR/ca.crt) and/or `SSL_CERT_FILE` (a bundle holding only
# the test CA). containers/image uses ONE http.Client for the registry and
# its realm, whose roots are Go's system pool (which honours SSL_CERT_FILE)
# plus the cert dir's *.crt: either way of trusting covers both servers,
# and the tests show each alone is enough.
#
# Tests:
#   regauth-check                 `regauth check` accepts the HTTPS config; the
#                                 same config with the rogue key (not the
#                                 certificate's) is rejected
#   https-token                   curl --cacert: token over HTTPS from
#                                 127.0.0.1 and localhost; without the CA curl
#                                 refuses the certificate (exit 60)
#   plain-http-refused            plain HTTP to regauth's port gets no HTTP
#                                 answer (a TLS alert); the credentials sent
#                                 that way are never audited
#   skopeo-push                   skopeo copy oci: -> docker:// as alice with
#                                 --dest-tls-verify=true, trust via
#                                 --dest-cert-dir only (SSL_CERT_FILE unset)
#   skopeo-inspect                skopeo inspect --tls-verify=true --cert-dir
#                                 (SSL_CERT_FILE unset); digest as pushed
#   skopeo-inspect-ssl-cert-file  the same with an empty cert dir and
#                                 SSL_CERT_FILE=<bundle with the test CA>
#   curl-registry                 the registry's 401 challenge names the https
#                                 realm; plain HTTP to it is refused (400);
#                                 a realm token lists the catalog over HTTPS
#   skopeo-untrusted-ca-refused   the same inspect and copy commands with the
#                                 test CA trusted nowhere fail with "x509:
#                                 certificate signed by unknown authority"
#                                 at the registry; regauth sees nothing; the
#                                 tag is not created
#   podman-pull                   podman pull --tls-verify=true --cert-dir
#   realm-untrusted-cert-refused  regauth's pair is swapped for the rogue one
#                                 (reloaded while running): the registry is
#                                 still trusted but the token request to the
#                                 realm fails with the x509 error naming the
#                                 realm URL; swapped back, the same command
#                                 works again

T_SVC="e2e-registry-tls"
T_REPO="alice/tls"
# What Go's verifier says when the chain does not lead to a trusted root.
T_X509_ERR="x509: certificate signed by unknown authority"

# ------------------------------------------------------------------- PKI ---

# t_pki_ca NAME CN — a self-signed CA (EC P-256): $T_PKI/NAME.crt/.key.
t_pki_ca() {
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout "$T_PKI/$1.key" -out "$T_PKI/$1.crt" -days 2 -subj "/CN=$2" \
		-addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
}

# t_pki_leaf CA NAME — a server certificate for 127.0.0.1 (IP SAN) and
# localhost (DNS SAN) signed by CA: $T_PKI/NAME.crt/.key.
t_pki_leaf() {
	local ca=$1 name=$2
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout "$T_PKI/$name.key" -out "$T_PKI/$name.csr" -subj "/CN=127.0.0.1" || return 1
	printf '%s\n' "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature" \
		"extendedKeyUsage=serverAuth" "subjectAltName=IP:127.0.0.1,DNS:localhost" >"$T_PKI/$name.ext"
	openssl x509 -req -in "$T_PKI/$name.csr" -CA "$T_PKI/$ca.crt" -CAkey "$T_PKI/$ca.key" \
		-set_serial "0x$(openssl rand -hex 8)" -days 2 -extfile "$T_PKI/$name.ext" -out "$T_PKI/$name.crt"
}

# t_make_pki — the test CA with regauth's and the registry's certificates,
# the rogue CA with its look-alike regauth certificate, and the trust
# material the clients get.
t_make_pki() {
	mkdir -p "$T_PKI" || return 1
	t_pki_ca ca "regauth e2e test CA" &&
		t_pki_ca rogue-ca "regauth e2e rogue CA (trusted by nobody)" &&
		t_pki_leaf ca regauth &&
		t_pki_leaf ca registry &&
		t_pki_leaf rogue-ca rogue-regauth || return 1
	# Sanity: the chains are what the tests assume.
	openssl verify -CAfile "$T_PKI/ca.crt" "$T_PKI/regauth.crt" "$T_PKI/registry.crt" || return 1
	if openssl verify -CAfile "$T_PKI/ca.crt" "$T_PKI/rogue-regauth.crt"; then
		echo "the rogue certificate verifies against the test CA" >&2
		return 1
	fi
	# regauth reads its pair through the symlink $T_SERVE/current, swapped
	# atomically between good/ and rogue/ by realm-untrusted-cert-refused.
	mkdir -p "$T_SERVE/good" "$T_SERVE/rogue" "$T_CERTS" "$T_NOCERTS" || return 1
	cp "$T_PKI/regauth.crt" "$T_SERVE/good/tls.crt" && cp "$T_PKI/regauth.key" "$T_SERVE/good/tls.key" &&
		cp "$T_PKI/rogue-regauth.crt" "$T_SERVE/rogue/tls.crt" &&
		cp "$T_PKI/rogue-regauth.key" "$T_SERVE/rogue/tls.key" &&
		ln -sfn good "$T_SERVE/current" || return 1
	# Trust: a containers cert dir holding the test CA as ca.crt, an empty
	# one, and a PEM bundle holding only the test CA (for SSL_CERT_FILE).
	cp "$T_PKI/ca.crt" "$T_CERTS/ca.crt" && cp "$T_PKI/ca.crt" "$T_BUNDLE"
}

# ------------------------------------------------------------------ setup ---

# tls_setup_up — PKI, signing key, configs, regauth (HTTPS), registry
# (HTTPS). Sets SETUP_ERR and returns 1 on any error.
tls_setup_up() {
	T_DIR="$E2E_TMP/tls"
	T_PKI="$T_DIR/pki"
	T_SERVE="$T_DIR/serving"
	T_CERTS="$T_DIR/certs.d/test-ca"
	T_NOCERTS="$T_DIR/certs.d/empty"
	T_BUNDLE="$T_DIR/ca-bundle.pem"
	local keys="$T_DIR/keys" log="$E2E_LOGS/tls_startup.log"
	SETUP_ERR=""
	mkdir -p "$keys"
	if ! t_make_pki >>"$log" 2>&1; then
		SETUP_ERR="openssl could not make the test PKI: $(tail -n1 "$log")"
		return 1
	fi
	if ! "$REGAUTH" keygen --out "$keys" --alg ES256 >>"$log" 2>&1; then
		SETUP_ERR="regauth keygen failed: $(tail -n1 "$log")"
		return 1
	fi
	local h_alice
	if ! h_alice=$(cat "$E2E_TMP/fixtures/alice.hash" 2>/dev/null); then
		SETUP_ERR="no password hash for alice (cli/hash failed)"
		return 1
	fi
	local ap rp
	free_ports ap rp || return 1
	T_PORT=$ap
	T_BASE="https://127.0.0.1:$ap"
	T_AUTH_URL="$T_BASE/auth"
	T_REG="127.0.0.1:$rp"

	cat >"$T_DIR/regauth.yml" <<EOF
server:
  addr: "127.0.0.1:$ap"
  certificate: "$T_SERVE/current/tls.crt"
  key: "$T_SERVE/current/tls.key"
token:
  issuer: "$ISSUER"
  expiration: 900
  certificate: "$keys/token.pem"
  key: "$keys/token.key"
users:
  alice: {password: "$h_alice"}
acl:
  - match: {account: "alice"}
    actions: ["*"]
    comment: "alice is admin"
EOF
	# distribution 2.8 over TLS with the test CA's certificate; the realm is
	# regauth's HTTPS endpoint.
	write_registry_config "$T_DIR/registry.yml" "$T_DIR/registry-data" "$T_REG" "$T_AUTH_URL" "$T_SVC" "$keys/token.pem" \
		tls "$T_PKI/registry.crt" "$T_PKI/registry.key"

	# start_regauth/wait_http poll with plain curl: CURL_CA_BUNDLE makes that
	# curl trust the test CA (and only it) while the servers start.
	T_REGAUTH_LOG="$E2E_LOGS/tls_regauth.log"
	CURL_CA_BUNDLE="$T_PKI/ca.crt" setup_regauth "$T_REGAUTH_LOG" "$T_DIR/regauth.yml" "$T_BASE" "$log" || return 1
	T_REGAUTH_PID=$BG_PID

	T_REGISTRY_LOG="$E2E_LOGS/tls_registry.log"
	CURL_CA_BUNDLE="$T_PKI/ca.crt" setup_registry "$T_REGISTRY_LOG" "$T_DIR/registry.yml" "https://$T_REG" "$log" || return 1
	T_REGISTRY_PID=$BG_PID
	export T_DIR T_PKI T_SERVE T_CERTS T_NOCERTS T_BUNDLE T_PORT T_BASE T_AUTH_URL T_REG T_REGAUTH_LOG T_REGISTRY_LOG
	return 0
}

# tls_setup_down — stop the registry and regauth (by PID).
tls_setup_down() {
	stop_vars T_REGISTRY_PID T_REGAUTH_PID
}

# ---------------------------------------------------------------- helpers ---

# t_audit_since MARK — regauth's audit lines after MARK.
t_audit_since() { log_since "$T_REGAUTH_LOG" "$1" | grep -F 'regauth::audit' || true; }

# t_trust BUNDLE CMD [ARGS...] — run CMD with SSL_CERT_FILE=BUNDLE, or with
# SSL_CERT_FILE unset if BUNDLE is "" (SSL_CERT_DIR always unset), so the
# only roots are the system's, BUNDLE and whatever CMD's flags add.
t_trust() (
	unset SSL_CERT_FILE SSL_CERT_DIR
	[[ -z "$1" ]] || export SSL_CERT_FILE="$1"
	shift
	"$@"
)

# t_inspect CERT_DIR BUNDLE [REF] — skopeo inspect $T_REPO:v1 (or REF) as
# alice, TLS verification on, trusting CERT_DIR (--cert-dir) and BUNDLE.
t_inspect() {
	t_trust "$2" sk inspect --tls-verify=true --cert-dir "$1" --creds "alice:$ALICE_PW" \
		"docker://$T_REG/${3:-$T_REPO:v1}"
}

# t_push CERT_DIR BUNDLE TAG — skopeo copy of the fixture image to
# $T_REPO:TAG as alice, TLS verification on, trusting CERT_DIR and BUNDLE.
t_push() {
	t_trust "$2" sk copy --dest-tls-verify=true --dest-cert-dir "$1" --dest-creds "alice:$ALICE_PW" \
		"oci:$IMG_V1:v1" "docker://$T_REG/$T_REPO:$3"
}

# t_expect_x509 DESC CMD [ARGS...] — CMD must fail because a certificate
# did not verify (Go's "signed by unknown authority"), not for any other
# reason (auth, connection, timeout). stderr stays in $E2E_TMP/err.
t_expect_x509() {
	local desc=$1 rc=0
	shift
	note "expect certificate error: $desc: $*"
	"$@" >"$E2E_TMP/out" 2>"$E2E_TMP/err" || rc=$?
	cat "$E2E_TMP/out" "$E2E_TMP/err" >&2
	[[ $rc -ne 0 ]] || fail "$desc unexpectedly succeeded: TLS verification is not on"
	[[ $rc -ne 124 ]] || fail "$desc timed out after ${E2E_CLIENT_TIMEOUT}s"
	grep -qF "$T_X509_ERR" "$E2E_TMP/err" ||
		fail "$desc failed, but not with '$T_X509_ERR': $(last_err_line)"
	note "refused as expected: $(last_err_line)"
}

# t_curl BODY_FILE [CURL ARGS...] — run curl, trusting nothing but the
# system roots and what ARGS add; print "HTTP_STATUS CURL_EXIT" ("000 60":
# no HTTP answer, exit 60). Use as:
#   read -r code rc < <(t_curl /dev/null ARGS... 2>"$E2E_TMP/err")
t_curl() {
	local out=$1 code rc=0
	shift
	code=$(env -u CURL_CA_BUNDLE -u SSL_CERT_FILE -u SSL_CERT_DIR \
		curl -sS -o "$out" -w '%{http_code}' --max-time 10 "$@") || rc=$?
	printf '%s %s\n' "${code:-000}" "$rc"
}

# t_serve PAIR — point regauth's certificate/key symlink at PAIR (good or
# rogue) in one rename; regauth's file watch reloads the new pair.
t_serve() {
	ln -sfn "$1" "$T_SERVE/current.new" && mv -T "$T_SERVE/current.new" "$T_SERVE/current"
}

# t_wait_served CA — wait (up to 10 s) until regauth's certificate verifies
# against CA (a file in $T_PKI, e.g. ca.crt).
t_wait_served() {
	local i code
	for ((i = 0; i < 100; i++)); do
		code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 --cacert "$T_PKI/$1" "$T_BASE/healthz" || true)
		[[ "$code" == 200 ]] && return 0
		sleep 0.1
	done
	return 1
}

# ------------------------------------------------------------------ tests ---

# t_tls_check — `regauth check` accepts the HTTPS configuration, and checks
# the pair: with the rogue key (not the certificate's) it is rejected.
t_tls_check() {
	expect_ok "regauth check" "$REGAUTH" check --config "$T_DIR/regauth.yml"
	assert_contains "regauth check output" "$E2E_OUT" "regauth.yml: OK"
	sed "s|$T_SERVE/current/tls.key|$T_PKI/rogue-regauth.key|" "$T_DIR/regauth.yml" >"$T_DIR/regauth-mismatch.yml"
	grep -qF "rogue-regauth.key" "$T_DIR/regauth-mismatch.yml" || fail "could not write the mismatched config"
	local rc=0 out
	out=$("$REGAUTH" check --config "$T_DIR/regauth-mismatch.yml" 2>&1) || rc=$?
	note "regauth check (certificate with another key) -> exit $rc: $out"
	[[ $rc -ne 0 ]] || fail "regauth check accepts a certificate with a key that is not its own"
	assert_contains "regauth check error" "$out" "server.certificate/server.key"
}

# t_tls_https_token — curl, trusting the test CA only (--cacert), gets
# alice's token over HTTPS from 127.0.0.1 and localhost; without the CA the
# same request is refused by curl's verification (exit 60).
t_tls_https_token() {
	local body="$T_DIR/https-token.body" out code verify claims tok
	out=$(env -u CURL_CA_BUNDLE curl -sS --max-time 20 --cacert "$T_PKI/ca.crt" -o "$body" \
		-w '%{http_code} %{ssl_verify_result} %{scheme}' -u "alice:$ALICE_PW" -G "$T_AUTH_URL" \
		--data-urlencode "service=$T_SVC" --data-urlencode "scope=repository:$T_REPO:pull,push") ||
		fail "curl --cacert $T_AUTH_URL failed: $out"
	read -r code verify _ <<<"$out"
	note "GET $T_AUTH_URL (--cacert test CA) -> $out"
	assert_eq "status" 200 "$code"
	assert_eq "curl's certificate verification result" 0 "$verify"
	tok=$(jq -r '.token // empty' "$body")
	record_secret "$tok"
	[[ -n "$tok" ]] || fail "no token in: $(head -c 300 "$body")"
	claims=$(jwt_part "$tok" 1) || fail "token is not a JWT"
	assert_eq "sub" alice "$(jq -r .sub <<<"$claims")"
	assert_eq "aud" "$T_SVC" "$(jq -r .aud <<<"$claims")"
	assert_eq "actions" "pull,push" "$(jq -r '.access[0].actions|sort|join(",")' <<<"$claims")"

	local rc
	read -r code rc < <(t_curl /dev/null --cacert "$T_PKI/ca.crt" "https://localhost:$T_PORT/healthz")
	assert_eq "status of https://localhost:$T_PORT/healthz (DNS SAN)" 200 "$code"

	read -r code rc < <(t_curl /dev/null -u "alice:$ALICE_PW" "$T_AUTH_URL?service=$T_SVC" 2>"$E2E_TMP/err")
	note "without the test CA: exit $rc, status $code: $(grep -m1 '^curl: ' "$E2E_TMP/err" || true)"
	assert_eq "curl exit status without the test CA (60 = peer certificate cannot be authenticated)" 60 "$rc"
	grep -q '^curl: (60) SSL certificate problem' "$E2E_TMP/err" ||
		fail "curl without the test CA did not fail on the certificate: $(head -n1 "$E2E_TMP/err")"
	assert_eq "status without the test CA" 000 "$code"
}

# t_tls_plain_http_refused — regauth's port speaks TLS only: a plain HTTP
# request gets no HTTP answer (the reply is a TLS record), and the Basic
# credentials sent in clear are never processed (no audit line).
t_tls_plain_http_refused() {
	local mark code rc first
	mark=$(log_mark "$T_REGAUTH_LOG")
	read -r code rc < <(t_curl /dev/null "http://127.0.0.1:$T_PORT/healthz" 2>"$E2E_TMP/err")
	note "plain HTTP /healthz: exit $rc, status $code: $(last_err_line)"
	[[ $rc -ne 0 ]] || fail "plain HTTP to the TLS port succeeded"
	assert_eq "status of plain HTTP /healthz" 000 "$code"
	record_secret "$(printf 'alice:%s' "$ALICE_PW" | base64 -w0)"
	read -r code rc < <(t_curl /dev/null -u "alice:$ALICE_PW" "http://127.0.0.1:$T_PORT/auth?service=$T_SVC" 2>"$E2E_TMP/err")
	note "plain HTTP /auth with Basic: exit $rc, status $code: $(last_err_line)"
	[[ $rc -ne 0 ]] || fail "plain HTTP /auth to the TLS port succeeded"
	assert_eq "status of plain HTTP /auth" 000 "$code"
	# What came back instead of HTTP: a TLS record (content type 0x15, alert).
	first=$(curl -s --max-time 5 --http0.9 "http://127.0.0.1:$T_PORT/healthz" | head -c 1 | od -An -tx1 | tr -d ' \n' || true)
	note "first byte of the reply to plain HTTP: 0x$first"
	assert_eq "first byte of the reply to plain HTTP (TLS alert record)" 15 "$first"
	sleep 0.2
	assert_eq "audit lines for the plain HTTP requests" "" "$(t_audit_since "$mark")"
}

# t_tls_skopeo_push — alice pushes over verified TLS, the test CA trusted
# through --dest-cert-dir only: that one setting covers the registry and the
# realm. regauth issued the token(s) for the push.
t_tls_skopeo_push() {
	record_secret "$ALICE_PW" "$(printf 'alice:%s' "$ALICE_PW" | base64 -w0)"
	local mark
	mark=$(log_mark "$T_REGAUTH_LOG")
	expect_ok "skopeo copy --dest-tls-verify=true --dest-cert-dir (SSL_CERT_FILE unset)" t_push "$T_CERTS" "" v1
	local lines
	lines=$(t_audit_since "$mark")
	note "token requests: $lines"
	grep 'outcome="issued"' <<<"$lines" | grep -F "account=\"alice\"" | grep -qF "repository:$T_REPO:[" ||
		fail "regauth issued no token for alice on $T_REPO during the push"
}

# t_tls_skopeo_inspect — inspect over verified TLS, trust via --cert-dir.
t_tls_skopeo_inspect() {
	expect_ok "skopeo inspect --tls-verify=true --cert-dir (SSL_CERT_FILE unset)" t_inspect "$T_CERTS" ""
	assert_eq "digest of $T_REPO:v1" "$DIG_V1" "$(jq -r .Digest <<<"$E2E_OUT")"
}

# t_tls_skopeo_inspect_ssl_cert_file — the same with an empty cert dir and
# SSL_CERT_FILE naming the bundle: Go's system pool trusts both servers.
t_tls_skopeo_inspect_ssl_cert_file() {
	expect_ok "skopeo inspect --tls-verify=true, empty --cert-dir, SSL_CERT_FILE=bundle" \
		t_inspect "$T_NOCERTS" "$T_BUNDLE"
	assert_eq "digest of $T_REPO:v1" "$DIG_V1" "$(jq -r .Digest <<<"$E2E_OUT")"
}

# t_tls_curl_registry — the registry's challenge names the HTTPS realm, the
# registry refuses plain HTTP, and a catalog token from the realm works.
t_tls_curl_registry() {
	local hdr="$T_DIR/challenge.headers" code rc
	read -r code rc < <(t_curl /dev/null --cacert "$T_PKI/ca.crt" -D "$hdr" "https://$T_REG/v2/")
	assert_eq "status of https://$T_REG/v2/" 401 "$code"
	assert_contains "WWW-Authenticate" "$(grep -i '^www-authenticate:' "$hdr" | tr -d '\r')" \
		"Bearer realm=\"$T_AUTH_URL\",service=\"$T_SVC\""
	read -r code rc < <(t_curl /dev/null "http://$T_REG/v2/" 2>"$E2E_TMP/err")
	note "plain HTTP to the registry: exit $rc, status $code"
	assert_eq "status of plain http://$T_REG/v2/ (Go: client sent HTTP to an HTTPS server)" 400 "$code"

	local tok body="$T_DIR/catalog.body"
	tok=$(env -u CURL_CA_BUNDLE curl -sS -f --max-time 20 --cacert "$T_PKI/ca.crt" -u "alice:$ALICE_PW" -G "$T_AUTH_URL" \
		--data-urlencode "service=$T_SVC" --data-urlencode "scope=registry:catalog:*" | jq -r .token) ||
		fail "no catalog token from $T_AUTH_URL"
	record_secret "$tok"
	read -r code rc < <(t_curl "$body" --cacert "$T_PKI/ca.crt" -H "Authorization: Bearer $tok" "https://$T_REG/v2/_catalog")
	assert_eq "status of GET /v2/_catalog with the token" 200 "$code"
	assert_eq "catalog" "[\"$T_REPO\"]" "$(jq -c .repositories "$body")"
}

# t_tls_untrusted_ca_refused — the commands that work above, with the test
# CA trusted nowhere (empty cert dir, SSL_CERT_FILE unset), fail on the
# registry's certificate; no token is asked for, no tag is created. Then the
# very same inspect with only the trust changed succeeds.
t_tls_untrusted_ca_refused() {
	local amark rmark
	amark=$(log_mark "$T_REGAUTH_LOG")
	rmark=$(log_mark "$T_REGISTRY_LOG")
	t_expect_x509 "skopeo inspect, test CA not trusted" t_inspect "$T_NOCERTS" ""
	assert_contains "the failing URL" "$(cat "$E2E_TMP/err")" "https://$T_REG/v2/"
	t_expect_x509 "skopeo copy, test CA not trusted" t_push "$T_NOCERTS" "" untrusted
	assert_contains "the failing URL" "$(cat "$E2E_TMP/err")" "https://$T_REG/v2/"
	sleep 0.2
	assert_eq "token requests while the CA was not trusted" "" "$(t_audit_since "$amark")"
	log_since "$T_REGISTRY_LOG" "$rmark" | grep -q 'TLS handshake error.*bad certificate' ||
		fail "the registry logged no failed TLS handshake (bad certificate)"
	note "registry: $(log_since "$T_REGISTRY_LOG" "$rmark" | grep -c 'TLS handshake error') failed TLS handshakes"

	expect_ok "the same inspect with the test CA in --cert-dir" t_inspect "$T_CERTS" ""
	assert_eq "digest of $T_REPO:v1" "$DIG_V1" "$(jq -r .Digest <<<"$E2E_OUT")"
	local rc=0
	t_inspect "$T_CERTS" "" "$T_REPO:untrusted" >/dev/null 2>"$E2E_TMP/err" || rc=$?
	[[ $rc -ne 0 ]] || fail "$T_REPO:untrusted exists: the push without trust went through"
	grep -qi 'manifest unknown' "$E2E_TMP/err" || fail "inspect of $T_REPO:untrusted: $(last_err_line)"
}

# t_tls_podman_pull — podman pulls over verified TLS (--cert-dir).
t_tls_podman_pull() {
	expect_ok "podman pull --tls-verify=true --cert-dir" t_trust "" pm pull --tls-verify=true \
		--cert-dir "$T_CERTS" --creds "alice:$ALICE_PW" "$T_REG/$T_REPO:v1"
	expect_ok "podman image inspect" pm image inspect --format '{{.Digest}}' "$T_REG/$T_REPO:v1"
	assert_eq "digest of the pulled image" "$DIG_V1" "$E2E_OUT"
	pm rmi "$T_REG/$T_REPO:v1" >/dev/null 2>&1 || true
}

# t_tls_untrusted_realm — the realm's own certificate is verified: regauth
# is switched (while running) to the look-alike pair from the rogue CA, the
# registry keeps its trusted certificate. The inspect that trusts the test
# CA both ways now gets past the registry (its 401 ping is in the registry
# log) and fails on the realm with the x509 error naming the realm URL;
# regauth audits nothing. Back on the good pair, the same command works.
t_tls_untrusted_realm() {
	trap 't_serve good' EXIT
	t_serve rogue || fail "could not switch regauth to the rogue pair"
	t_wait_served rogue-ca.crt || fail "regauth did not serve the rogue certificate within 10s (no reload?)"
	note "regauth now serves the certificate signed by the rogue CA"
	local code rc
	read -r code rc < <(t_curl /dev/null --cacert "$T_PKI/ca.crt" "$T_BASE/healthz" 2>/dev/null)
	assert_eq "curl exit status with the test CA against the rogue certificate (status $code)" 60 "$rc"

	local amark rmark
	amark=$(log_mark "$T_REGAUTH_LOG")
	rmark=$(log_mark "$T_REGISTRY_LOG")
	t_expect_x509 "skopeo inspect, registry trusted, realm certificate from the rogue CA" \
		t_inspect "$T_CERTS" "$T_BUNDLE"
	assert_contains "the failing URL (the realm)" "$(cat "$E2E_TMP/err")" "$T_AUTH_URL?"
	sleep 0.2
	assert_eq "token requests regauth processed" "" "$(t_audit_since "$amark")"
	local reg
	reg=$(log_since "$T_REGISTRY_LOG" "$rmark")
	grep -q 'GET /v2/ HTTP/[0-9.]*" 401' <<<"$reg" ||
		fail "the registry saw no GET /v2/ (401) from skopeo: its TLS should have been fine"
	if grep -q 'TLS handshake error' <<<"$reg"; then
		fail "a TLS handshake with the registry failed: $(grep 'TLS handshake error' <<<"$reg" | head -n1)"
	fi

	t_serve good || fail "could not switch regauth back to the good pair"
	t_wait_served ca.crt || fail "regauth did not serve the test CA's certificate again within 10s"
	expect_ok "the same inspect with regauth's certificate from the test CA again" t_inspect "$T_CERTS" "$T_BUNDLE"
	assert_eq "digest of $T_REPO:v1" "$DIG_V1" "$(jq -r .Digest <<<"$E2E_OUT")"
}

# ----------------------------------------------------------------- driver ---

TLS_SCENARIOS=(
	regauth-check:t_tls_check
	https-token:t_tls_https_token
	plain-http-refused:t_tls_plain_http_refused
	skopeo-push:t_tls_skopeo_push
	skopeo-inspect:t_tls_skopeo_inspect
	skopeo-inspect-ssl-cert-file:t_tls_skopeo_inspect_ssl_cert_file
	curl-registry:t_tls_curl_registry
	skopeo-untrusted-ca-refused:t_tls_untrusted_ca_refused
	podman-pull:t_tls_podman_pull
	realm-untrusted-cert-refused:t_tls_untrusted_realm
)

# run_tls_setup — bring the tls setup up, run its scenarios (those matching
# $E2E_ONLY, if set), bring it down.
run_tls_setup() {
	local up=0
	echo "== setup tls: regauth and the registry over HTTPS (test CA), clients verifying"
	tls_setup_up || up=$?
	run_scenarios tls "$up" "${TLS_SCENARIOS[@]}"
	tls_setup_down
}
