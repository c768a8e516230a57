#!/usr/bin/env bash
# libFuzzer on the parsers that take bytes from outside (Sources/FuzzTargets):
#   bash .ci/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
# Builds gwfuzz with -sanitize=fuzzer,address in its own scratch folder, runs each target for
# SECONDS (default 30) from the seeds in Tests/FuzzCorpus/TARGET, and fails if any target
# crashes, leaks past ASan or times out on one input. A crashing input is copied into
# Tests/FuzzCorpus/TARGET/ so the regular test suite replays it from then on (commit it with
# the fix). Prints one line per target: executions, corpus growth, crashes.
set -euo pipefail
cd "$(dirname "$0")/.."
source .ci/deps.sh

seconds=${1:-30}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(decoder http manifest ota delta config fleet)

scratch=.build-fuzz
swift build --product gwfuzz --scratch-path "$scratch" \
    -Xswiftc -sanitize=fuzzer,address -Xswiftc -DFUZZING -Xswiftc -parse-as-library >/dev/null
binary="$scratch/debug/gwfuzz"

work=$(mktemp -d /tmp/gwfuzz.XXXXXX)
trap 'rm -rf "$work"' EXIT
status=0
for target in "${targets[@]}"; do
    corpus="$work/$target"
    mkdir -p "$corpus" "$work/$target-artifacts"
    cp Tests/FuzzCorpus/"$target"/* "$corpus"/
    seeds=$(ls "$corpus" | wc -l)
    log="$work/$target.log"
    set +e
    GWFUZZ_TARGET=$target ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 "$binary" "$corpus" \
        -max_total_time="$seconds" -max_len=65536 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$work/$target-artifacts/" >"$log" 2>&1
    rc=$?
    set -e
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo 0)
    grown=$(( $(ls "$corpus" | wc -l) - seeds ))
    crashes=0
    for artifact in "$work/$target-artifacts"/*; do
        [ -e "$artifact" ] || continue
        crashes=$((crashes + 1))
        kept="Tests/FuzzCorpus/$target/regression-$(sha256sum "$artifact" | cut -c1-16)"
        cp "$artifact" "$kept"
        echo "fuzz: $target: $(basename "$artifact") kept as $kept"
    done
    echo "fuzz target=$target seconds=$seconds executions=$runs new_corpus_inputs=$grown crashes=$crashes rc=$rc"
    if [ "$rc" -ne 0 ] || [ "$crashes" -gt 0 ]; then
        status=1
        tail -40 "$log" >&2
    fi
done
exit $status
