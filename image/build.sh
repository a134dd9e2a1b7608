#!/usr/bin/env bash
# image/build.sh — build the regauth OCI image offline, from what this machine
# has: the regauth binary, exactly the shared libraries it links (as `ldd`
# lists them: glibc's loader, libc, libm, libgcc_s), the host's CA bundle,
# and a minimal /etc. No base image is pulled and the build runs with no
# network (`--network none --pull=never`); the Containerfile at the
# repository root starts `FROM scratch`. What `make image` runs.
#
# Usage: image/build.sh [--bin PATH] [--stage DIR] [--tag NAME]... [-- PODMAN_GLOBAL_OPTS...]
#   --bin PATH    the binary to ship (default: target/release/regauth)
#   --stage DIR   where the build context (DIR/rootfs) is staged
#                 (default: target/image; emptied first)
#   --tag NAME    an image name to tag (repeatable; default: localhost/regauth:dev
#                 and localhost/regauth:<version from Cargo.toml>)
#   after --      global podman options (e.g. --root DIR --storage-driver vfs)
# Env: PODMAN (default: podman): the podman command to build and inspect with
#
# The shipped binary keeps its symbol table, so that backtraces name
# functions; debug info, when the binary has any (a debug build; the release
# profile strips it), is split off into STAGE/regauth.debug (linked with
# .gnu_debuglink, for gdb and post-mortems).
set -euo pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN="$REPO_ROOT/target/release/regauth"
STAGE="$REPO_ROOT/target/image"
TAGS=()
PODMAN=${PODMAN:-podman}
# The one non-root account the image runs as (distroless' "nonroot" uid).
UID_NONROOT=65532
CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt

die() {
	echo "image/build.sh: $*" >&2
	exit 1
}

while (($#)); do
	case $1 in
	--bin) BIN=$2; shift 2 ;;
	--stage) STAGE=$2; shift 2 ;;
	--tag) TAGS+=("$2"); shift 2 ;;
	--) shift; break ;;
	*) die "unknown option $1 (see the usage at the top of $0)" ;;
	esac
done
PODMAN_GLOBAL=("$@")

VERSION=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$REPO_ROOT/Cargo.toml" | head -n 1)
[[ -n "$VERSION" ]] || die "no version in $REPO_ROOT/Cargo.toml"
((${#TAGS[@]})) || TAGS=(localhost/regauth:dev "localhost/regauth:$VERSION")

for tool in "$PODMAN" ldd objcopy objdump; do
	command -v "$tool" >/dev/null ||
		die "$tool not found; install it: apt-get install --no-install-recommends podman binutils libc-bin"
done
[[ -x "$BIN" ]] || die "no binary at $BIN; build it first: cargo build --release --locked (or: make image)"
[[ -r "$CA_BUNDLE" ]] ||
	die "no CA bundle at $CA_BUNDLE (LDAPS and OIDC issuers are verified against it); install it: apt-get install ca-certificates"

# ------------------------------------------------------------------ stage ---

rm -rf "$STAGE"
ROOTFS="$STAGE/rootfs"
mkdir -p "$ROOTFS/etc/regauth" "$ROOTFS/etc/ssl/certs"

# The binary, symbols kept; debug info, when the build has any (the release
# profile strips it), split off.
if objdump -h "$BIN" | grep -q '[.]debug_info'; then
	objcopy --only-keep-debug "$BIN" "$STAGE/regauth.debug"
	objcopy --strip-debug --add-gnu-debuglink="$STAGE/regauth.debug" "$BIN" "$ROOTFS/regauth"
else
	cp "$BIN" "$ROOTFS/regauth"
fi
chmod 0755 "$ROOTFS/regauth"

# Exactly the shared libraries the binary links, at the paths the loader
# looks in (its built-in directories: there is no ld.so.cache in the image).
# A static binary (e.g. a musl build) needs none.
ldd_out=$(ldd "$BIN" 2>&1) || true
if [[ "$ldd_out" == *"not a dynamic executable"* || "$ldd_out" == *"statically linked"* ]]; then
	echo "image/build.sh: $BIN is static: no shared libraries to copy"
else
	[[ "$ldd_out" != *"not found"* ]] || die "ldd $BIN: a library is missing on this machine: $ldd_out"
	libs=$(awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' <<<"$ldd_out" | sort -u)
	[[ -n "$libs" ]] || die "ldd $BIN listed no libraries: $ldd_out"
	for lib in $libs; do
		# --parents keeps the path; -L copies the file a symlink names.
		cp -L --parents "$lib" "$ROOTFS/"
	done
fi

# CA certificates for LDAPS and OIDC issuers (rustls-native-certs reads
# this file, or SSL_CERT_FILE if set).
cp -L "$CA_BUNDLE" "$ROOTFS/etc/ssl/certs/ca-certificates.crt"

# A minimal /etc: the non-root account, and name lookups from /etc/hosts
# then DNS (podman bind-mounts /etc/hosts and /etc/resolv.conf at run time).
cat >"$ROOTFS/etc/passwd" <<EOF
root:x:0:0:root:/root:/sbin/nologin
regauth:x:$UID_NONROOT:$UID_NONROOT:regauth:/nonexistent:/sbin/nologin
EOF
cat >"$ROOTFS/etc/group" <<EOF
root:x:0:
regauth:x:$UID_NONROOT:
EOF
printf 'passwd: files\ngroup: files\nhosts: files dns\n' >"$ROOTFS/etc/nsswitch.conf"
find "$ROOTFS" -type d -exec chmod 0755 {} +
find "$ROOTFS/etc" -type f -exec chmod 0644 {} +

# ------------------------------------------------------------------ build ---

# The creation time is the last commit's, so a rebuild of the same commit
# gives the same image ID (falls back to now outside a git checkout).
epoch=$(git -C "$REPO_ROOT" log -1 --format=%ct 2>/dev/null || date +%s)
tag_args=()
for t in "${TAGS[@]}"; do tag_args+=(--tag "$t"); done

"$PODMAN" "${PODMAN_GLOBAL[@]}" build \
	--network none --pull=never --layers=false \
	--timestamp "$epoch" \
	--build-arg "VERSION=$VERSION" \
	--file "$REPO_ROOT/Containerfile" \
	"${tag_args[@]}" \
	"$STAGE"

size=$("$PODMAN" "${PODMAN_GLOBAL[@]}" image inspect --format '{{.Size}}' "${TAGS[0]}")
echo "image: ${TAGS[*]}"
echo "image size: $size bytes ($(numfmt --to=iec-i --suffix=B "$size"))"
