#!/usr/bin/env bash
# The whole test suite: installs what is missing, builds, runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
EXTRA_PACKAGES="faketime" source .ci/deps.sh
swift build --build-tests
swift test
# Every parser that takes bytes from outside, under libFuzzer and AddressSanitizer.
bash .ci/fuzz.sh "${FUZZ_SECONDS:-20}"
# The whole suite again with AddressSanitizer: the integration tests then run the instrumented
# gatewayd, gwsim and gwctl from the same build folder. Leak checks stay off (the Swift
# runtime keeps allocations alive on purpose); SKIP_ASAN=1 skips this pass.
if [ -z "${SKIP_ASAN:-}" ]; then
    swift build --build-tests --sanitize=address --scratch-path .build-asan
    TG_SANITIZER=address ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 \
        swift test --skip-build --sanitize=address --scratch-path .build-asan
fi
