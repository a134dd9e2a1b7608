#!/usr/bin/env bash
# deps.sh — make sure the Debian packages the end-to-end suite needs are installed.
#
# Usage:  tests/e2e/deps.sh          install what is missing (needs root + apt-get)
#         tests/e2e/deps.sh --check  only report; exit 1 with the install command
#
# Every package comes from the Debian archive (bookworm or later). `apt-get
# update` runs only when something has to be installed. When installing is not
# possible (not root, no apt-get, apt failure) the script exits non-zero and
# prints the exact command to run.
set -euo pipefail

# command -> Debian package that provides it. A command is only a probe: the
# package is what gets installed.
declare -A PROVIDES=(
	[docker-registry]=docker-registry # distribution 2.8, the registry under test
	[skopeo]=skopeo
	[podman]=podman
	[buildah]=buildah
	[runc]=runc       # podman's OCI runtime for `podman run` (image.sh)
	[conmon]=conmon   # podman's container monitor (image.sh)
	[objcopy]=binutils # image/build.sh splits the debug info off
	[ldd]=libc-bin    # image/build.sh copies the libraries ldd lists
	[update-ca-certificates]=ca-certificates # the CA bundle image/build.sh puts in the image
	[nginx]=nginx # mirror fronts (mirror.sh)
	[faketime]=faketime # a token server whose clock is ahead (troubleshoot.sh)
	[dockerd]=docker.io # Docker Engine 20.10 (+ containerd, runc), see docker.sh
	[slapd]=slapd            # LDAP tests (tests/integration/slapd.rs)
	[ldapwhoami]=ldap-utils  # slapd harness readiness probe
	[redis-server]=redis-server # throttle.redis tests (tests/integration/throttle_redis.rs, ha.sh)
	[curl]=curl
	[node]=nodejs # the OIDC issuer of federation.sh (oauth2-mock-server)
	[npm]=npm     # installs it from tests/e2e/oidc/package-lock.json
	[jq]=jq
	[openssl]=openssl    # recomputes the expected key id / x5c from the cert
	[unshare]=util-linux # private network + mount namespaces
	[ip]=iproute2        # `ip link set lo up` inside the namespace
	[ss]=iproute2        # free-port probing
	[base32]=coreutils
	[sha256sum]=coreutils
	[timeout]=coreutils
	[tar]=tar
	[gzip]=gzip
)

# Print the sorted, de-duplicated list of packages whose probe command is missing.
missing_packages() {
	local cmd
	for cmd in "${!PROVIDES[@]}"; do
		command -v "$cmd" >/dev/null 2>&1 || printf '%s\n' "${PROVIDES[$cmd]}"
	done | sort -u
}

debian_deps() {
	local check_only=0
	case "${1:-}" in
	--check) check_only=1 ;;
	"") ;;
	*)
		echo "usage: $0 [--check]" >&2
		exit 2
		;;
	esac

	local -a missing
	mapfile -t missing < <(missing_packages)
	if [[ ${#missing[@]} -eq 0 ]]; then
		echo "e2e deps: all present"
		return 0
	fi

	local cmd="DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${missing[*]}"
	local how="as root: apt-get update && $cmd   (or: sudo tests/e2e/deps.sh)"

	if [[ $check_only -eq 1 ]]; then
		echo "e2e deps: missing Debian packages: ${missing[*]}" >&2
		echo "e2e deps: install them with: tests/e2e/deps.sh" >&2
		echo "e2e deps:   or $how" >&2
		return 1
	fi
	if [[ $(id -u) -ne 0 ]]; then
		echo "e2e deps: missing Debian packages: ${missing[*]}; installing needs root." >&2
		echo "e2e deps: run $how" >&2
		return 1
	fi
	if ! command -v apt-get >/dev/null 2>&1; then
		echo "e2e deps: missing packages ${missing[*]} and apt-get is not available (not Debian?)." >&2
		echo "e2e deps: install the equivalents of: ${missing[*]}" >&2
		return 1
	fi

	echo "e2e deps: installing ${missing[*]}"
	# The packages must not start their services (slapd on :389, nginx on
	# :80, dockerd): the tests run their own instances on loopback. A
	# policy-rc.d that refuses every start is in place during the install.
	local policy=/usr/sbin/policy-rc.d created_policy=0
	if [[ ! -e $policy ]]; then
		printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy" && created_policy=1
	fi
	local ok=1
	if ! DEBIAN_FRONTEND=noninteractive apt-get update -q ||
		! DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"; then
		ok=0
	fi
	if [[ $created_policy -eq 1 ]]; then rm -f "$policy"; fi
	if [[ $ok -eq 0 ]]; then
		echo "e2e deps: apt-get failed; run $how" >&2
		return 1
	fi

	# Re-check: a package may install without providing the probed command.
	mapfile -t missing < <(missing_packages)
	if [[ ${#missing[@]} -ne 0 ]]; then
		echo "e2e deps: still missing after install: ${missing[*]}" >&2
		return 1
	fi
	echo "e2e deps: all present"
}

# The npm packages of tests/e2e/oidc (the OIDC issuer federation.sh runs),
# pinned by its package-lock.json and installed with `npm ci` when missing
# or older than the lock file.
npm_deps() {
	local dir
	dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/oidc"
	local stamp="$dir/node_modules/.package-lock.json"
	if [[ -f $stamp && ! "$dir/package-lock.json" -nt $stamp ]]; then
		echo "e2e deps: npm packages present ($dir)"
		return 0
	fi
	if [[ ${1:-} == --check ]]; then
		echo "e2e deps: npm packages of $dir missing; install them with: (cd $dir && npm ci)" >&2
		return 1
	fi
	if ! (cd "$dir" && npm ci --no-audit --no-fund); then
		echo "e2e deps: npm ci failed; run: (cd $dir && npm ci)" >&2
		return 1
	fi
}

main() {
	debian_deps "$@" && npm_deps "$@"
}

main "$@"
