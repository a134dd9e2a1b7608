#!/usr/bin/env bash
# Runs every fuzz target for FUZZ_SECONDS seconds (default 60; five targets:
# five minutes), minimizes each corpus in place, and prints a summary.
# Exits non-zero if any target crashed, leaked or timed out; the input is
# left in fuzz/artifacts/<target>/ (turn it into a corpus file and a
# regression test, see SECURITY.md).
#
# Tool: cargo-fuzz (libFuzzer, AddressSanitizer), installed from crates.io
# when missing. It passes nightly-only flags (-Zsanitizer=address) to rustc;
# RUSTC_BOOTSTRAP=1 lets the stable toolchain accept them. That switch is
# used for this fuzz build only: it never touches regauth's own build.
set -euo pipefail
cd "$(dirname "$0")"

SECS=${FUZZ_SECONDS:-60}
TARGETS=${FUZZ_TARGETS:-"scope params basic htpasswd config"}
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "== installing cargo-fuzz (crates.io)"
    cargo install cargo-fuzz --locked
fi

echo "== building fuzz targets (release, AddressSanitizer)"
cargo fuzz build

logs=target/logs
mkdir -p "$logs"
failed=()
summary=()
for t in $TARGETS; do
    mkdir -p "corpus/$t"
    before=$(ls "corpus/$t" | wc -l)
    echo "== fuzzing $t for ${SECS}s (corpus: $before inputs)"
    if cargo fuzz run "$t" "corpus/$t" -- \
        -max_total_time="$SECS" -timeout=10 -rss_limit_mb=2048 -max_len=8192 \
        -print_final_stats=1 >"$logs/$t.log" 2>&1; then
        status=ok
    else
        status=FAILED
        failed+=("$t")
        grep -E "ERROR|panicked|SUMMARY|Test unit written" "$logs/$t.log" | head -20 || true
    fi
    runs=$(grep -oE "Done [0-9]+ runs in [0-9]+ second" "$logs/$t.log" | tail -1 | grep -oE "[0-9]+" | head -1 || true)
    took=$(grep -oE "Done [0-9]+ runs in [0-9]+ second" "$logs/$t.log" | tail -1 | grep -oE "[0-9]+" | tail -1 || true)
    cov=$(grep -oE "cov: [0-9]+ ft: [0-9]+" "$logs/$t.log" | tail -1 || true)
    # Keep the committed corpus small: only inputs that add coverage.
    cargo fuzz cmin "$t" "corpus/$t" >"$logs/$t.cmin.log" 2>&1 || echo "   (cmin failed; see $logs/$t.cmin.log)"
    after=$(ls "corpus/$t" | wc -l)
    summary+=("$(printf '%-9s %-6s %10s execs in %4ss  %-20s corpus %4s -> %4s' "$t" "$status" "${runs:-?}" "${took:-?}" "${cov:-}" "$before" "$after")")
done

echo
echo "== fuzz summary (${SECS}s per target; logs in fuzz/$logs)"
printf '%s\n' "${summary[@]}"
if ((${#failed[@]})); then
    echo "CRASHED: ${failed[*]} (inputs in fuzz/artifacts/)"
    exit 1
fi
echo "no crash"
