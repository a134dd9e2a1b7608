#!/usr/bin/env bash
# mkimage.sh — write a tiny OCI image layout by hand, without any container engine.
#
# Usage (as a command):   tests/e2e/mkimage.sh DIR TAG [CONTENT]
# Usage (sourced):        mkimage DIR TAG [CONTENT]
#
# Writes DIR/oci-layout, DIR/index.json and DIR/blobs/sha256/* holding:
#   - one gzip-compressed tar layer with a single file /hello.txt (CONTENT),
#   - an image config whose rootfs.diff_ids names the uncompressed layer,
#   - an OCI image manifest referencing both, tagged TAG in index.json.
# Everything is deterministic (fixed mtimes/owners, `gzip -n`), so the same
# CONTENT always gives the same digests. Prints the manifest digest on stdout.
#
# The result can be pushed with:
#   skopeo copy --dest-tls-verify=false oci:DIR:TAG docker://127.0.0.1:PORT/repo:TAG

# Print "sha256:<hex>" of a file.
_mkimage_digest() {
	local sum
	sum=$(sha256sum "$1")
	printf 'sha256:%s' "${sum%% *}"
}

# Size of a file in bytes.
_mkimage_size() {
	stat -c %s "$1"
}

# Move FILE into the layout's blob store under its own digest; print the digest.
_mkimage_store_blob() {
	local dir=$1 file=$2 digest
	digest=$(_mkimage_digest "$file")
	mv "$file" "$dir/blobs/sha256/${digest#sha256:}"
	printf '%s' "$digest"
}

# The GOARCH name of this machine, so podman/buildah accept the image without
# a platform-mismatch complaint.
_mkimage_arch() {
	case "$(uname -m)" in
	x86_64) echo amd64 ;;
	aarch64 | arm64) echo arm64 ;;
	armv7l | armv6l) echo arm ;;
	ppc64le) echo ppc64le ;;
	s390x) echo s390x ;;
	riscv64) echo riscv64 ;;
	i?86) echo 386 ;;
	*) uname -m ;;
	esac
}

mkimage() {
	local dir=$1 tag=$2 content=${3:-"hello from the regauth e2e suite"}
	local work layer_tar layer_gz diff_id layer_digest layer_size
	local config config_digest config_size manifest manifest_digest manifest_size

	mkdir -p "$dir/blobs/sha256"
	work=$(mktemp -d "$dir/.work.XXXXXX")

	# 1. The layer: a tar holding one small file, built reproducibly.
	mkdir "$work/rootfs"
	printf '%s\n' "$content" >"$work/rootfs/hello.txt"
	layer_tar="$work/layer.tar"
	tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 \
		--format=ustar \
		-C "$work/rootfs" -cf "$layer_tar" hello.txt
	diff_id=$(_mkimage_digest "$layer_tar")
	layer_gz="$work/layer.tar.gz"
	gzip -n -c "$layer_tar" >"$layer_gz"
	layer_size=$(_mkimage_size "$layer_gz")
	layer_digest=$(_mkimage_store_blob "$dir" "$layer_gz")

	# 2. The image config; diff_ids are digests of the *uncompressed* layers.
	config="$work/config.json"
	printf '{"architecture":"%s","os":"linux","config":{"Cmd":["/bin/cat","/hello.txt"]},"rootfs":{"type":"layers","diff_ids":["%s"]},"history":[{"created":"1970-01-01T00:00:00Z","created_by":"regauth e2e mkimage.sh"}]}' \
		"$(_mkimage_arch)" "$diff_id" >"$config"
	config_size=$(_mkimage_size "$config")
	config_digest=$(_mkimage_store_blob "$dir" "$config")

	# 3. The manifest, referencing the config and the layer by digest and size.
	manifest="$work/manifest.json"
	printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"%s","size":%s}]}' \
		"$config_digest" "$config_size" "$layer_digest" "$layer_size" >"$manifest"
	manifest_size=$(_mkimage_size "$manifest")
	manifest_digest=$(_mkimage_store_blob "$dir" "$manifest")

	# 4. The layout marker and the index naming the manifest by tag.
	printf '{"imageLayoutVersion":"1.0.0"}' >"$dir/oci-layout"
	printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"%s","size":%s,"annotations":{"org.opencontainers.image.ref.name":"%s"}}]}' \
		"$manifest_digest" "$manifest_size" "$tag" >"$dir/index.json"

	rm -rf "$work"
	printf '%s\n' "$manifest_digest"
}

# Run as a command unless sourced.
if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
	set -euo pipefail
	if [[ $# -lt 2 || $# -gt 3 ]]; then
		echo "usage: $0 DIR TAG [CONTENT]" >&2
		exit 2
	fi
	mkimage "$@"
fi
