#!/usr/bin/env bash
# render.sh — fill in the @PLACEHOLDERS@ of an example's files.
#
# Usage:  examples/render.sh EXAMPLE_DIR OUTDIR NAME=VALUE...
#         (or examples/NAME/render.sh OUTDIR NAME=VALUE..., which calls this)
#
# Copies every file of EXAMPLE_DIR (except README.md and render.sh) to
# OUTDIR with the same relative path, replacing each @NAME@ by VALUE.
# Fails, naming the file, if a placeholder is left without a value.
# Also creates OUTDIR/nginx/logs and OUTDIR/nginx/tmp, which the
# examples' nginx.conf writes to.
# The e2e suite (tests/e2e/mirror.sh, tests/e2e/ha.sh) renders these very
# files to run its tests, so what is documented is what is tested.
set -euo pipefail

[[ $# -ge 2 ]] || {
	echo "usage: $0 EXAMPLE_DIR OUTDIR NAME=VALUE..." >&2
	exit 2
}
src=$(cd "$1" && pwd)
out=$2
shift 2

declare -A val=()
for kv in "$@"; do
	[[ "$kv" == *=* && "${kv%%=*}" =~ ^[A-Z][A-Z0-9_]*$ ]] || {
		echo "render.sh: not NAME=VALUE: $kv" >&2
		exit 2
	}
	val[${kv%%=*}]=${kv#*=}
done

rc=0
while IFS= read -r -d '' f; do
	rel=${f#"$src"/}
	case $rel in README.md | render.sh) continue ;; esac
	mkdir -p "$out/$(dirname "$rel")"
	text=$(<"$f")
	for name in "${!val[@]}"; do
		text=${text//"@$name@"/"${val[$name]}"}
	done
	if left=$(grep -oE '@[A-Z][A-Z0-9_]*@' <<<"$text" | sort -u | tr '\n' ' ') && [[ -n "$left" ]]; then
		echo "render.sh: $rel: no value for $left" >&2
		rc=1
	fi
	printf '%s\n' "$text" >"$out/$rel"
done < <(find "$src" -type f -print0 | sort -z)
# nginx.conf writes under its prefix (-p OUTDIR/nginx/): logs/ for the
# error and access logs, tmp/ for request bodies and proxy buffers. nginx
# creates neither and does not start without them.
mkdir -p "$out/nginx/logs" "$out/nginx/tmp"
exit $rc
