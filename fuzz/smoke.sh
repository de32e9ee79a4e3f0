#!/usr/bin/env bash
# CI smoke test for the fuzz targets: builds them, then runs each one for a short time, starting
# from the checked-in seeds and known reproducers. Exits non-zero when a target crashes, hangs
# (over 5 s on one input) or runs out of memory; the failing input is left in
# fuzz/artifacts/<target>/ and each run's full libFuzzer output in fuzz/artifacts/smoke-logs/,
# for the CI job to keep.
#
# Usage: fuzz/smoke.sh [SECONDS_PER_TARGET]     (default 30)
#
# Needs rustup with a nightly toolchain (cargo-fuzz needs nightly's sanitizer-coverage flags);
# installs cargo-fuzz when it is missing. One fuzzer process at a time, never -fork or -jobs.
set -euo pipefail

seconds="${1:-30}"
if ! [[ "$seconds" =~ ^[1-9][0-9]*$ ]]; then
    echo "usage: $0 [SECONDS_PER_TARGET]" >&2
    exit 2
fi

cd "$(dirname "$0")"

if ! cargo +nightly --version >/dev/null 2>&1; then
    echo "smoke: no nightly toolchain; install it with: rustup toolchain install nightly --profile minimal" >&2
    exit 2
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    echo "smoke: installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

# The core is safe Rust, so the address sanitizer would only slow the run down; debug assertions
# and overflow checks stay on (cargo-fuzz's default).
fuzz=(cargo +nightly fuzz)
sanitizer=(--sanitizer none)

"${fuzz[@]}" build "${sanitizer[@]}"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
logs=artifacts/smoke-logs
mkdir -p "$logs"

failed=()
for target in body config email; do
    # libFuzzer writes new inputs to the first directory only: the seeds stay untouched.
    corpus=("$work/$target" "seeds/$target")
    if [[ -d "regressions/$target" ]]; then
        corpus+=("regressions/$target")
    fi
    mkdir -p "$work/$target"
    args=(-max_total_time="$seconds" -timeout=5 -rss_limit_mb=2048 -dict=json.dict -print_final_stats=1)
    if [[ "$target" == body ]]; then
        args+=(-max_len=9000)
    fi
    echo "smoke: $target for ${seconds}s"
    # libFuzzer logs every new input; keep that in a file and show the summary or the failure.
    if "${fuzz[@]}" run "${sanitizer[@]}" "$target" "${corpus[@]}" -- "${args[@]}" >"$logs/$target.log" 2>&1; then
        grep -E '^#[0-9]+[[:space:]]+DONE|^stat::' "$logs/$target.log" || true
    else
        tail -n 80 "$logs/$target.log"
        failed+=("$target")
    fi
done

if ((${#failed[@]})); then
    echo "smoke: FAILED: ${failed[*]} (inputs in fuzz/artifacts/)" >&2
    exit 1
fi
echo "smoke: all targets ran ${seconds}s without a crash"
