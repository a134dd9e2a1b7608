#!/usr/bin/env bash
# Fills in the @PLACEHOLDERS@ of this example's files.
# Usage:  examples/mirror/render.sh OUTDIR NAME=VALUE...   (see examples/render.sh)
[[ $# -ge 1 ]] || {
	echo "usage: $0 OUTDIR NAME=VALUE..." >&2
	exit 2
}
here=$(dirname "${BASH_SOURCE[0]}")
exec "$here/../render.sh" "$here" "$@"
