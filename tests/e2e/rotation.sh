# shellcheck shell=bash disable=SC2034 # SETUP_ERR is read by run_scenarios (lib.sh)
# rotation.sh — rotating the signing key with a real docker-registry that is
# never restarted (distribution reads its rootcertbundle only at start).
#
# Sourced by run.sh after lib.sh and scenarios.sh (uses their helpers,
# ISSUER, IMG_V1/DIG_V1). Entry point: run_rotation_setup.
#
# Setup `rotation`: two regauth servers, two registries, one user (rota,
# push/pull on rot/*):
#   CA way       `keygen --ca` makes a CA, `keygen --signed-by` a leaf
#                (token.pem = leaf + CA); regauth signs with the leaf and
#                sends the chain in x5c; registry A's rootcertbundle holds
#                only the CA.
#   publish way  regauth signs with an "old" self-signed key and publishes
#                the "next" one (token.publish); registry B is started with
#                the bundle `registry-config --out` writes (both
#                certificates), kid libtrust.
#
# Tests:
#   ca-seed                 skopeo pushes rot/app:v1 through registry A
#   ca-leaf-swap-under-load a skopeo push+pull loop runs against registry A
#                           while a new leaf (`keygen --signed-by --force`)
#                           replaces key and certificate on disk; regauth
#                           reloads (log line, new kid); zero failed
#                           operations, some before and some after the
#                           reload; new tokens carry the new leaf in x5c; a
#                           token curl got from the old leaf before the swap
#                           is still accepted by the registry; registry A's
#                           PID never changed
#   publish-jwks-and-bundle /.well-known/jwks.json and the bundle's
#                           jwks.json hold both kids (computed with openssl
#                           from the certificates), the bundle's token.pem
#                           both certificates; check names signing and
#                           published keys
#   publish-old-key         registry B accepts pushes and pulls with tokens
#                           of the old key (kid = old)
#   publish-switch          regauth's config switches token.key to the next
#                           key (and publishes the old one); hot reload;
#                           registry B (same PID) accepts the new tokens
#                           (kid = next) and a token of the old key captured
#                           before the switch
#   unpublished-switch      (the Troubleshooting row) switching to a key that
#                           was never published: the registry refuses with
#                           `token signed by untrusted key with ID: "<kid>"`;
#                           switching back serves again
#   expiry-warning          (the Troubleshooting row) a leaf with --days 5:
#                           `regauth check` warns "expires in 4 days" (or 5)
#   chain-out-of-order      (the Troubleshooting row) CA first, leaf second:
#                           `regauth check` exits 1 naming the file and why
#   publish-own-key         (the Troubleshooting row) token.publish naming
#                           the signing certificate: `regauth check` warns

RO_USER="rota"
RO_PW="rota-rotation-Pw1"

# ------------------------------------------------------------------ setup ---

rotation_setup_up() {
	RO_DIR="$E2E_TMP/rotation"
	local log="$E2E_LOGS/rotation_startup.log" h ap bp rap rbp
	SETUP_ERR=""
	mkdir -p "$RO_DIR"
	record_secret "$RO_PW" "$(printf '%s:%s' "$RO_USER" "$RO_PW" | base64 -w0)"
	if ! {
		"$REGAUTH" keygen --ca --out "$RO_DIR/ca" &&
			"$REGAUTH" keygen --out "$RO_DIR/certs" --signed-by "$RO_DIR/ca" --days 90 &&
			"$REGAUTH" keygen --out "$RO_DIR/old" &&
			"$REGAUTH" keygen --out "$RO_DIR/next"
	} >>"$log" 2>&1; then
		SETUP_ERR="regauth keygen failed: $(tail -n1 "$log")"
		return 1
	fi
	h=$(printf '%s' "$RO_PW" | "$REGAUTH" hash --cost 4) || {
		SETUP_ERR="regauth hash failed"
		return 1
	}
	free_ports ap bp rap rbp || return 1
	RO_A_BASE="http://127.0.0.1:$ap" RO_B_BASE="http://127.0.0.1:$bp"
	RO_REG_A="127.0.0.1:$rap" RO_REG_B="127.0.0.1:$rbp"
	RO_SVC="e2e-registry-rotation"
	local users acl
	users=$(printf 'users:\n  "%s": {password: "%s"}\n' "$RO_USER" "$h")
	acl=$(printf 'acl:\n  - match: {account: "%s", name: "rot/*"}\n    actions: ["push", "pull"]\n' "$RO_USER")

	cat >"$RO_DIR/regauth-a.yml" <<EOF
server:
  addr: "127.0.0.1:$ap"
token:
  issuer: "$ISSUER"
  expiration: 900
  key: "$RO_DIR/certs/token.key"
  certificate: "$RO_DIR/certs/token.pem"
  x5c: true
$users
$acl
EOF
	ro_write_b old next
	if ! "$REGAUTH" check --config "$RO_DIR/regauth-a.yml" >>"$log" 2>&1 ||
		! "$REGAUTH" check --config "$RO_DIR/regauth-b.yml" >>"$log" 2>&1; then
		SETUP_ERR="regauth check rejects a rotation config: $(tail -n1 "$log")"
		return 1
	fi
	# Registry B's bundle: what registry-config writes for the publish way.
	if ! "$REGAUTH" registry-config --config "$RO_DIR/regauth-b.yml" --service "$RO_SVC" \
		--out "$RO_DIR/bundle" >>"$log" 2>&1; then
		SETUP_ERR="regauth registry-config --out failed: $(tail -n1 "$log")"
		return 1
	fi
	write_registry_config "$RO_DIR/registry-a.yml" "$RO_DIR/data-a" "$RO_REG_A" "$RO_A_BASE/auth" "$RO_SVC" "$RO_DIR/ca/ca.pem"
	write_registry_config "$RO_DIR/registry-b.yml" "$RO_DIR/data-b" "$RO_REG_B" "$RO_B_BASE/auth" "$RO_SVC" "$RO_DIR/bundle/token.pem"

	RO_A_LOG="$E2E_LOGS/rotation_regauth.log"
	setup_regauth "$RO_A_LOG" "$RO_DIR/regauth-a.yml" "$RO_A_BASE" "$log" || return 1
	RO_A_PID=$BG_PID
	RO_B_LOG="$E2E_LOGS/rotation_regauth-b.log"
	setup_regauth "$RO_B_LOG" "$RO_DIR/regauth-b.yml" "$RO_B_BASE" "$log" || return 1
	RO_B_PID=$BG_PID
	setup_registry "$E2E_LOGS/rotation_registry.log" "$RO_DIR/registry-a.yml" "http://$RO_REG_A" "$log" || return 1
	RO_REG_A_PID=$BG_PID
	setup_registry "$E2E_LOGS/rotation_registry-b.log" "$RO_DIR/registry-b.yml" "http://$RO_REG_B" "$log" || return 1
	RO_REG_B_PID=$BG_PID
	export RO_DIR RO_A_BASE RO_B_BASE RO_REG_A RO_REG_B RO_SVC RO_A_LOG RO_B_LOG RO_REG_A_PID RO_REG_B_PID
	return 0
}

# ro_write_b SIGNING PUBLISHED — regauth B's config (written through a
# rename): sign with $RO_DIR/SIGNING's pair, publish $RO_DIR/PUBLISHED's
# certificate.
ro_write_b() {
	cat >"$RO_DIR/regauth-b.yml.new" <<EOF
server:
  addr: "${RO_B_BASE#http://}"
token:
  issuer: "$ISSUER"
  expiration: 900
  key: "$RO_DIR/$1/token.key"
  certificate: "$RO_DIR/$1/token.pem"
  publish:
    - "$RO_DIR/$2/token.pem"
users:
  "$RO_USER": {password: "$(grep -o '\$2[^"]*' "$RO_DIR/regauth-a.yml" | head -n1)"}
acl:
  - match: {account: "$RO_USER", name: "rot/*"}
    actions: ["push", "pull"]
EOF
	mv -f "$RO_DIR/regauth-b.yml.new" "$RO_DIR/regauth-b.yml"
}

rotation_setup_down() {
	stop_vars RO_REG_A_PID RO_REG_B_PID RO_A_PID RO_B_PID
}

# ---------------------------------------------------------------- helpers ---

# ro_token BASE — a token for rota (pull and push on rot/app) from the
# regauth at BASE, by curl; recorded as a secret.
ro_token() {
	local t
	t=$(curl -sS --max-time 20 -u "$RO_USER:$RO_PW" -G "$1/auth" --data-urlencode "service=$RO_SVC" \
		--data-urlencode "scope=repository:rot/app:pull,push" | jq -r '.token // empty') || true
	[[ -n "$t" ]] || fail "no token from $1/auth"
	record_secret "$t"
	printf '%s' "$t"
}

# ro_manifest_status REG TOKEN — HTTP status of GET rot/app:v1's manifest
# on REG with TOKEN (the registry's own verdict on the token).
ro_manifest_status() {
	curl -sS -o /dev/null -w '%{http_code}' --max-time 20 -H "Authorization: Bearer $2" \
		-H 'Accept: application/vnd.oci.image.manifest.v1+json' \
		"http://$1/v2/rot/app/manifests/v1"
}

# ro_wait_reload LOG COUNT — wait (up to 10 s) until LOG holds more than
# COUNT "configuration reloaded" lines.
ro_wait_reload() {
	local i n
	for ((i = 0; i < 100; i++)); do
		n=$(grep -c 'configuration reloaded' "$1" || true)
		((n > $2)) && return 0
		sleep 0.1
	done
	return 1
}

ro_kid() { jwt_part "$1" 0 | jq -r '.kid // empty'; }

# ro_loop REG RESULTS STOP — push rot/loop:N and pull it back until the file
# STOP exists; one line per round in RESULTS: "ok N NANOS" or "fail N NANOS".
ro_loop() {
	local reg=$1 results=$2 stop=$3 i=0 d
	d=$(mktemp -d "$RO_DIR/loop.XXXXXX")
	while [[ ! -e "$stop" ]]; do
		i=$((i + 1))
		if sk copy --dest-tls-verify=false --dest-creds "$RO_USER:$RO_PW" \
			"oci:$IMG_V1:v1" "docker://$reg/rot/loop:$i" >>"$d/log" 2>&1 &&
			sk copy --src-tls-verify=false --src-creds "$RO_USER:$RO_PW" \
				"docker://$reg/rot/loop:$i" "dir:$d/pull" >>"$d/log" 2>&1; then
			echo "ok $i $(date +%s%N)" >>"$results"
		else
			echo "fail $i $(date +%s%N)" >>"$results"
		fi
		rm -rf "$d/pull"
	done
	cat "$d/log" >&2
}

# ------------------------------------------------------------------ tests ---

t_ro_ca_seed() {
	expect_ok "push rot/app:v1 (CA way)" sk copy --dest-tls-verify=false --dest-creds "$RO_USER:$RO_PW" \
		"oci:$IMG_V1:v1" "docker://$RO_REG_A/rot/app:v1"
	expect_ok "push rot/app:v1 (publish way)" sk copy --dest-tls-verify=false --dest-creds "$RO_USER:$RO_PW" \
		"oci:$IMG_V1:v1" "docker://$RO_REG_B/rot/app:v1"
}

t_ro_ca_leaf_swap_under_load() {
	local old_token old_leaf new_token results="$RO_DIR/loop.results" stop="$RO_DIR/loop.stop"
	local reloads loop_pid t_reload n_before n_after fails i
	rm -f "$results" "$stop"
	old_token=$(ro_token "$RO_A_BASE")
	old_leaf=$(jwt_part "$old_token" 0 | jq -r '.x5c[0]')
	[[ "$(jwt_part "$old_token" 0 | jq -r '.x5c | length')" == 2 ]] || fail "x5c does not hold leaf + CA: $(jwt_part "$old_token" 0)"
	assert_eq "x5c[1] is the CA" "$(cert_der_b64 "$RO_DIR/ca/ca.pem")" "$(jwt_part "$old_token" 0 | jq -r '.x5c[1]')"
	assert_eq "old token accepted before the swap" 200 "$(ro_manifest_status "$RO_REG_A" "$old_token")"

	ro_loop "$RO_REG_A" "$results" "$stop" &
	loop_pid=$!
	for ((i = 0; i < 300; i++)); do
		(($(grep -c '^ok' "$results" 2>/dev/null || echo 0) >= 2)) && break
		sleep 0.1
	done
	reloads=$(grep -c 'configuration reloaded' "$RO_A_LOG" || true)
	note "replacing the leaf on disk: regauth keygen --signed-by ca --force"
	"$REGAUTH" keygen --out "$RO_DIR/certs" --signed-by "$RO_DIR/ca" --days 90 --force >&2 ||
		{ touch "$stop"; wait "$loop_pid"; fail "keygen --signed-by failed"; }
	if ! ro_wait_reload "$RO_A_LOG" "$reloads"; then
		touch "$stop"
		wait "$loop_pid" || true
		fail "regauth did not reload within 10s after the leaf changed"
	fi
	t_reload=$(date +%s%N)
	note "regauth reloaded: $(grep 'configuration reloaded' "$RO_A_LOG" | tail -n1)"
	for ((i = 0; i < 600; i++)); do
		n_after=$(awk -v t="$t_reload" '$1 == "ok" && $3 > t' "$results" | wc -l)
		((n_after >= 3)) && break
		sleep 0.1
	done
	touch "$stop"
	wait "$loop_pid" || true
	note "loop results:"$'\n'"$(cat "$results")"
	fails=$(grep -c '^fail' "$results" || true)
	n_before=$(awk -v t="$t_reload" '$1 == "ok" && $3 <= t' "$results" | wc -l)
	n_after=$(awk -v t="$t_reload" '$1 == "ok" && $3 > t' "$results" | wc -l)
	note "rounds: $n_before ok before the reload, $n_after ok after, $fails failed"
	assert_eq "failed push/pull rounds during the swap" 0 "$fails"
	((n_before >= 2 && n_after >= 3)) || fail "too few rounds around the swap: $n_before before, $n_after after"

	new_token=$(ro_token "$RO_A_BASE")
	[[ "$(jwt_part "$new_token" 0 | jq -r '.x5c[0]')" != "$old_leaf" ]] || fail "new tokens still carry the old leaf"
	assert_eq "new x5c[0] is the new leaf" "$(cert_der_b64 "$RO_DIR/certs/token.pem")" "$(jwt_part "$new_token" 0 | jq -r '.x5c[0]')"
	assert_eq "new token accepted" 200 "$(ro_manifest_status "$RO_REG_A" "$new_token")"
	assert_eq "token of the old leaf (taken before the swap) still accepted" 200 "$(ro_manifest_status "$RO_REG_A" "$old_token")"
	kill -0 "$RO_REG_A_PID" || fail "registry A is gone"
	assert_eq "registry A never restarted (one start in its log)" 1 "$(grep -c 'listening on' "$E2E_LOGS/rotation_registry.log")"
}

t_ro_publish_jwks_and_bundle() {
	local old_kid next_kid served written
	old_kid=$(libtrust_kid "$RO_DIR/old/token.pem")
	next_kid=$(libtrust_kid "$RO_DIR/next/token.pem")
	served=$(curl -sS --max-time 10 "$RO_B_BASE/.well-known/jwks.json") || fail "GET jwks.json failed"
	note "served JWKS: $served"
	assert_eq "served kids" "$old_kid $next_kid" "$(jq -r '[.keys[].kid] | join(" ")' <<<"$served")"
	written=$(cat "$RO_DIR/bundle/jwks.json")
	assert_eq "bundle jwks.json kids" "$old_kid $next_kid" "$(jq -r '[.keys[].kid] | join(" ")' <<<"$written")"
	assert_eq "certificates in the bundle's token.pem" 2 "$(grep -c 'BEGIN CERTIFICATE' "$RO_DIR/bundle/token.pem")"
	expect_ok "check" "$REGAUTH" check --config "$RO_DIR/regauth-b.yml"
	assert_contains "check" "$E2E_OUT" "key:        signing kid $old_kid"
	assert_contains "check" "$E2E_OUT" "key:        published kid $next_kid"
	local metrics
	metrics=$(curl -sS --max-time 10 "$RO_B_BASE/metrics")
	assert_contains "metrics" "$metrics" "regauth_token_keys{kid=\"$next_kid\",role=\"published\""
	assert_contains "metrics" "$metrics" "regauth_signing_certificate_expiry_seconds{kid=\"$old_kid\"}"
}

t_ro_publish_old_key() {
	local t
	t=$(ro_token "$RO_B_BASE")
	assert_eq "kid of the tokens" "$(libtrust_kid "$RO_DIR/old/token.pem")" "$(ro_kid "$t")"
	expect_ok "push rot/app:v2 (old key)" sk copy --dest-tls-verify=false --dest-creds "$RO_USER:$RO_PW" \
		"oci:$IMG_V1:v1" "docker://$RO_REG_B/rot/app:v2"
	expect_ok "pull rot/app:v2 (old key)" sk copy --src-tls-verify=false --src-creds "$RO_USER:$RO_PW" \
		"docker://$RO_REG_B/rot/app:v2" "dir:$RO_DIR/pulled-old"
	printf '%s' "$t" >"$RO_DIR/old-token"
}

t_ro_publish_switch() {
	local reloads t old_token
	old_token=$(cat "$RO_DIR/old-token" 2>/dev/null) || old_token=$(ro_token "$RO_B_BASE")
	reloads=$(grep -c 'configuration reloaded' "$RO_B_LOG" || true)
	note "switching regauth B to the next key, publishing the old one"
	ro_write_b next old
	ro_wait_reload "$RO_B_LOG" "$reloads" || fail "regauth B did not reload within 10s after its config changed"
	t=$(ro_token "$RO_B_BASE")
	assert_eq "kid of the tokens after the switch" "$(libtrust_kid "$RO_DIR/next/token.pem")" "$(ro_kid "$t")"
	expect_ok "push rot/app:v3 (next key)" sk copy --dest-tls-verify=false --dest-creds "$RO_USER:$RO_PW" \
		"oci:$IMG_V1:v1" "docker://$RO_REG_B/rot/app:v3"
	expect_ok "pull rot/app:v3 (next key)" sk copy --src-tls-verify=false --src-creds "$RO_USER:$RO_PW" \
		"docker://$RO_REG_B/rot/app:v3" "dir:$RO_DIR/pulled-next"
	assert_eq "token of the new key accepted" 200 "$(ro_manifest_status "$RO_REG_B" "$t")"
	assert_eq "token of the old key (before the switch) still accepted" 200 "$(ro_manifest_status "$RO_REG_B" "$old_token")"
	kill -0 "$RO_REG_B_PID" || fail "registry B is gone"
	assert_eq "registry B never restarted (one start in its log)" 1 "$(grep -c 'listening on' "$E2E_LOGS/rotation_registry-b.log")"
}

t_ro_unpublished_switch() {
	local reloads t kid m
	"$REGAUTH" keygen --out "$RO_DIR/third" >&2 || fail "keygen failed"
	kid=$(libtrust_kid "$RO_DIR/third/token.pem")
	reloads=$(grep -c 'configuration reloaded' "$RO_B_LOG" || true)
	m=$(log_mark "$E2E_LOGS/rotation_registry-b.log")
	note "switching regauth B to a key the registry never saw ($kid)"
	ro_write_b third next
	ro_wait_reload "$RO_B_LOG" "$reloads" || fail "regauth B did not reload"
	t=$(ro_token "$RO_B_BASE")
	assert_eq "kid of the tokens" "$kid" "$(ro_kid "$t")"
	expect_auth_denied "pull with the unpublished key" sk inspect --tls-verify=false --creds "$RO_USER:$RO_PW" \
		"docker://$RO_REG_B/rot/app:v1"
	log_since "$E2E_LOGS/rotation_registry-b.log" "$m" | grep -qF "token signed by untrusted key with ID: \\\"$kid\\\"" ||
		fail "registry log lacks 'token signed by untrusted key with ID: \\\"$kid\\\"'"
	reloads=$(grep -c 'configuration reloaded' "$RO_B_LOG" || true)
	ro_write_b next old
	ro_wait_reload "$RO_B_LOG" "$reloads" || fail "regauth B did not reload"
	expect_ok "pull after switching back" sk inspect --tls-verify=false --creds "$RO_USER:$RO_PW" \
		"docker://$RO_REG_B/rot/app:v1"
}

t_ro_expiry_warning() {
	local d="$RO_DIR/expiring" rc=0
	"$REGAUTH" keygen --out "$d" --signed-by "$RO_DIR/ca" --days 5 >&2 || fail "keygen failed"
	sed -e "s|$RO_DIR/certs/|$d/|g" "$RO_DIR/regauth-a.yml" >"$d/regauth.yml"
	"$REGAUTH" check --config "$d/regauth.yml" >"$d/out" 2>&1 || rc=$?
	cat "$d/out" >&2
	assert_eq "check exit status" 0 "$rc"
	grep -Eq '^warning: token.certificate: the signing certificate expires in [45] days \(' "$d/out" ||
		fail "no expiry warning in: $(tr '\n' ' ' <"$d/out" | cut -c1-300)"
}

t_ro_chain_out_of_order() {
	local d="$RO_DIR/disorder" rc=0
	mkdir -p "$d"
	cp "$RO_DIR/certs/token.key" "$d/token.key"
	# CA first, then the leaf.
	awk '/BEGIN CERT/{n++} {print > (FILENAME "." n)}' "$RO_DIR/certs/token.pem"
	cat "$RO_DIR/certs/token.pem.2" "$RO_DIR/certs/token.pem.1" >"$d/token.pem"
	rm -f "$RO_DIR/certs/token.pem."*
	sed -e "s|$RO_DIR/certs/|$d/|g" "$RO_DIR/regauth-a.yml" >"$d/regauth.yml"
	"$REGAUTH" check --config "$d/regauth.yml" >"$d/out" 2>&1 || rc=$?
	cat "$d/out" >&2
	assert_eq "check exit status" 1 "$rc"
	assert_contains "check" "$(cat "$d/out")" "token.certificate ($d/token.pem): certificate does not hold the public key of the signing key"
}

t_ro_publish_own_key() {
	local d="$RO_DIR/own" rc=0
	mkdir -p "$d"
	sed -e "s|^  publish:|  publish:\n    - \"$RO_DIR/next/token.pem\"|" "$RO_DIR/regauth-b.yml" >"$d/regauth.yml"
	"$REGAUTH" check --config "$d/regauth.yml" >"$d/out" 2>&1 || rc=$?
	cat "$d/regauth.yml" "$d/out" >&2
	assert_eq "check exit status" 0 "$rc"
	assert_contains "check" "$(cat "$d/out")" "warning: token.publish: $RO_DIR/next/token.pem holds the signing key itself"
}

# ----------------------------------------------------------------- driver ---

ROTATION_SCENARIOS=(
	ca-seed:t_ro_ca_seed
	ca-leaf-swap-under-load:t_ro_ca_leaf_swap_under_load
	publish-jwks-and-bundle:t_ro_publish_jwks_and_bundle
	publish-old-key:t_ro_publish_old_key
	publish-switch:t_ro_publish_switch
	unpublished-switch:t_ro_unpublished_switch
	expiry-warning:t_ro_expiry_warning
	chain-out-of-order:t_ro_chain_out_of_order
	publish-own-key:t_ro_publish_own_key
)

# run_rotation_setup — bring the setup up, run its scenarios, bring it down.
run_rotation_setup() {
	local up=0
	echo "== setup rotation: key rotation with registries never restarted (CA way, publish way)"
	rotation_setup_up || up=$?
	run_scenarios rotation "$up" "${ROTATION_SCENARIOS[@]}"
	rotation_setup_down
}
