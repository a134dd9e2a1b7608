#!/usr/bin/env bash
# run.sh — regauth end-to-end suite: a real distribution registry (Debian's
# docker-registry 2.8) with regauth as its token server, driven by skopeo,
# curl, podman and buildah. Entry point of `make test`.
#
# Usage:  tests/e2e/run.sh            (as root)
# Env:    REGAUTH=path      binary to test (default: target/debug/regauth)
#         E2E_ONLY=regex    run only tests whose "setup/test" name matches
#         E2E_KEEP=1        keep the temp dir even when everything passed
#         E2E_INSTALL_DEPS=1  run deps.sh (apt-get) first instead of only checking
#
# Structure:
#   outer part  checks the binary and the tools, makes the temp dir, then runs
#               this same script with --inner inside fresh network, mount and
#               PID namespaces (`unshare`), and removes the temp dir afterwards;
#   inner part  brings up lo (the only interface there is), points every
#               client at config under the temp dir, runs the scenarios
#               (scenarios.sh) and prints PASS/FAIL lines and a summary.
#
# Network safety: inside the namespace only loopback exists, so no test can
# reach anything else; clients additionally get a dead proxy (127.0.0.1:9)
# for any non-loopback destination.
set -euo pipefail

E2E_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$E2E_DIR/../.." && pwd)

die() {
	echo "e2e: $*" >&2
	exit 1
}

# ------------------------------------------------------------------ outer ---

outer() {
	[[ $(id -u) -eq 0 ]] ||
		die "must run as root (it creates network/mount namespaces and runs podman/buildah as root): sudo $0"

	# The binary under test. Built beforehand, outside the namespace.
	REGAUTH=${REGAUTH:-$REPO_ROOT/target/debug/regauth}
	[[ "$REGAUTH" == /* ]] || REGAUTH="$REPO_ROOT/$REGAUTH"
	[[ -x "$REGAUTH" ]] || die "regauth binary not found at $REGAUTH — build it first: cargo build (or set REGAUTH=path)"
	local newer
	newer=$(find "$REPO_ROOT/src" "$REPO_ROOT/Cargo.toml" -newer "$REGAUTH" -print -quit 2>/dev/null || true)
	[[ -z "$newer" ]] || echo "e2e: warning: $newer is newer than $REGAUTH (stale build?)" >&2

	# Tools: fail (never skip) with the command that installs them, or
	# install them first when asked to (E2E_INSTALL_DEPS=1, e.g. on CI).
	if [[ "${E2E_INSTALL_DEPS:-0}" == 1 ]]; then
		"$E2E_DIR/deps.sh" || die "could not install the tools, see above"
	fi
	"$E2E_DIR/deps.sh" --check >/dev/null || {
		"$E2E_DIR/deps.sh" --check || true
		die "missing tools, see above"
	}

	# The suite needs to create namespaces (CAP_SYS_ADMIN); an unprivileged
	# container cannot, and must not fall back to running on the host network.
	local err
	if ! err=$(unshare --net --mount --pid --fork true 2>&1); then
		die "cannot create network/mount/PID namespaces ($err); run on a VM or a privileged container"
	fi

	E2E_TMP=$(mktemp -d "${TMPDIR:-/tmp}/regauth-e2e.XXXXXX")
	chmod 755 "$E2E_TMP"
	export E2E_TMP REGAUTH
	echo "e2e: regauth=$REGAUTH"
	echo "e2e: temp dir $E2E_TMP"

	local rc=0 t0=$SECONDS
	# Reference point for the hygiene check after the run.
	local stamp="$E2E_TMP/.start-stamp"
	touch "$stamp"
	sleep 1
	# --fork --pid --kill-child: every process of the run lives in the new PID
	# namespace and dies with it, even if this script is killed (backstop for
	# the per-PID cleanup done by the inner part).
	# shellcheck disable=SC2016 # $0 is expanded by the inner bash, on purpose
	unshare --net --mount --propagation private --pid --fork --kill-child --mount-proc \
		-- bash -c 'ip link set lo up && exec bash "$0" --inner' "$E2E_DIR/run.sh" || rc=$?
	echo "e2e: finished in $((SECONDS - t0))s"
	check_hygiene "$stamp" || rc=1

	if [[ $rc -eq 0 && "${E2E_KEEP:-0}" != 1 ]]; then
		rm -rf "$E2E_TMP"
	else
		echo "e2e: logs and state kept in $E2E_TMP (logs/ has one log per test)"
	fi
	return "$rc"
}

# check_hygiene STAMP — after the run: no process of the run is left (each
# one names a path under the temp dir on its command line) and no file
# outside the temp dir was created or modified since STAMP. Paths other
# processes write to on their own (the repository, logs, caches, the kernel's
# virtual file systems) are not the suite's and are left out.
check_hygiene() {
	local stamp=$1 left changed
	left=$(pgrep -af -- "$E2E_TMP" | grep -v -e "pgrep" || true)
	if [[ -n "$left" ]]; then
		echo "FAIL e2e/hygiene: processes left behind: ${left//$'\n'/ | }"
		return 1
	fi
	# Where clients and daemons write when not pointed elsewhere (config,
	# state, caches, new top-level directories), not the whole disk: builds
	# and other work on the host must not count against the suite.
	local -a roots=()
	local r
	for r in /etc /var /root /home /opt /usr/local /srv; do
		[[ -d $r ]] && roots+=("$r")
	done
	changed=$( {
		find / -mindepth 1 -maxdepth 1 \( -path /proc -o -path /sys -o -path /dev -o -path /run \
			-o -path /tmp -o -path /var -o -path /root -o -path /etc -o -path /home -o -path /opt \
			-o -path /usr -o -path /srv -o -path "$REPO_ROOT" -o -path "$(dirname "$REPO_ROOT")" \) \
			-prune -o -newer "$stamp" -print
		find "${roots[@]}" -xdev \( -path "$REPO_ROOT" -o -path "${TMPDIR:-/tmp}" -o -path /var/tmp \
			-o -path /root/.cargo -o -path /root/.rustup -o -path /var/log -o -path /var/cache \
			-o -path /var/lib/apt -o -path /var/lib/dpkg -o -path /var/lib/systemd \) -prune \
			-o -newer "$stamp" -print
	} 2>/dev/null | head -n 20)
	if [[ -n "$changed" ]]; then
		echo "FAIL e2e/hygiene: files changed outside the temp dir: ${changed//$'\n'/ }"
		return 1
	fi
	echo "PASS e2e/hygiene: no process left, nothing changed outside $E2E_TMP"
}

# ------------------------------------------------------------------ inner ---

# shadow_dir PATH SRC — make PATH show the contents of SRC for this mount
# namespace only. If PATH does not exist on the host, its parent gets a
# tmpfs-backed overlay first so that creating the mount point writes nothing
# to the host.
shadow_dir() {
	local path=$1 src=$2 parent
	mkdir -p "$src"
	if [[ ! -d "$path" ]]; then
		parent=$(dirname "$path")
		local ov="$E2E_TMP/.overlay${parent//\//_}"
		mkdir -p "$ov"
		mount -t tmpfs tmpfs "$ov"
		mkdir -p "$ov/upper" "$ov/work"
		mount -t overlay overlay -o "lowerdir=$parent,upperdir=$ov/upper,workdir=$ov/work" "$parent"
		mkdir -p "$path"
	fi
	mount --bind "$src" "$path"
}

# isolate_environment — config, state and temp files of every client go to
# the temp dir; host config (/etc/containers) is replaced by ours.
isolate_environment() {
	local t=$E2E_TMP

	# Sanity: this must be a namespace holding only loopback.
	local ifaces
	ifaces=$(ip -o link show | awk -F': ' '{print $2}' | tr '\n' ' ')
	[[ "$ifaces" == "lo " ]] || die "not in a loopback-only network namespace (interfaces: $ifaces)"

	export HOME="$t/home"
	export XDG_CONFIG_HOME="$t/home/.config" XDG_DATA_HOME="$t/home/.local/share"
	export XDG_CACHE_HOME="$t/home/.cache" XDG_RUNTIME_DIR="$t/run"
	export TMPDIR="$t/tmp"
	# No test relies on this file: all pass credentials or --authfile explicitly.
	export REGISTRY_AUTH_FILE="$t/auth.json"
	printf '{"auths":{}}\n' >"$REGISTRY_AUTH_FILE"
	mkdir -p "$HOME" "$XDG_CONFIG_HOME" "$XDG_DATA_HOME" "$XDG_CACHE_HOME" "$TMPDIR"
	mkdir -p "$XDG_RUNTIME_DIR" && chmod 700 "$XDG_RUNTIME_DIR"
	mkdir -p "$t/podman/tmp" "$t/podman/root" "$t/podman/runroot" "$t/buildah/root" "$t/buildah/runroot"

	# containers/* configuration: accept any image, no short-name search, no
	# registry mirrors, storage under the temp dir.
	local etc="$t/etc-containers"
	mkdir -p "$etc/registries.d" "$etc/registries.conf.d"
	printf '{"default":[{"type":"insecureAcceptAnything"}]}\n' >"$etc/policy.json"
	printf 'unqualified-search-registries = []\nshort-name-mode = "disabled"\n' >"$etc/registries.conf"
	cat >"$etc/storage.conf" <<EOF
[storage]
driver = "vfs"
runroot = "$t/podman/runroot"
graphroot = "$t/podman/root"
EOF
	cat >"$etc/containers.conf" <<EOF
[engine]
events_logger = "file"
cgroup_manager = "cgroupfs"
tmp_dir = "$t/podman/tmp"
image_copy_tmp_dir = "$t/tmp"
EOF
	export CONTAINERS_REGISTRIES_CONF="$etc/registries.conf"
	export CONTAINERS_STORAGE_CONF="$etc/storage.conf"
	export CONTAINERS_CONF="$etc/containers.conf"

	# Paths containers/image and podman use as root regardless of the above
	# (e.g. the blob-info cache in /var/lib/containers/cache) are shadowed by
	# temp dirs in this private mount namespace only.
	shadow_dir /etc/containers "$etc"
	# podman's CNI backend takes a lock file there (created on first use).
	mkdir -p "$t/etc-cni-net.d"
	cp -a /etc/cni/net.d/. "$t/etc-cni-net.d/" 2>/dev/null || true
	shadow_dir /etc/cni/net.d "$t/etc-cni-net.d"
	shadow_dir /var/lib/containers "$t/var-lib-containers"
	shadow_dir /var/tmp "$t/var-tmp"

	# Second guard: anything not on loopback goes to a dead proxy.
	export HTTPS_PROXY=http://127.0.0.1:9 HTTP_PROXY=http://127.0.0.1:9 NO_PROXY=127.0.0.1,localhost
	export https_proxy=$HTTPS_PROXY http_proxy=$HTTP_PROXY no_proxy=$NO_PROXY
}

inner() {
	: "${E2E_TMP:?} ${REGAUTH:?}"
	isolate_environment

	# shellcheck source=tests/e2e/lib.sh
	. "$E2E_DIR/lib.sh"
	# shellcheck source=tests/e2e/mkimage.sh
	. "$E2E_DIR/mkimage.sh"
	# shellcheck source=tests/e2e/scenarios.sh
	. "$E2E_DIR/scenarios.sh"
	# shellcheck source=tests/e2e/mirror.sh
	. "$E2E_DIR/mirror.sh"
	# shellcheck source=tests/e2e/docker.sh
	. "$E2E_DIR/docker.sh"
	# shellcheck source=tests/e2e/refresh.sh
	. "$E2E_DIR/refresh.sh"
	# shellcheck source=tests/e2e/federation.sh
	. "$E2E_DIR/federation.sh"
	# shellcheck source=tests/e2e/tls.sh
	. "$E2E_DIR/tls.sh"
	# shellcheck source=tests/e2e/troubleshoot.sh
	. "$E2E_DIR/troubleshoot.sh"
	# shellcheck source=tests/e2e/secrets.sh
	. "$E2E_DIR/secrets.sh"
	# shellcheck source=tests/e2e/unix.sh
	. "$E2E_DIR/unix.sh"
	# shellcheck source=tests/e2e/robots.sh
	. "$E2E_DIR/robots.sh"
	# shellcheck source=tests/e2e/rotation.sh
	. "$E2E_DIR/rotation.sh"
	# shellcheck source=tests/e2e/image.sh
	. "$E2E_DIR/image.sh"
	# shellcheck source=tests/e2e/ha.sh
	. "$E2E_DIR/ha.sh"
	SCENARIOS+=("${DOCKER_SCENARIOS[@]}")

	# Pass or fail, every process we started is stopped by its PID.
	trap 'docker_down; stop_all' EXIT
	trap 'echo "e2e: interrupted" >&2; exit 130' INT TERM

	printf 'e2e: %s; skopeo %s; podman %s; buildah %s\n' \
		"$(docker-registry --version | awk '{print "distribution", $NF}')" \
		"$(skopeo --version | awk '{print $NF}')" "$(podman --version | awk '{print $NF}')" \
		"$(buildah --version | awk '{print $3}')"

	local t0=$SECONDS
	prepare_fixtures
	run_test cli/hash t_cli_hash
	docker_up || true # containerd + dockerd for the docker-* scenarios (docker.sh)

	# The two regauth setups, each with its own key, regauth and registry:
	#   es256-libtrust  EC P-256 key, default kid (libtrust key ID)
	#   rs256-x5c       RSA key, certificate sent in the x5c header
	run_setup es256-libtrust ES256 "" "EC P-256 key, default kid (libtrust key ID)"
	run_setup rs256-x5c RS256 "  x5c: true" "RSA key, certificate in the x5c header"
	# Pull-through mirrors: registry + nginx fronts from examples/mirror (mirror.sh).
	run_mirror_setup
	# The README's Troubleshooting rows, each mistake made for real (troubleshoot.sh).
	run_troubleshoot_setup
	# Refresh tokens / identity tokens with the Docker engine (refresh.sh).
	run_refresh_setup
	# CI logins with OIDC ID tokens from real issuers on loopback (federation.sh).
	run_federation_setup
	docker_down
	# regauth and the registry over HTTPS, clients verifying (tls.sh).
	run_tls_setup
	# regauth on a Unix socket behind nginx (unix.sh).
	run_unix_setup
	# Robot accounts: scoped, expiring, revocable secrets (robots.sh).
	run_robots_setup
	# Key rotation with registries never restarted (rotation.sh).
	run_rotation_setup
	# The OCI image, built offline, as the registry's realm (image.sh).
	run_image_setup
	# Two replicas behind nginx sharing Redis (ha.sh, examples/ha).
	run_ha_setup
	# Last: no secret in any regauth log of the run (secrets.sh).
	run_secrets_check

	echo "== summary: $E2E_PASSED passed, $E2E_FAILED failed ($((SECONDS - t0))s)"
	if [[ $E2E_FAILED -ne 0 ]]; then
		printf '   failed: %s\n' "${E2E_FAILED_NAMES[@]}"
		return 1
	fi
}

if [[ "${1:-}" == --inner ]]; then
	inner
else
	outer
fi
