#!/usr/bin/env bash
# The whole test suite: installs what is missing, builds, runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
EXTRA_PACKAGES="faketime" source .ci/deps.sh
swift build --build-tests
swift test
# Every parser that takes bytes from outside, under libFuzzer and AddressSanitizer.
bash .ci/fuzz.sh "${FUZZ_SECONDS:-30}"
