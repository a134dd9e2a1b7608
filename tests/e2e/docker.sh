# shellcheck shell=bash
# docker.sh — the Docker Engine part of the end-to-end suite: Debian's
# `docker.io` (dockerd 20.10 + the matching `docker` CLI) logs in, pulls and
# pushes through the registry whose token server is regauth, with the
# password stored by `docker login` (refresh.sh covers identity tokens).
#
# Sourced by run.sh after scenarios.sh: docker_up starts containerd + dockerd
# once per run (reported as `docker/startup`), DOCKER_SCENARIOS run in every
# setup after the other scenarios, docker_down stops both by PID.
#
# Isolation (on top of run.sh's loopback-only network namespace):
#   - containerd: its own config in the temp dir (root, state, socket, opt
#     dir under $DK_DIR; CRI plugin off), started by us, stopped by PID;
#   - dockerd: --data-root, --exec-root, --pidfile, --config-file, unix
#     socket, all under $DK_DIR; --iptables=false --ip-masq=false
#     --ip-forward=false --bridge=none (no network setup), vfs storage (works
#     on any filesystem the temp dir may be on, unlike overlay2 on overlayfs;
#     the images here are one tiny layer),
#     --insecure-registry 127.0.0.1/32 (the plain-HTTP loopback registries of
#     both setups); HTTP(S)_PROXY=http://127.0.0.1:9, NO_PROXY=127.0.0.1,localhost;
#   - dockerd runs in a mount namespace of its own (this file run as a
#     command, `--exec-dockerd`) where /etc/resolv.conf is a temp file
#     naming 127.0.0.1 (nothing listens on port 53: any lookup fails at once
#     on loopback), and /etc/docker (key.json) and /run/docker (plugins
#     dir), which dockerd 20.10 writes regardless of its flags, are temp dirs;
#   - the CLI is /usr/bin/docker (the Debian one, not whatever `docker` is
#     first on PATH) with DOCKER_CONFIG per user under the setup's dir, an
#     empty PATH (so no docker-credential-* helper can be picked up: the
#     password lands in config.json, which the tests check) and
#     DOCKER_HOST/DOCKER_CONTEXT/DOCKER_CONTENT_TRUST/... unset.
#
# Tests (per setup, repositories of their own so E2E_ONLY=docker works alone):
#   docker-skopeo-seed          skopeo (alice) pushes the hand-made OCI image to
#                               alice/dk:v1, team/dk:v1 and public/dk:v1
#   docker-login                `docker login -u alice --password-stdin` works;
#                               config.json holds alice's password (no identity
#                               token: regauth gave no refresh token)
#   docker-login-wrong-password-denied
#                               a wrong password fails with an auth error and
#                               stores nothing
#   docker-pull                 `docker pull alice/dk:v1` with the stored login:
#                               blobs downloaded, digest = the OCI manifest's,
#                               image ID = its config, hello.txt inside
#   docker-push                 `docker tag` + `docker push alice/dk-pushed:v1`:
#                               the layer is mounted from alice/dk (a token
#                               request with two scopes), the pushed digest is
#                               the one the registry serves, same layer
#   docker-push-bob-denied      bob logs in and may pull team/dk:v1, but his
#                               push of team/dk:bob is refused; no tag created
#   docker-logout               `docker logout` removes alice's credentials
#   docker-pull-anon-public     anonymous `docker pull public/dk:v1` works
#                               (local images removed first: blobs downloaded)
#   docker-pull-anon-private-denied
#                               anonymous `docker pull alice/dk:v1` is refused
# Every test also copies the regauth audit lines it caused into its log
# (what dockerd asked the token server for).

# Binaries of the Debian docker.io/containerd packages. The `docker` first on
# PATH may be another (newer) client; these are used by absolute path.
# Overridable with E2E_DOCKERD, E2E_DOCKER_CLI, E2E_CONTAINERD.
DK_DOCKERD=${E2E_DOCKERD:-/usr/sbin/dockerd}
DK_CLI=${E2E_DOCKER_CLI:-/usr/bin/docker}
DK_CONTAINERD=${E2E_CONTAINERD:-/usr/bin/containerd}

# Environment variables that would point the CLI elsewhere or turn on
# content trust (a notary lookup).
DK_UNSET_ENV=(-u DOCKER_HOST -u DOCKER_CONTEXT -u DOCKER_CONTENT_TRUST
	-u DOCKER_CONTENT_TRUST_SERVER -u DOCKER_TLS_VERIFY -u DOCKER_CERT_PATH
	-u DOCKER_API_VERSION -u DOCKER_DEFAULT_PLATFORM)

DK_READY=""
DK_PID=""
DK_CTD_PID=""

# --------------------------------------------------------------- lifecycle ---

# dk_shadow_dir PATH SRC — in the current (private) mount namespace, make
# PATH show SRC; if PATH does not exist, its parent first gets a
# tmpfs-backed overlay so that creating the mount point writes nothing to
# the host. (Same technique as run.sh's shadow_dir.)
dk_shadow_dir() {
	local path=$1 src=$2 parent ov
	mkdir -p "$src"
	if [[ ! -d "$path" ]]; then
		parent=$(dirname "$path")
		ov="$src.overlay"
		mkdir -p "$ov"
		mount -t tmpfs tmpfs "$ov"
		mkdir -p "$ov/upper" "$ov/work"
		mount -t overlay overlay -o "lowerdir=$parent,upperdir=$ov/upper,workdir=$ov/work" "$parent"
		mkdir -p "$path"
	fi
	mount --bind "$src" "$path"
}

# dk_exec_dockerd DIR DOCKERD_ARGS... — runs as `docker.sh --exec-dockerd`
# under `unshare --mount`: set up dockerd's private view of /etc/resolv.conf,
# /etc/docker and /run/docker, then exec dockerd (same PID).
dk_exec_dockerd() {
	local dir=$1
	shift
	set -e
	if [[ ! -e /etc/resolv.conf ]]; then
		echo "docker.sh: /etc/resolv.conf does not exist; cannot bind-mount the DNS sink over it" >&2
		exit 1
	fi
	mount --bind "$dir/resolv.conf" /etc/resolv.conf
	dk_shadow_dir /etc/docker "$dir/etc-docker"
	dk_shadow_dir /run/docker "$dir/run-docker"
	echo "docker.sh: /etc/resolv.conf: $(tr '\n' ' ' </etc/resolv.conf)" >&2
	exec "$DK_DOCKERD" "$@"
}

# dk_startup_fail REASON — record docker/startup as failed (main shell).
dk_startup_fail() {
	record_fail docker/startup "$1"
	return 1
}

# dk_wait_sock SOCKET PID SECONDS — poll until SOCKET exists (PID alive).
dk_wait_sock() {
	local i
	for ((i = 0; i < $3 * 20; i++)); do
		kill -0 "$2" 2>/dev/null || return 1
		[[ -S "$1" ]] && return 0
		sleep 0.05
	done
	return 1
}

# dk_log_errors LOG — the error/fatal lines of a dockerd/containerd log, one line.
dk_log_errors() {
	{ grep -E 'level=(error|fatal)' "$1" || tail -n 3 "$1"; } 2>/dev/null |
		tail -n 4 | tr '\n' ' ' | cut -c1-500
}

# docker_up — start containerd and dockerd (main shell, once per run) and
# wait until the daemon answers. Prints PASS/FAIL docker/startup.
docker_up() {
	DK_DIR="$E2E_TMP/docker"
	DK_SOCK="$DK_DIR/docker.sock"
	DK_CTD_SOCK="$DK_DIR/containerd/containerd.sock"
	DK_READY=""
	export DK_DIR DK_SOCK
	local log="$E2E_LOGS/docker_startup.log" b t0
	t0=$(date +%s%N)
	mkdir -p "$DK_DIR/data" "$DK_DIR/exec" "$DK_DIR/cli-path" "$DK_DIR/tmp"
	: >"$log"

	for b in "$DK_DOCKERD" "$DK_CLI" "$DK_CONTAINERD"; do
		[[ -x "$b" ]] || dk_startup_fail "$b not found: apt-get install --no-install-recommends docker.io (tests/e2e/deps.sh)" || return 1
	done
	{
		echo "dockerd: $("$DK_DOCKERD" --version 2>&1)"
		echo "docker CLI: $("$DK_CLI" --version 2>&1)"
		echo "containerd: $("$DK_CONTAINERD" --version 2>&1)"
	} >>"$log"

	# containerd: everything under $DK_DIR/containerd (CRI off: dockerd
	# does not need it).
	write_containerd_config "$DK_DIR/containerd" "$DK_CTD_SOCK"
	start_bg "$E2E_LOGS/docker_containerd.log" "$DK_CONTAINERD" --config "$DK_DIR/containerd/config.toml"
	DK_CTD_PID=$BG_PID
	if ! dk_wait_sock "$DK_CTD_SOCK" "$DK_CTD_PID" 20; then
		dk_startup_fail "containerd did not create $DK_CTD_SOCK: $(dk_log_errors "$E2E_LOGS/docker_containerd.log")"
		return 1
	fi

	# dockerd: its DNS resolver points at 127.0.0.1:53, where nobody listens.
	printf 'nameserver 127.0.0.1\noptions timeout:1 attempts:1\n' >"$DK_DIR/resolv.conf"
	printf '{}\n' >"$DK_DIR/daemon.json"
	local -a args=(
		--data-root "$DK_DIR/data"
		--exec-root "$DK_DIR/exec"
		--pidfile "$DK_DIR/dockerd.pid"
		--config-file "$DK_DIR/daemon.json"
		--host "unix://$DK_SOCK"
		--containerd "$DK_CTD_SOCK"
		--storage-driver vfs
		--iptables=false --ip-masq=false --ip-forward=false --bridge=none
		--insecure-registry 127.0.0.1/32
	)
	note "dockerd ${args[*]}" 2>>"$log"
	# `unshare --mount` execs (no fork), and so does dk_exec_dockerd: the PID
	# start_bg records is dockerd's own.
	start_bg "$E2E_LOGS/docker_dockerd.log" env "${DK_UNSET_ENV[@]}" \
		HTTPS_PROXY=http://127.0.0.1:9 HTTP_PROXY=http://127.0.0.1:9 NO_PROXY=127.0.0.1,localhost \
		https_proxy=http://127.0.0.1:9 http_proxy=http://127.0.0.1:9 no_proxy=127.0.0.1,localhost \
		DOCKER_TMPDIR="$DK_DIR/tmp" E2E_DOCKERD="$DK_DOCKERD" \
		unshare --mount --propagation private -- bash "$E2E_DIR/docker.sh" --exec-dockerd "$DK_DIR" "${args[@]}"
	DK_PID=$BG_PID

	# Ready when the API answers /_ping on the socket (polled, no fixed sleep).
	local i ok=""
	for ((i = 0; i < 600; i++)); do
		if ! kill -0 "$DK_PID" 2>/dev/null; then
			dk_startup_fail "dockerd exited during startup: $(dk_log_errors "$E2E_LOGS/docker_dockerd.log") (log: $E2E_LOGS/docker_dockerd.log)"
			return 1
		fi
		if [[ -S "$DK_SOCK" && "$(curl -s --max-time 2 --unix-socket "$DK_SOCK" http://docker/_ping 2>/dev/null)" == OK ]]; then
			ok=1
			break
		fi
		sleep 0.05
	done
	if [[ -z "$ok" ]]; then
		dk_startup_fail "dockerd did not answer /_ping within 30s: $(dk_log_errors "$E2E_LOGS/docker_dockerd.log")"
		return 1
	fi
	if [[ "$(cat "$DK_DIR/dockerd.pid" 2>/dev/null)" != "$DK_PID" ]]; then
		dk_startup_fail "dockerd.pid ($(cat "$DK_DIR/dockerd.pid" 2>/dev/null)) is not the PID we started ($DK_PID)"
		return 1
	fi
	# The CLI must talk to it (API version negotiation) and see our settings.
	local info
	if ! info=$(DK_CONFIG="$DK_DIR/config-startup" dk info --format \
		'{{.ServerVersion}} {{.Driver}} {{.DockerRootDir}} {{.HTTPSProxy}} {{json .RegistryConfig.InsecureRegistryCIDRs}}' 2>>"$log"); then
		dk_startup_fail "docker info failed: $(tail -n 1 "$log")"
		return 1
	fi
	echo "docker info: $info" >>"$log"
	if [[ "$info" != *" vfs $DK_DIR/data http://127.0.0.1:9 "* ]]; then
		dk_startup_fail "dockerd does not run with our settings: $info"
		return 1
	fi
	DK_READY=1
	printf 'e2e: docker engine %s (containerd + dockerd ready in %d ms)\n' \
		"${info%% *}" "$((($(date +%s%N) - t0) / 1000000))"
	E2E_PASSED=$((E2E_PASSED + 1))
	printf 'PASS docker/startup\n'
}

# docker_down — stop dockerd, then containerd, by PID (pass or fail).
docker_down() {
	[[ -n "${DK_PID:-}" ]] && stop_pid "$DK_PID"
	[[ -n "${DK_CTD_PID:-}" ]] && stop_pid "$DK_CTD_PID"
	DK_PID="" DK_CTD_PID="" DK_READY=""
}

# ------------------------------------------------------------------ client ---

# dk ARGS... — the Debian docker CLI against our dockerd, with DOCKER_CONFIG=$DK_CONFIG.
dk() {
	timeout "$E2E_CLIENT_TIMEOUT" env "${DK_UNSET_ENV[@]}" \
		DOCKER_CONFIG="${DK_CONFIG:?DK_CONFIG not set}" PATH="$DK_DIR/cli-path" \
		"$DK_CLI" --host "unix://$DK_SOCK" "$@"
}

# dk_as WHO — use the per-setup docker config directory of WHO.
dk_as() {
	DK_CONFIG="$S_DIR/docker-config-$1"
	mkdir -p "$DK_CONFIG"
}

# dk_login WHO PASSWORD — docker login REG with the password on stdin.
dk_login() {
	printf '%s' "$2" | dk login --username "$1" --password-stdin "$REG"
}

# dk_stored_auth — the "auth" stored for $REG in $DK_CONFIG/config.json (or "").
dk_stored_auth() {
	[[ -s "$DK_CONFIG/config.json" ]] || return 0
	jq -r --arg r "$REG" '.auths[$r].auth // empty' "$DK_CONFIG/config.json"
}

# dk_rmi_all — remove every local image (so the next pull downloads blobs).
dk_rmi_all() {
	local ids
	ids=$(dk images -aq | sort -u)
	if [[ -n "$ids" ]]; then
		# shellcheck disable=SC2086 # one argument per ID
		dk rmi -f $ids >/dev/null
	fi
	[[ -z "$(dk images -aq)" ]]
}

# dk_cat_hello CONTAINER — print /hello.txt of CONTAINER (docker cp gives a tar).
dk_cat_hello() {
	dk cp "$1:/hello.txt" - | tar -xO hello.txt
}

# dk_require — inside a test: dockerd must be up.
dk_require() {
	[[ -n "$DK_READY" ]] || fail "not run: docker/startup failed"
	DK_AUDIT_MARK=$(log_mark "$REGAUTH_LOG")
	trap dk_note_audit EXIT
}

# dk_note_audit — copy the regauth audit lines since dk_require to the log.
dk_note_audit() {
	note "regauth audit lines (token requests made during this test):"
	log_since "$REGAUTH_LOG" "$DK_AUDIT_MARK" | grep 'regauth::audit' >&2 || note "(none)"
}

# ------------------------------------------------------------------- tests ---

# t_docker_skopeo_seed — the images the docker tests pull, pushed by skopeo
# from the hand-made OCI layout.
t_docker_skopeo_seed() {
	dk_require
	local ref
	for ref in alice/dk:v1 team/dk:v1 public/dk:v1; do
		expect_ok "skopeo push $ref" sk copy --dest-tls-verify=false --dest-creds "alice:$ALICE_PW" \
			"oci:$IMG_V1:v1" "docker://$REG/$ref"
	done
}

# t_docker_login — docker login as alice; the CLI stores her password
# (base64 user:password) in config.json, not an identity token.
t_docker_login() {
	dk_require
	dk_as alice
	expect_ok "docker login -u alice --password-stdin $REG" dk_login alice "$ALICE_PW"
	assert_contains "docker login output" "$E2E_OUT" "Login Succeeded"
	assert_eq "stored auth for $REG" "$(printf 'alice:%s' "$ALICE_PW" | base64 -w0)" "$(dk_stored_auth)"
	assert_eq "identitytoken for $REG (regauth issues no refresh token)" "" \
		"$(jq -r --arg r "$REG" '.auths[$r].identitytoken // empty' "$DK_CONFIG/config.json")"
}

# t_docker_login_wrong_password_denied — a wrong password: auth error,
# nothing stored.
t_docker_login_wrong_password_denied() {
	dk_require
	dk_as wrongpw
	expect_auth_denied "docker login with a wrong password" dk_login alice "$WRONG_PW"
	assert_eq "stored auth after a failed login" "" "$(dk_stored_auth)"
}

# t_docker_pull — alice pulls alice/dk:v1 with the stored login. Local
# images are removed first, so the layer is really downloaded.
t_docker_pull() {
	dk_require
	dk_as alice
	[[ -n "$(dk_stored_auth)" ]] || fail "no stored login for alice (docker-login failed?)"
	expect_ok "remove local images" dk_rmi_all
	expect_ok "docker pull $REG/alice/dk:v1" dk pull "$REG/alice/dk:v1"
	assert_contains "pull output" "$E2E_OUT" "Digest: $DIG_V1"
	assert_contains "pull output" "$E2E_OUT" "Downloaded newer image for $REG/alice/dk:v1"
	local config_digest
	config_digest=$(jq -r .config.digest "$IMG_V1/blobs/sha256/${DIG_V1#sha256:}")
	expect_ok "docker image inspect" dk image inspect "$REG/alice/dk:v1"
	assert_eq "image ID (= the config digest)" "$config_digest" "$(jq -r '.[0].Id' <<<"$E2E_OUT")"
	assert_eq "repo digests" "$REG/alice/dk@$DIG_V1" "$(jq -r '.[0].RepoDigests|join(" ")' <<<"$E2E_OUT")"
	# The layer's content, read back through a (never started) container.
	expect_ok "docker create" dk create --name "dk-pull-$S_NAME" "$REG/alice/dk:v1"
	expect_ok "docker cp hello.txt" dk_cat_hello "dk-pull-$S_NAME"
	assert_eq "hello.txt in the pulled image" "e2e image v1" "$E2E_OUT"
	expect_ok "docker rm" dk rm "dk-pull-$S_NAME"
	expect_granted "$REGAUTH_LOG" alice "repository:alice/dk:[pull]"
}

# t_docker_push — alice tags the pulled image into another repository and
# pushes it; the registry serves what docker pushed.
t_docker_push() {
	dk_require
	dk_as alice
	expect_ok "docker tag" dk tag "$REG/alice/dk:v1" "$REG/alice/dk-pushed:v1"
	expect_ok "docker push $REG/alice/dk-pushed:v1" dk push "$REG/alice/dk-pushed:v1"
	# docker knows the layer came from alice/dk and asks regauth for
	# repository:alice/dk-pushed:push,pull plus repository:alice/dk:pull in
	# one request; the mount works only if both scopes were granted.
	assert_contains "push output (cross-repository mount)" "$E2E_OUT" "Mounted from alice/dk"
	local pushed
	pushed=$(grep -Eo 'digest: sha256:[0-9a-f]{64}' <<<"$E2E_OUT" | tail -n1 | cut -d' ' -f2)
	[[ -n "$pushed" ]] || fail "docker push printed no digest"
	expect_ok "skopeo inspect alice/dk-pushed:v1" sk inspect --tls-verify=false --creds "alice:$ALICE_PW" \
		"docker://$REG/alice/dk-pushed:v1"
	assert_eq "digest the registry serves" "$pushed" "$(jq -r .Digest <<<"$E2E_OUT")"
	assert_eq "layers of alice/dk-pushed:v1" "$V1_LAYER" "$(jq -r '.Layers|join(" ")' <<<"$E2E_OUT")"
	expect_granted "$REGAUTH_LOG" alice "repository:alice/dk-pushed:[pull,push]" "repository:alice/dk:[pull]"
}

# t_docker_push_bob_denied — bob (pull on team/*) logs in and pulls
# team/dk:v1, but pushing team/dk:bob is refused and creates no tag.
t_docker_push_bob_denied() {
	dk_require
	dk_as bob
	expect_ok "docker login -u bob" dk_login bob "$BOB_PW"
	expect_ok "bob pulls team/dk:v1" dk pull "$REG/team/dk:v1"
	assert_contains "pull output" "$E2E_OUT" "Digest: $DIG_V1"
	expect_ok "docker tag" dk tag "$REG/team/dk:v1" "$REG/team/dk:bob"
	expect_auth_denied "bob pushes team/dk:bob" dk push "$REG/team/dk:bob"
	expect_ok "list-tags team/dk (alice)" sk list-tags --tls-verify=false --creds "alice:$ALICE_PW" "docker://$REG/team/dk"
	assert_eq "tags of team/dk after bob's refused push" "v1" "$(jq -r '.Tags|sort|join(" ")' <<<"$E2E_OUT")"
	expect_granted "$REGAUTH_LOG" bob "repository:team/dk:[pull]"
}

# t_docker_logout — docker logout removes alice's stored password.
t_docker_logout() {
	dk_require
	dk_as alice
	[[ -n "$(dk_stored_auth)" ]] || fail "no stored login for alice to log out of (docker-login failed?)"
	expect_ok "docker logout $REG" dk logout "$REG"
	assert_eq "stored auth after logout" "" "$(dk_stored_auth)"
}

# dk_anonymous — inside a test: alice's config, which must hold no
# credentials for $REG any more (docker-logout).
dk_anonymous() {
	dk_as alice
	[[ -z "$(dk_stored_auth)" ]] || fail "alice's docker config still holds credentials for $REG (docker-logout failed?)"
}

# t_docker_pull_anon_public — anonymous pull of public/dk:v1 works.
t_docker_pull_anon_public() {
	dk_require
	dk_anonymous
	expect_ok "remove local images" dk_rmi_all
	expect_ok "anonymous docker pull $REG/public/dk:v1" dk pull "$REG/public/dk:v1"
	assert_contains "pull output" "$E2E_OUT" "Digest: $DIG_V1"
	assert_contains "pull output" "$E2E_OUT" "Downloaded newer image for $REG/public/dk:v1"
	expect_granted "$REGAUTH_LOG" "" "repository:public/dk:[pull]"
}

# t_docker_pull_anon_private_denied — anonymous pull of alice/dk:v1 is refused.
t_docker_pull_anon_private_denied() {
	dk_require
	dk_anonymous
	expect_auth_denied "anonymous docker pull $REG/alice/dk:v1" dk pull "$REG/alice/dk:v1"
	expect_granted "$REGAUTH_LOG" "" "repository:alice/dk:[]"
}

# The docker scenarios, in order (each relies on the ones before it); run.sh
# appends them to SCENARIOS.
# shellcheck disable=SC2034 # used by run.sh
DOCKER_SCENARIOS=(
	docker-skopeo-seed:t_docker_skopeo_seed
	docker-login:t_docker_login
	docker-login-wrong-password-denied:t_docker_login_wrong_password_denied
	docker-pull:t_docker_pull
	docker-push:t_docker_push
	docker-push-bob-denied:t_docker_push_bob_denied
	docker-logout:t_docker_logout
	docker-pull-anon-public:t_docker_pull_anon_public
	docker-pull-anon-private-denied:t_docker_pull_anon_private_denied
)

# Run as a command: `docker.sh --exec-dockerd DIR ARGS...` (see docker_up).
if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
	case "${1:-}" in
	--exec-dockerd)
		shift
		dk_exec_dockerd "$@"
		;;
	*)
		echo "usage: (sourced by run.sh) or $0 --exec-dockerd DIR DOCKERD_ARGS..." >&2
		exit 2
		;;
	esac
fi
