#!/usr/bin/env bash
# The whole test suite: installs what is missing, builds, runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
# faketime: the clock-jump test; dpkg-dev, fakeroot: the package the deploy tests install into
# a throwaway root; lintian and libcurl4-openssl-dev (gwctl's static link): the release package.
# rabbitmq-server, python3-pika: the three-node city cluster and its reference consumer (Deploy/city).
# chromium: the console's tests run it headless.
EXTRA_PACKAGES="faketime dpkg-dev fakeroot lintian libcurl4-openssl-dev rabbitmq-server python3-pika chromium" source .ci/deps.sh
# promtool, Prometheus's own checker, for the metrics test: taken out of Debian's package, not
# installed (installing it would start a Prometheus server).
if ! command -v promtool >/dev/null 2>&1 && [ ! -x .build/tools/promtool/usr/bin/promtool ]; then
    mkdir -p .build/tools
    (cd .build/tools && { apt-get download prometheus >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get download prometheus >/dev/null 2>&1; }; } &&
        dpkg-deb -x prometheus_*.deb promtool && rm -f prometheus_*.deb) ||
        echo "test: cannot fetch Debian's prometheus package; the promtool check will be skipped" >&2
fi
swift build --build-tests
# The city cluster tests (three RabbitMQ nodes, up to twenty gatewayd, fleet OTA) run on their
# own after the rest: run beside the others, they kept the test runner's two cooperative threads blocked for
# minutes and starved the other suites into their time limits.
swift test --skip-build --skip CityClusterTests
swift test --skip-build --filter CityClusterTests
# Every parser that takes bytes from outside, under libFuzzer and AddressSanitizer.
bash .ci/fuzz.sh "${FUZZ_SECONDS:-20}"
# The whole suite again with AddressSanitizer: the integration tests then run the instrumented
# gatewayd, gwsim and gwctl from the same build folder. Leak checks stay off (the Swift
# runtime keeps allocations alive on purpose); SKIP_ASAN=1 skips this pass.
if [ -z "${SKIP_ASAN:-}" ]; then
    swift build --build-tests --sanitize=address --scratch-path .build-asan
    for selection in "--skip CityClusterTests" "--filter CityClusterTests"; do
        # shellcheck disable=SC2086 # two words on purpose
        TG_SANITIZER=address ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 \
            swift test --skip-build --sanitize=address --scratch-path .build-asan $selection
    done
fi
# The release package (what `make deb` makes), lintian-clean, then on a Debian 12 board in a
# virtual machine: install, upgrade, failed start, rollback, reboot, remove, purge. The VM comes
# from the team's board-vm tool beside the checkout; CI always has it, a developer without it
# is told and the step is skipped (SKIP_BOARD=1 skips it too).
if [ -z "${SKIP_BOARD:-}" ]; then
    bash Deploy/build-deb.sh --lintian --out .build-deb >/dev/null
    board_vm=${BOARD_VM:-../shared/board-vm/board-vm.sh}
    if [ -f "$board_vm" ] || [ -n "${CI:-}" ]; then
        BOARD_VM=$board_vm bash Tests/Board/run.sh --bin .build-deb/release
    else
        echo "test: board test skipped: no board VM tool at $board_vm (BOARD_VM=path/to/board-vm.sh)" >&2
    fi
fi
