# shellcheck shell=bash
# secrets.sh — after every other test, with every regauth of the
# run logging at debug level (lib.sh's start_regauth, RUST_LOG=
# $E2E_REGAUTH_LOG_LEVEL), no password, token or Authorization header value
# the suite used may appear in any regauth log.
#
# Sourced by run.sh after the other files; run_secrets_check runs the one
# test, `secrets/no-secrets-in-logs`, as the LAST test of the suite.
#
# What counts as a secret (collected into $E2E_TMP/secrets/needles):
#   - every password: the suite's *_PW variables (all setups name their
#     passwords so) and whatever the tests passed to record_secret;
#   - every robot secret (rgr_...) `regauth robot add` printed, recorded by
#     robots.sh and found in the artifacts like tokens;
#   - every OIDC ID token federation.sh had its issuers mint (recorded,
#     and listed in federation/id_tokens): CI jobs' credentials;
#   - every token regauth issued that the suite saw: JWTs (eyJ...) and
#     refresh tokens (rt1...) found in the test logs (the clients' and curl's
#     output, JSON bodies), in saved bodies and JSON files of the run, docker's
#     identitytoken in config.json, and the values tests recorded;
#   - Basic credentials: base64 "user:password" for every account regauth
#     audited and every password, and the "auth" values of the auth files.
# Checks on every regauth log the run wrote (listed by start_regauth):
#   - no needle occurs (grep -F), reported as FILE:LINE and the kind of secret;
#   - no Authorization header value, "Bearer eyJ", "Basic <base64>", JWT or
#     refresh-token shape occurs at all (catches tokens the suite never saw).
# Guards against passing vacuously: a dozen+ needles including passwords and
# tokens; every log non-empty, with DEBUG lines (debug logging was on) and,
# together, audit lines; and the scanner must find planted secrets in a
# synthetic log.

# Regex of token shapes: a JWT (header and claims are base64url JSON), a
# regauth refresh token, or a robot secret.
S_TOKEN_RE='eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]+|rt1\.[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{16,}|rgr_[A-Za-z0-9_-]{40,}'
# Regexes of credentials in header form (case-insensitive): an
# Authorization header with a value, a bearer JWT, and "Basic <base64>"
# (reported only if it decodes to "user:password").
S_AUTHZ_RE='authorization["=: ]+(basic|bearer) +[^ "]'
S_BEARER_RE='bearer +eyJ'
S_BASIC_RE='basic +[A-Za-z0-9+/]{4,}={0,2}'

# s_regauth_logs — the log files of the regauth servers of this run.
s_regauth_logs() {
	cut -f2- "$E2E_REGAUTH_LOGS" | sort -u
}

# s_artifacts — files of the run holding what clients and curl saw (test
# logs, response bodies, auth files), never a regauth log.
s_artifacts() {
	local own="$E2E_LOGS/secrets_no-secrets-in-logs.log"
	{
		find "$E2E_LOGS" -maxdepth 1 -type f -name '*.log'
		find "$E2E_TMP" -maxdepth 3 -type f \( -name '*.body' -o -name '*.json' -o -name '*.headers' \) -size -4M
		printf '%s\n' "$E2E_TMP/out" "$E2E_TMP/err"
	} | sort -u | grep -vxF -f <(s_regauth_logs) | grep -vxF "$own" | while read -r f; do
		[[ -f "$f" ]] && printf '%s\n' "$f"
	done
}

# s_collect DIR — write DIR/passwords, DIR/tokens, DIR/basic (one value per
# line, distinct) and DIR/needles ("kind<TAB>value").
s_collect() {
	local d=$1 v
	mkdir -p "$d"
	local -a artifacts=()
	mapfile -t artifacts < <(s_artifacts)
	note "artifacts searched for tokens: ${#artifacts[@]} files"

	# Passwords: every *_PW variable of the suite, plus recorded values that
	# are not tokens or base64 credentials.
	{
		for v in $(compgen -v | grep -E '_PW$'); do
			printf '%s\n' "${!v}"
		done
		grep -vE "^($S_TOKEN_RE)\$" "$E2E_SECRETS" | grep -vE '^[A-Za-z0-9+/]{8,}={0,2}$' || true
	} | grep -v '^$' | sort -u >"$d/passwords"

	# Tokens: recorded ones and every token-shaped string in the artifacts.
	{
		grep -oE "$S_TOKEN_RE" "$E2E_SECRETS" || true
		cat "$E2E_TMP/federation/id_tokens" 2>/dev/null || true
		if ((${#artifacts[@]})); then
			grep -ohE "$S_TOKEN_RE" "${artifacts[@]}" 2>/dev/null || true
		fi
		find "$E2E_TMP" -maxdepth 4 -type f -name config.json -path '*docker-config*' -exec \
			jq -r '.auths[]?.identitytoken // empty' {} + 2>/dev/null || true
	} | awk 'length($0) >= 40' | sort -u >"$d/tokens"

	# Basic credentials: user:password for every audited account and every
	# password, recorded base64 values, and the "auth" fields of auth files
	# whose password part is not empty.
	local -a accounts=()
	mapfile -t accounts < <(s_regauth_logs | xargs -r cat 2>/dev/null | grep -F 'regauth::audit' |
		grep -oE ' account="?[A-Za-z0-9._-]+' | sed -E 's/.*account="?//' | sort -u)
	accounts+=(e2e-canary)
	note "accounts seen in audit lines: ${accounts[*]}"
	{
		local u p a
		while read -r p; do
			for u in "${accounts[@]}"; do
				printf '%s:%s' "$u" "$p" | base64 -w0
				printf '\n'
			done
		done < <(cat "$d/passwords"; grep '^rgr_' "$d/tokens" || true)
		grep -E '^[A-Za-z0-9+/]{8,}={0,2}$' "$E2E_SECRETS" || true
		while read -r a; do
			[[ "$(base64 -d <<<"$a" 2>/dev/null)" == *:?* ]] && printf '%s\n' "$a"
		done < <(find "$E2E_TMP" -maxdepth 4 -type f -name '*.json' -size -1M -exec \
			jq -r '.. | objects | .auth? // empty | strings' {} + 2>/dev/null || true)
	} | grep -v '^$' | sort -u >"$d/basic"

	{
		sed 's/^/password\t/' "$d/passwords"
		sed 's/^/token\t/' "$d/tokens"
		sed 's/^/basic\t/' "$d/basic"
	} >"$d/needles"
	cut -f2- "$d/needles" >"$d/needle-values"
}

# s_redact VALUE — how a found secret is named in a message.
s_redact() {
	printf "'%s…' (%d chars)" "${1:0:6}" "${#1}"
}

# s_scan DIR FILE... — print one line per leak: "FILE:LINE: what".
s_scan() {
	local d=$1 f hit line match kind
	shift
	for f in "$@"; do
		while IFS= read -r hit; do
			line=${hit%%:*} match=${hit#*:}
			kind=$(awk -F'\t' -v m="$match" '$2 == m {print $1; exit}' "$d/needles")
			printf '%s:%s: %s %s\n' "$f" "$line" "${kind:-secret}" "$(s_redact "$match")"
		done < <(grep -noF -f "$d/needle-values" "$f" || true)
		while IFS= read -r hit; do
			line=${hit%%:*} match=${hit#*:}
			printf '%s:%s: credential or token shape %s\n' "$f" "$line" "$(s_redact "$match")"
		done < <(
			grep -noiE "$S_AUTHZ_RE|$S_BEARER_RE" "$f" || true
			grep -noE "$S_TOKEN_RE" "$f" || true
		)
		while IFS= read -r hit; do
			line=${hit%%:*} match=${hit#*:}
			match=$(sed -E 's/^[A-Za-z]+ +//' <<<"$match")
			if [[ "$(base64 -d 2>/dev/null <<<"$match" | tr -d '\0')" == ?*:?* ]]; then
				printf '%s:%s: Basic credentials %s\n' "$f" "$line" "$(s_redact "$match")"
			fi
		done < <(grep -noiE "$S_BASIC_RE" "$f" || true)
	done
}

# t_secrets_no_leak — the test.
t_secrets_no_leak() {
	local d="$E2E_TMP/secrets" f
	local -a logs=()
	mapfile -t logs < <(s_regauth_logs)
	((${#logs[@]})) || fail "no regauth server was started through start_regauth (nothing to check)"
	note "regauth logs: ${logs[*]}"

	# The logs are real debug logs of servers that answered token requests.
	local audits=0 n
	for f in "${logs[@]}"; do
		[[ -s "$f" ]] || fail "regauth log $f is missing or empty"
		n=$(grep -c ' DEBUG ' "$f" || true)
		((n > 0)) || fail "regauth log $f has no DEBUG lines (E2E_REGAUTH_LOG_LEVEL=$E2E_REGAUTH_LOG_LEVEL; the check needs debug, and start_regauth's HTTP/2 probe)"
		audits=$((audits + $(grep -c 'regauth::audit' "$f" || true)))
		note "$f: $(wc -l <"$f") lines, $n DEBUG"
	done
	((audits >= 10)) || fail "only $audits audit lines in the regauth logs: too few token requests to prove anything"

	s_collect "$d"
	local np nt nb nall
	np=$(wc -l <"$d/passwords") nt=$(wc -l <"$d/tokens") nb=$(wc -l <"$d/basic")
	nall=$(sort -u "$d/needle-values" | wc -l)
	note "secrets: $np passwords, $nt tokens, $nb Basic credentials ($nall distinct); $audits audit lines"
	((np >= 4)) || fail "only $np passwords collected (expected the suite's *_PW values)"
	((nt >= 3)) || fail "only $nt tokens collected from the run's artifacts"
	((nall >= 12)) || fail "only $nall secrets collected: the check would prove nothing"
	# When federation.sh ran, its ID tokens are among the needles.
	if [[ -s "$E2E_TMP/federation/id_tokens" ]]; then
		local nid
		nid=$(grep -cxF -f "$d/tokens" "$E2E_TMP/federation/id_tokens" || true)
		((nid == $(wc -l <"$E2E_TMP/federation/id_tokens"))) ||
			fail "only $nid of $(wc -l <"$E2E_TMP/federation/id_tokens") ID tokens are among the secrets searched for"
		note "ID tokens searched for: $nid"
	fi
	if grep -qE '[[:space:]]$|^$' "$d/needle-values"; then
		fail "a collected secret is empty or ends in whitespace (broken collection)"
	fi

	# The scanner must see secrets when they are there: plant a password, a
	# token and a Basic header in a synthetic log.
	local planted="$d/planted.log" pw tok hits
	pw=$(head -n1 "$d/passwords") tok=$(head -n1 "$d/tokens")
	printf 'INFO x: ok\nDEBUG y: pw=%s\nDEBUG z: token %s end\nDEBUG h: authorization: Basic %s\nDEBUG r: secret=%s\n' \
		"$pw" "$tok" "$(printf 'someone:%s' "$pw" | base64 -w0)" "rgr_$(head -c 32 /dev/urandom | base64 -w0 | tr '+/' '-_' | tr -d '=')" >"$planted"
	hits=$(s_scan "$d" "$planted" | cut -d: -f2 | sort -u | tr '\n' ' ')
	assert_eq "lines of the planted log where the scanner finds secrets" "2 3 4 5 " "$hits"

	local report
	report=$(s_scan "$d" "${logs[@]}")
	if [[ -n "$report" ]]; then
		printf '%s\n' "$report" >&2
		fail "secrets in regauth logs ($(wc -l <<<"$report") hits): $(head -n 3 <<<"$report" | tr '\n' ';')"
	fi
	note "no secret in ${#logs[@]} regauth logs"
}

# run_secrets_check — the secrets test (if $E2E_ONLY matches it).
run_secrets_check() {
	local name=secrets/no-secrets-in-logs
	echo "== secrets: no password or token in any regauth log (RUST_LOG=$E2E_REGAUTH_LOG_LEVEL)"
	if [[ -n "${E2E_ONLY:-}" && ! "$name" =~ $E2E_ONLY ]]; then
		return 0
	fi
	run_test "$name" t_secrets_no_leak
}
