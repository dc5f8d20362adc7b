#!/usr/bin/env bash
# `make fuzz`: builds the cargo-fuzz targets (nightly, libFuzzer + AddressSanitizer) and runs
# each for FUZZ_SECONDS (default 60), one after the other (the machine has 2 shared cores).
#   FUZZ_SECONDS=600 make fuzz              longer runs
#   FUZZ_TARGETS="jws saml_response" make fuzz
# New inputs go to fuzz/corpus/<target>/ (kept between runs, not committed); crashes to
# fuzz/artifacts/<target>/. Any crash or property failure makes the run fail: copy the
# artifact into fuzz/regressions/<target>/, fix the bug, and `cargo test --features fuzzing
# --test fuzz_regressions` replays it from then on.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH=${FUZZ_SECONDS:-60}
TOOLCHAIN=${FUZZ_TOOLCHAIN:-nightly}

if ! rustup run "$TOOLCHAIN" rustc --version >/dev/null 2>&1; then
    rustup toolchain install "$TOOLCHAIN" --profile minimal
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

all=$(sed -n 's/^name = "\(.*\)"$/\1/p' fuzz/Cargo.toml | grep -v '^sso-filter-fuzz$')
targets=${FUZZ_TARGETS:-$all}

start=$(date +%s)
cargo "+$TOOLCHAIN" fuzz build -O
echo "fuzz build: $(( $(date +%s) - start ))s"

mkdir -p target
summary=target/fuzz-summary.txt
printf '%-16s %12s %10s %8s %8s\n' target executions exec/s corpus crashes > "$summary"
failed=0
for t in $targets; do
    mkdir -p "fuzz/corpus/$t" "fuzz/artifacts/$t"
    log="target/fuzz-$t.log"
    before=$(ls "fuzz/artifacts/$t" | wc -l)
    rc=0
    cargo "+$TOOLCHAIN" fuzz run -O "$t" "fuzz/corpus/$t" "fuzz/seeds/$t" -- \
        -max_total_time="$SECONDS_EACH" -print_final_stats=1 -rss_limit_mb=2048 \
        -timeout=10 >"$log" 2>&1 || rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    corpus=$(ls "fuzz/corpus/$t" | wc -l)
    crashes=$(( $(ls "fuzz/artifacts/$t" | wc -l) - before ))
    printf '%-16s %12s %10s %8s %8s\n' "$t" "${execs:-?}" "${rate:-?}" "$corpus" "$crashes" | tee -a "$summary"
    if [ "$rc" != 0 ] || [ "$crashes" != 0 ]; then
        failed=1
        echo "  $t failed (exit $rc); log: $log; artifacts: fuzz/artifacts/$t/" >&2
        grep -m3 -E 'panicked|ERROR: libFuzzer|SUMMARY' "$log" >&2 || true
    fi
done
echo "== fuzz summary (${SECONDS_EACH}s each)"
cat "$summary"
exit $failed
