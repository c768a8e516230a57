#!/usr/bin/env bash
# The benchmark suite: ingest end to end against the broker alone, how it scales with devices and
# ring capacity, QoS 0 and 1, latency publish -> committed at half the maximum rate, and alarm
# latency to the upstream broker over mutual TLS. Results: Benchmarks/results/ingest.jsonl (one
# JSON object per run, plus a machine record) and Benchmarks/results/scaling.svg.
#
#   make bench                      # = bash Benchmarks/suite.sh
#   MESSAGES=100000 DEVICES="10 1000" CAPACITIES="100000" bash Benchmarks/suite.sh   # quicker
#
# One release gatewayd per run, fresh store; the load generator is `gwbench ingest`
# (Sources/gwbench/IngestLoad.swift); everything on loopback on this machine.
set -euo pipefail
cd "$(dirname "$0")/.."
source .ci/deps.sh
source .ci/loopback.sh

MESSAGES=${MESSAGES:-200000}
DEVICES=${DEVICES:-"10 1000 10000 100000"}
CAPACITIES=${CAPACITIES:-"100000 1000000 10000000"}
CONNECTIONS=${CONNECTIONS:-4}
HALF_RATE_S=${HALF_RATE_S:-20}
ALERTS=${ALERTS:-500}
out=${OUT:-Benchmarks/results}

swift build -c release >/dev/null
bin=$(swift build -c release --show-bin-path)
dir=$(mktemp -d /tmp/gw-suite.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$dir"' EXIT
mkdir -p "$out"
results="$out/ingest.jsonl"
: >"$results"
printf '{"label":"machine","date":"%s","cpus":%s,"cpu":"%s","memory_gb":%s,"kernel":"%s","swift":"%s","mosquitto":"%s","sqlite":"%s"}\n' \
    "$(date -u +%Y-%m-%dT%H:%MZ)" "$(nproc)" "$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)" \
    "$(awk '/MemTotal/ {printf "%.0f", $2 / 1048576}' /proc/meminfo)" "$(uname -r)" \
    "$(swift --version 2>&1 | sed -n 's/.*Swift version \([0-9.]*\).*/\1/p' | head -1)" \
    "$(mosquitto -h 2>/dev/null | sed -n 's/.*version \([0-9.]*\).*/\1/p' | head -1)" "$(sqlite3 --version | cut -d' ' -f1)" >>"$results"

port=$(free_port 19930)
printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\nmax_queued_messages 1000000\nmax_inflight_messages 1000\nset_tcp_nodelay true\n' \
    "$port" >"$dir/mosquitto.conf"
mosquitto -c "$dir/mosquitto.conf" >"$dir/mosquitto.log" 2>&1 &
wait_port "$port"

# baseline LABEL DEVICES QOS [more gwbench options]: publisher -> broker -> a subscriber that counts.
baseline() {
    local label=$1 devices=$2 qos=$3
    shift 3
    "$bin/gwbench" ingest --port "$port" --baseline 1 --devices "$devices" --qos "$qos" --connections "$CONNECTIONS" \
        --messages "$MESSAGES" --label "$label" --json-out "$results" "$@"
}

# gateway LABEL DEVICES QOS CAPACITY [more gwbench options]: the same publisher into a fresh gatewayd.
gateway() {
    local label=$1 devices=$2 qos=$3 capacity=$4
    shift 4
    local run="$dir/run"
    rm -rf "$run"
    mkdir -p "$run"
    cat >"$run/gateway.json" <<CONF
{"gateway_id": "bench", "broker": {"port": $port}, "http": {"enabled": false}, "ota": {"enabled": false},
 "limits": {"device_rate_per_s": 1000000, "device_burst": 1000000},
 "store": {"path": "$run/gateway.db", "capacity_readings": $capacity, "max_devices": 200000},
 "log": {"level": "warning", "stats_interval_s": 0}}
CONF
    MALLOC_ARENA_MAX=2 "$bin/gatewayd" --config "$run/gateway.json" 2>"$run/gatewayd.log" &
    local gw=$!
    for _ in $(seq 200); do grep -q mqtt_connected "$run/gatewayd.log" 2>/dev/null && break; sleep 0.05; done
    sleep 0.3
    "$bin/gwbench" ingest --port "$port" --db "$run/gateway.db" --gateway-pid "$gw" --devices "$devices" --qos "$qos" \
        --connections "$CONNECTIONS" --messages "$MESSAGES" --label "$label" --json-out "$results" "$@"
    kill -TERM "$gw"
    wait "$gw" || true
}

echo "== scaling with devices (QoS 1, ring 10^6)"
for devices in $DEVICES; do
    baseline scale "$devices" 1
    gateway scale "$devices" 1 1000000
done

echo "== ring capacity (1 000 devices, QoS 1)"
for capacity in $CAPACITIES; do
    gateway "ring-$capacity" 1000 1 "$capacity"
done

echo "== QoS 0 (1 000 devices)"
baseline qos0 1000 0
gateway qos0 1000 0 1000000

echo "== latency at half the maximum rate (1 000 devices, QoS 1, ${HALF_RATE_S} s)"
max=$(sed -n '/"label":"scale"/{/"mode":"gateway"/{/"devices":1000,/s/.*"messages_per_s":\([0-9]*\).*/\1/p}}' "$results" | head -1)
half=$(( ${max:-20000} / 2 ))
echo "maximum ${max:-?} messages/s -> ${half} messages/s"
gateway half-rate 1000 1 1000000 --rate "$half" --duration "$HALF_RATE_S"

echo "== alarm latency, local publish -> alert at the upstream broker (mutual TLS)"
alert=$(ALERTS=$ALERTS ROWS=1000 bash Benchmarks/upstream.sh 2>&1 | grep -m 1 'p50' || true)
echo "$alert"
printf '{"label":"alert-latency","output":"%s"}\n' "$alert" >>"$results"

"$bin/gwbench" chart --in "$results" --out "$out/scaling.svg"
echo "results: $results, chart: $out/scaling.svg"

# Many gateways into the city cluster (Deploy/city); SKIP_CITY=1 leaves it out.
if [ -z "${SKIP_CITY:-}" ]; then
    echo "== city: gateways into the three-node cluster, consumer group (Benchmarks/city.sh)"
    OUT=$out bash Benchmarks/city.sh
fi
