# shellcheck shell=bash
# unix.sh — regauth on a Unix socket behind nginx: `server.net: unix`, nginx
# (`proxy_pass http://unix:...`) as the registry's realm, adding the client's
# address to X-Forwarded-For, which regauth reads (`real_ip_pos: -1`) for
# ACL `ip` rules.
#
# Sourced by run.sh after lib.sh and scenarios.sh (fixtures, ISSUER,
# ALICE_PW).

# unix_setup_up — keygen, configs, start regauth on its socket, nginx in
# front and the registry; wait until each answers. Sets SETUP_ERR and
# returns 1 on error.
unix_setup_up() {
	U_DIR="$E2E_TMP/unix"
	U_SOCK="$U_DIR/run/regauth.sock"
	SETUP_ERR=""
	mkdir -p "$U_DIR/keys" "$U_DIR/run" "$U_DIR/nginx/logs" "$U_DIR/nginx/tmp"
	# As an operator gives the proxy access: the socket's directory belongs
	# to the group nginx's workers run as (Debian: nobody:nogroup when the
	# master runs as root) with the setgid bit, so the socket (mode 0660)
	# takes that group.
	chgrp nogroup "$U_DIR/run" && chmod 2750 "$U_DIR/run" ||
		{ SETUP_ERR="could not give $U_DIR/run to the group nogroup"; return 1; }
	local log="$E2E_LOGS/unix_startup.log" np rp h_alice
	if ! "$REGAUTH" keygen --out "$U_DIR/keys" --alg ES256 >>"$log" 2>&1; then
		SETUP_ERR="regauth keygen failed: $(tail -n1 "$log")"
		return 1
	fi
	h_alice=$(cat "$E2E_TMP/fixtures/alice.hash" 2>/dev/null) || {
		SETUP_ERR="no password hashes (cli/hash failed)"
		return 1
	}
	free_ports np rp || return 1
	U_FRONT="http://127.0.0.1:$np"
	U_REG="127.0.0.1:$rp"
	U_SVC="e2e-registry-unix"

	# A stale socket, as a crashed run leaves it: regauth must replace it.
	python3 -c 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])' "$U_SOCK" ||
		{ SETUP_ERR="could not make a stale socket at $U_SOCK"; return 1; }

	cat >"$U_DIR/regauth.yml" <<EOF
server:
  net: unix
  addr: "$U_SOCK"
  real_ip_header: X-Forwarded-For
  real_ip_pos: -1
token:
  issuer: "$ISSUER"
  expiration: 900
  certificate: "$U_DIR/keys/token.pem"
  key: "$U_DIR/keys/token.key"
users:
  alice: {password: "$h_alice"}
acl:
  - match: {account: "alice", name: "lan/*", ip: "127.0.0.0/8"}
    actions: ["*"]
    comment: "alice, from the loopback network"
  - match: {account: "alice", name: "office/*", ip: "10.0.0.0/8"}
    actions: ["*"]
    comment: "alice, from the office network"
EOF

	cat >"$U_DIR/nginx/nginx.conf" <<EOF
worker_processes 1;
error_log logs/error.log info;
pid logs/nginx.pid;
events { worker_connections 64; }
http {
    access_log logs/access.log;
    client_body_temp_path tmp/body;
    proxy_temp_path tmp/proxy;
    fastcgi_temp_path tmp/fastcgi;
    uwsgi_temp_path tmp/uwsgi;
    scgi_temp_path tmp/scgi;
    server {
        listen 127.0.0.1:$np;
        location / {
            proxy_pass http://unix:$U_SOCK:;
            proxy_set_header Host \$host;
            proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
        }
    }
}
EOF

	write_registry_config "$U_DIR/registry.yml" "$U_DIR/registry-data" "$U_REG" "$U_FRONT/auth" "$U_SVC" "$U_DIR/keys/token.pem"

	U_REGAUTH_LOG="$E2E_LOGS/unix_regauth.log"
	start_bg "$U_REGAUTH_LOG" env NO_COLOR=1 RUST_LOG="$E2E_REGAUTH_LOG_LEVEL" "$REGAUTH" serve --config "$U_DIR/regauth.yml"
	U_REGAUTH_PID=$BG_PID
	printf '%s\t%s\n' "$U_REGAUTH_PID" "$U_REGAUTH_LOG" >>"$E2E_REGAUTH_LOGS"
	start_bg "$E2E_LOGS/unix_nginx.log" nginx -p "$U_DIR/nginx/" -c "$U_DIR/nginx/nginx.conf" -g 'daemon off;'
	U_NGINX_PID=$BG_PID
	if ! wait_http "$U_FRONT/healthz" 200 "$U_REGAUTH_PID" 20 >>"$log" 2>&1; then
		SETUP_ERR="regauth behind nginx did not answer: $(tail -n1 "$log"); regauth: $(head -n 3 "$U_REGAUTH_LOG" | tr '\n' ' ' | cut -c1-300); nginx: $(tail -n 2 "$U_DIR/nginx/logs/error.log" 2>/dev/null | tr '\n' ' ' | cut -c1-300)"
		return 1
	fi
	U_REGISTRY_LOG="$E2E_LOGS/unix_registry.log"
	setup_registry "$U_REGISTRY_LOG" "$U_DIR/registry.yml" "http://$U_REG" "$log" || return 1
	U_REGISTRY_PID=$BG_PID
	export U_DIR U_SOCK U_FRONT U_REG U_SVC U_REGAUTH_LOG
}

unix_setup_down() {
	stop_vars U_REGISTRY_PID U_NGINX_PID U_REGAUTH_PID
}

# t_u_socket — the stale socket was replaced by a live one, mode 0660, in
# its directory's group.
t_u_socket() {
	[[ -S "$U_SOCK" ]] || fail "$U_SOCK is not a socket"
	assert_eq "socket mode and group" "660 nogroup" "$(stat -c '%a %G' "$U_SOCK")"
	expect_ok "healthz over the socket itself" curl -sS -f --max-time 5 --unix-socket "$U_SOCK" http://regauth/healthz
}

# t_u_skopeo_push_pull — alice pushes and pulls lan/* through the registry
# whose realm is nginx in front of the socket.
t_u_skopeo_push_pull() {
	expect_ok "push lan/app:v1" sk copy --dest-tls-verify=false --dest-creds "alice:$ALICE_PW" \
		"oci:$IMG_V1:v1" "docker://$U_REG/lan/app:v1"
	rm -rf "$U_DIR/pulled"
	expect_ok "pull lan/app:v1" sk copy --src-tls-verify=false --src-creds "alice:$ALICE_PW" \
		"docker://$U_REG/lan/app:v1" "dir:$U_DIR/pulled"
	[[ -s "$U_DIR/pulled/${V1_LAYER#sha256:}" ]] || fail "pulled layer ${V1_LAYER} missing"
	expect_granted "$U_REGAUTH_LOG" alice "repository:lan/app:[pull,push]"
	log_has "$U_REGAUTH_LOG" 0 'regauth::audit' 'account="alice"' 'ip=127.0.0.1' ||
		fail "the audit lines do not give the address nginx forwarded (127.0.0.1)"
}

# t_u_ip_rule_from_forwarded_for — the `ip` rule is decided by the address
# nginx appended, not by one the client wrote itself.
t_u_ip_rule_from_forwarded_for() {
	expect_auth_denied "push office/app:v1 from 127.0.0.1" sk copy --dest-tls-verify=false \
		--dest-creds "alice:$ALICE_PW" "oci:$IMG_V1:v1" "docker://$U_REG/office/app:v1"
	expect_ok "token with a forged X-Forwarded-For" curl -sS -f --max-time 10 -u "alice:$ALICE_PW" \
		-H 'X-Forwarded-For: 10.1.2.3' -G "$U_FRONT/auth" \
		--data-urlencode "service=$U_SVC" --data-urlencode "scope=repository:office/app:pull,push"
	local payload
	payload=$(jwt_part "$(jq -r .token <<<"$E2E_OUT")" 1)
	assert_eq "access for office/app with a forged header" '[{"type":"repository","name":"office/app","actions":[]}]' \
		"$(jq -c .access <<<"$payload")"
	expect_granted "$U_REGAUTH_LOG" alice "repository:office/app:[]"
}

# t_u_no_forwarded_for_refused — a request that bypasses the proxy (straight
# to the socket, no X-Forwarded-For) is refused, never taken for the proxy.
t_u_no_forwarded_for_refused() {
	local code
	code=$(curl -sS -o "$E2E_TMP/out" -w '%{http_code}' --max-time 5 --unix-socket "$U_SOCK" \
		-u "alice:$ALICE_PW" "http://regauth/auth?service=$U_SVC&scope=repository:lan/app:pull")
	assert_eq "status without X-Forwarded-For" 400 "$code"
	assert_contains "body" "$(cat "$E2E_TMP/out")" "client address"
}

# t_u_socket_removed_on_shutdown — SIGTERM: regauth stops and removes its
# socket (last test of the setup).
t_u_socket_removed_on_shutdown() {
	stop_pid "$U_REGAUTH_PID"
	U_REGAUTH_PID=""
	[[ ! -e "$U_SOCK" ]] || fail "$U_SOCK still exists after regauth stopped"
}

UNIX_SCENARIOS=(
	socket:t_u_socket
	skopeo-push-pull:t_u_skopeo_push_pull
	ip-rule-from-forwarded-for:t_u_ip_rule_from_forwarded_for
	no-forwarded-for-refused:t_u_no_forwarded_for_refused
	socket-removed-on-shutdown:t_u_socket_removed_on_shutdown
)

# run_unix_setup — bring the setup up, run its scenarios, bring it down.
run_unix_setup() {
	local up=0
	echo "== setup unix: regauth on a Unix socket behind nginx (server.net: unix)"
	unix_setup_up || up=$?
	run_scenarios unix "$up" "${UNIX_SCENARIOS[@]}"
	unix_setup_down
}
