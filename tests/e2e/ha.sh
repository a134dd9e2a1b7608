# shellcheck shell=bash
# ha.sh — two regauth replicas behind nginx, sharing their failed-login
# counts through Redis (`throttle.redis`), as the realm of a real
# docker-registry. Every configuration file comes from examples/ha/
# (rendered with its render.sh), so the example is what is tested.
#
#   ha/flood-limit-in-total        a wrong-password flood from one address
#                                  (127.0.0.2), spread by nginx over both
#                                  replicas, gets 429 after
#                                  max_failures_per_ip failures in total
#   ha/push-pull-replica-killed    a skopeo push/pull loop keeps succeeding
#                                  while each replica in turn is killed
#                                  (SIGKILL) and restarted
#   ha/redis-stopped               with Redis stopped, logins go on, each
#                                  replica counts the outage in its metric
#                                  and logs it once; with Redis back, it is
#                                  used again
#
# Sourced by run.sh after lib.sh and scenarios.sh (fixtures, ISSUER).

HA_ALICE_PW="alice-ha-Pw1"
HA_LIMIT=10 # examples/ha/regauth/config.yml: max_failures_per_ip

# Tests run in subshells and restart processes, so the live PIDs and log
# files are kept in files under $HA_DIR/state: ha_pid NAME, ha_log NAME.
ha_pid() { cat "$HA_DIR/state/$1.pid" 2>/dev/null || true; }
ha_log() { cat "$HA_DIR/state/$1.log"; }

# ha_start_replica N — start replica N (1 or 2) on its port. Its log gets a
# new file per start (ha_regauthN-<time>.log).
ha_start_replica() {
	local n=$1 port log
	port=HA_PORT_$n
	log="$E2E_LOGS/ha_regauth$n-$(date +%s%N).log"
	start_regauth "$log" "$HA_DIR/regauth$n.yml" "http://127.0.0.1:${!port}" || return 1
	echo "$BG_PID" >"$HA_DIR/state/regauth$n.pid"
	echo "$log" >"$HA_DIR/state/regauth$n.log"
}

# ha_start_redis — redis-server from the rendered examples/ha/redis/redis.conf.
ha_start_redis() {
	start_bg "$E2E_LOGS/ha_redis.log" redis-server "$HA_CONF/redis/redis.conf"
	echo "$BG_PID" >"$HA_DIR/state/redis.pid"
	local i
	for ((i = 0; i < 100; i++)); do
		[[ "$(redis-cli -p "$HA_REDIS_PORT" ping 2>/dev/null)" == PONG ]] && return 0
		sleep 0.1
	done
	echo "redis-server did not answer on 127.0.0.1:$HA_REDIS_PORT" >&2
	return 1
}

# ha_setup_up — keygen, hash, render examples/ha, start Redis, both
# replicas, nginx and the registry. Sets SETUP_ERR and returns 1 on error.
ha_setup_up() {
	HA_DIR="$E2E_TMP/ha"
	HA_CONF="$HA_DIR/conf"
	SETUP_ERR=""
	local keys="$HA_DIR/keys" log="$E2E_LOGS/ha_startup.log" h np rp p1 p2 redis_port
	mkdir -p "$keys" "$HA_DIR/redis" "$HA_DIR/state"
	command -v redis-server >/dev/null && command -v redis-cli >/dev/null ||
		{ SETUP_ERR="redis-server missing: install with tests/e2e/deps.sh (apt-get install redis-server)"; return 1; }
	if ! "$REGAUTH" keygen --out "$keys" --alg ES256 >>"$log" 2>&1; then
		SETUP_ERR="regauth keygen failed: $(tail -n1 "$log")"
		return 1
	fi
	if ! h=$(printf '%s' "$HA_ALICE_PW" | "$REGAUTH" hash --cost 4 2>>"$log"); then
		SETUP_ERR="regauth hash failed: $(tail -n1 "$log")"
		return 1
	fi
	free_ports np rp p1 p2 redis_port || return 1
	HA_FRONT="http://127.0.0.1:$np"
	HA_REG="127.0.0.1:$rp"
	HA_PORT_1=$p1 HA_PORT_2=$p2 HA_REDIS_PORT=$redis_port
	HA_SVC="e2e-registry-ha"
	if ! "$REPO_ROOT/examples/ha/render.sh" "$HA_CONF" \
		LISTEN="127.0.0.1:$np" REPLICA_1="127.0.0.1:$p1" REPLICA_2="127.0.0.1:$p2" \
		REGAUTH_LISTEN="127.0.0.1:$p1" ISSUER="$ISSUER" \
		TOKEN_KEY="$keys/token.key" TOKEN_CERT="$keys/token.pem" \
		REDIS_URL="redis://127.0.0.1:$redis_port/0" ALICE_HASH="$h" \
		REDIS_BIND=127.0.0.1 REDIS_PORT="$redis_port" REDIS_DIR="$HA_DIR/redis" \
		REGISTRY_DATA="$HA_DIR/registry-data" REGISTRY_LISTEN="$HA_REG" HTTP_SECRET="e2e-not-a-secret" \
		REALM="$HA_FRONT/auth" REGISTRY_SERVICE="$HA_SVC" >>"$log" 2>&1; then
		SETUP_ERR="examples/ha/render.sh failed: $(tail -n1 "$log")"
		return 1
	fi
	# The same file for both replicas, each on its own port (on separate
	# hosts they would share the address too).
	cp "$HA_CONF/regauth/config.yml" "$HA_DIR/regauth1.yml"
	sed "s|127.0.0.1:$p1|127.0.0.1:$p2|" "$HA_CONF/regauth/config.yml" >"$HA_DIR/regauth2.yml"

	ha_start_redis >>"$log" 2>&1 || { SETUP_ERR="redis: $(tail -n1 "$log")"; return 1; }
	if ! "$REGAUTH" check --config "$HA_DIR/regauth1.yml" >>"$log" 2>&1 ||
		grep -q "warning: throttle.redis" "$log"; then
		SETUP_ERR="regauth check on examples/ha/regauth/config.yml: $(tail -n1 "$log")"
		return 1
	fi
	ha_start_replica 1 >>"$log" 2>&1 || { SETUP_ERR="replica 1 did not start: $(tail -n1 "$log")"; return 1; }
	ha_start_replica 2 >>"$log" 2>&1 || { SETUP_ERR="replica 2 did not start: $(tail -n1 "$log")"; return 1; }
	local ng="$HA_CONF/nginx"
	if ! nginx -t -p "$ng/" -c "$ng/nginx.conf" >>"$log" 2>&1; then
		SETUP_ERR="nginx -t rejects examples/ha/nginx: $(grep -i emerg "$log" | tail -n1)"
		return 1
	fi
	start_bg "$E2E_LOGS/ha_nginx.log" nginx -p "$ng/" -c "$ng/nginx.conf" -g 'daemon off;'
	echo "$BG_PID" >"$HA_DIR/state/nginx.pid"
	if ! wait_http "$HA_FRONT/healthz" 200 "$BG_PID" 20 >>"$log" 2>&1; then
		SETUP_ERR="nginx in front of the replicas did not answer: $(tail -n1 "$log")"
		return 1
	fi
	setup_registry "$E2E_LOGS/ha_registry.log" "$HA_CONF/registry/config.yml" "http://$HA_REG" "$log" || return 1
	echo "$BG_PID" >"$HA_DIR/state/registry.pid"
	record_secret "$HA_ALICE_PW"
	export HA_DIR HA_CONF HA_FRONT HA_REG HA_SVC HA_PORT_1 HA_PORT_2 HA_REDIS_PORT
}

ha_setup_down() {
	local name pid
	for name in registry nginx regauth1 regauth2 redis; do
		pid=$(ha_pid "$name")
		[[ -n "$pid" ]] && stop_pid "$pid"
		rm -f "$HA_DIR/state/$name.pid"
	done
}

# ha_token FROM USER PASSWORD — a token request through nginx from the
# local address FROM; prints the status.
ha_token() {
	curl -sS -o /dev/null -w '%{http_code}' --max-time 10 --interface "$1" -u "$2:$3" \
		-G "$HA_FRONT/auth" --data-urlencode "service=$HA_SVC" \
		--data-urlencode "scope=repository:app/ha:pull"
}

# ha_direct N USER PASSWORD — a token request straight to replica N, as
# from 127.0.0.1 (the header nginx would set); prints the status.
ha_direct() {
	local port=HA_PORT_$1
	curl -sS -o /dev/null -w '%{http_code}' --max-time 10 -u "$2:$3" -H 'X-Forwarded-For: 127.0.0.1' \
		-G "http://127.0.0.1:${!port}/auth" --data-urlencode "service=$HA_SVC" \
		--data-urlencode "scope=repository:app/ha:pull"
}

# ha_metric N NAME — the value of metric NAME on replica N (asked directly).
ha_metric() {
	local port=HA_PORT_$1
	curl -sS --max-time 5 "http://127.0.0.1:${!port}/metrics" | awk -v n="$2" '$1 == n {print $2}'
}

# t_ha_flood_limit_in_total — HA_LIMIT wrong passwords from 127.0.0.2 are
# 401 (nginx alternates the replicas, so each sees about half), then 429
# from either replica; 127.0.0.1 is not affected.
t_ha_flood_limit_in_total() {
	local i code codes=""
	for ((i = 1; i <= HA_LIMIT + 4; i++)); do
		# Another account each time: only the address limit applies.
		code=$(ha_token 127.0.0.2 "mallory$i" "guess-$i")
		codes+="$code "
	done
	note "statuses: $codes"
	local want
	want="$(printf '401 %.0s' $(seq "$HA_LIMIT"))429 429 429 429 "
	assert_eq "statuses of $((HA_LIMIT + 4)) wrong passwords from 127.0.0.2" "$want" "$codes"
	local n1 n2
	n1=$(grep -F 'regauth::audit' "$(ha_log regauth1)" | grep -F 'ip=127.0.0.2' | grep -cF 'outcome="refused"' || true)
	n2=$(grep -F 'regauth::audit' "$(ha_log regauth2)" | grep -F 'ip=127.0.0.2' | grep -cF 'outcome="refused"' || true)
	note "401s per replica: $n1 + $n2"
	((n1 > 0 && n2 > 0)) || fail "the flood did not reach both replicas ($n1 and $n2 failures)"
	((n1 < HA_LIMIT && n2 < HA_LIMIT)) || fail "one replica alone saw the limit ($n1, $n2)"
	assert_eq "alice from 127.0.0.1" 200 "$(ha_token 127.0.0.1 alice "$HA_ALICE_PW")"
	assert_eq "alice from 127.0.0.2 (refused: its address failed)" 429 "$(ha_token 127.0.0.2 alice "$HA_ALICE_PW")"
	assert_eq "Redis in use on replica 1" 1 "$(ha_metric 1 regauth_throttle_redis_up)"
	assert_eq "Redis in use on replica 2" 1 "$(ha_metric 2 regauth_throttle_redis_up)"
}

# ha_push_pull_loop OUT — skopeo push + pull rounds through the registry
# (tokens from the replicas via nginx) until OUT.stop exists; one line per
# operation in OUT: "ok OP" or "FAIL OP".
ha_push_pull_loop() {
	local out=$1 i=0
	while [[ ! -e "$out.stop" ]]; do
		i=$((i + 1))
		if sk copy --dest-tls-verify=false --dest-creds "alice:$HA_ALICE_PW" \
			"oci:$IMG_V1:v1" "docker://$HA_REG/app/ha:r$i" >>"$out.log" 2>&1; then
			echo "ok push $i" >>"$out"
		else
			echo "FAIL push $i" >>"$out"
		fi
		rm -rf "$HA_DIR/pulled"
		if sk copy --src-tls-verify=false --src-creds "alice:$HA_ALICE_PW" \
			"docker://$HA_REG/app/ha:r$i" "dir:$HA_DIR/pulled" >>"$out.log" 2>&1; then
			echo "ok pull $i" >>"$out"
		else
			echo "FAIL pull $i" >>"$out"
		fi
	done
}

# t_ha_push_pull_replica_killed — while a push/pull loop runs, replica 1
# is killed (SIGKILL) and restarted, then replica 2: operations go on
# while each is down, and none fails.
t_ha_push_pull_replica_killed() {
	local out="$HA_DIR/loop.out" loop_pid n pid at_kill at_restart
	: >"$out"
	rm -f "$out.stop"
	ha_push_pull_loop "$out" &
	loop_pid=$!
	for n in 1 2; do
		# nginx leaves a replica that failed alone for fail_timeout (2 s)
		# after it is back: a rolling restart waits that long before
		# stopping the next one.
		sleep 3
		pid=$(ha_pid "regauth$n")
		at_kill=$(wc -l <"$out")
		note "killing replica $n (pid $pid) after $at_kill operations"
		kill -KILL "$pid"
		sleep 3
		at_restart=$(wc -l <"$out")
		note "restarting replica $n after $at_restart operations"
		((at_restart > at_kill)) || fail "no operation completed while replica $n was down ($at_kill, then $at_restart)"
		ha_start_replica "$n" || fail "replica $n did not restart"
	done
	# Past replica 2's fail_timeout, so that it serves again before the end.
	sleep 4
	touch "$out.stop"
	wait "$loop_pid" || true
	note "$(tr '\n' ' ' <"$out")"
	grep -E 'FATA|rror' "$out.log" >&2 || true
	! grep -q FAIL "$out" || fail "failed operations: $(grep FAIL "$out" | tr '\n' ' ')"
	local r issued
	for r in 1 2; do
		# (grep -c, not -q: an early exit would be a SIGPIPE under pipefail)
		issued=$(grep -F 'regauth::audit' "$(ha_log "regauth$r")" | grep -F 'outcome="issued"' | grep -cF 'account="alice"' || true)
		note "restarted replica $r issued $issued tokens to alice"
		((issued > 0)) || fail "restarted replica $r issued no token to alice"
	done
}

# t_ha_redis_stopped — Redis stopped: logins through nginx go on, wrong
# passwords are 401 (never a 5xx), each replica counts the outage and logs
# it once; Redis back: used again.
t_ha_redis_stopped() {
	stop_pid "$(ha_pid redis)"
	rm -f "$HA_DIR/state/redis.pid"
	local i r
	for ((i = 1; i <= 6; i++)); do
		assert_eq "alice login $i through nginx with Redis stopped" 200 "$(ha_token 127.0.0.1 alice "$HA_ALICE_PW")"
	done
	for ((i = 1; i <= 2; i++)); do
		assert_eq "wrong password $i through nginx with Redis stopped" 401 "$(ha_token 127.0.0.3 alice "wrong-$i")"
	done
	# Each replica asked itself, whichever nginx chose above.
	for r in 1 2; do
		assert_eq "alice login on replica $r with Redis stopped" 200 "$(ha_direct "$r" alice "$HA_ALICE_PW")"
		assert_eq "wrong password on replica $r with Redis stopped" 401 "$(ha_direct "$r" alice wrong)"
	done
	local errors up warned
	for r in 1 2; do
		errors=$(ha_metric "$r" regauth_throttle_redis_errors_total)
		up=$(ha_metric "$r" regauth_throttle_redis_up)
		note "replica $r: regauth_throttle_redis_errors_total $errors, regauth_throttle_redis_up $up"
		((errors >= 1)) || fail "replica $r counted no Redis error"
		assert_eq "replica $r regauth_throttle_redis_up" 0 "$up"
		warned=$(grep -c 'throttle.redis unreachable' "$(ha_log "regauth$r")" || true)
		assert_eq "replica $r outage warnings" 1 "$warned"
	done
	ha_start_redis || fail "redis did not restart"
	# While down, a replica probes Redis once a second: within a few
	# logins both use it again.
	local both=""
	for ((i = 0; i < 40; i++)); do
		ha_direct 1 alice "$HA_ALICE_PW" >/dev/null
		ha_direct 2 alice "$HA_ALICE_PW" >/dev/null
		both="$(ha_metric 1 regauth_throttle_redis_up)$(ha_metric 2 regauth_throttle_redis_up)"
		[[ "$both" == 11 ]] && break
		sleep 0.25
	done
	assert_eq "both replicas use Redis again" 11 "$both"
	for r in 1 2; do
		log_has "$(ha_log "regauth$r")" 0 'throttle.redis answers again' ||
			fail "no recovery line in replica $r's log"
	done
	assert_eq "alice through nginx with Redis back" 200 "$(ha_token 127.0.0.1 alice "$HA_ALICE_PW")"
}

HA_SCENARIOS=(
	flood-limit-in-total:t_ha_flood_limit_in_total
	push-pull-replica-killed:t_ha_push_pull_replica_killed
	redis-stopped:t_ha_redis_stopped
)

# run_ha_setup — bring the setup up, run its scenarios, bring it down.
run_ha_setup() {
	local up=0
	echo "== setup ha: two regauth replicas behind nginx sharing Redis (examples/ha)"
	ha_setup_up || up=$?
	run_scenarios ha "$up" "${HA_SCENARIOS[@]}"
	ha_setup_down
}
