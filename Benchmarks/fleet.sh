#!/usr/bin/env bash
# Fleet OTA over the city link: the end-to-end test (three gateways on the 3-node RabbitMQ
# cluster, the depot, a roaming vehicle, a fleet-wide abort) with a larger image, printing what it
# measured: time from `gwctl fleet push` to the last gateway holding the verified release, image
# bytes each gateway fetched over the city link, and blocks the roaming vehicle fetched at its
# second gateway against a fresh start. Debug build (the test harness's binaries).
#
#   bash Benchmarks/fleet.sh             # KIB="384 16384"
set -euo pipefail
cd "$(dirname "$0")/.."
EXTRA_PACKAGES="rabbitmq-server python3-pika" source .ci/deps.sh

KIB=${KIB:-"384 16384"}
swift build --build-tests >/dev/null
for kib in $KIB; do
    TG_FLEET_IMAGE_KIB=$kib swift test --skip-build --filter onePushReachesEveryGatewayAndRoamingVehiclesResume 2>&1 | grep -E '^fleet:|✘' || true
done
