#!/usr/bin/env bash
# Soak: a fixed rate for a long time, sampling gatewayd's RSS, open descriptors, the rate and the
# publish -> committed latency each minute, to show nothing grows without bound. Not run in CI.
#
#   make soak                                  # = bash Benchmarks/soak.sh: 30 min at 5 000 messages/s
#   RATE=8000 DURATION=600 bash Benchmarks/soak.sh
#
# The ring is small (CAPACITY) so it wraps many times: the store file must stop growing too.
set -euo pipefail
cd "$(dirname "$0")/.."
source .ci/deps.sh
source .ci/loopback.sh

RATE=${RATE:-5000}
DURATION=${DURATION:-1800}
DEVICES=${DEVICES:-10000}
CAPACITY=${CAPACITY:-2000000}
out=${OUT:-Benchmarks/results}

swift build -c release >/dev/null
bin=$(swift build -c release --show-bin-path)
dir=$(mktemp -d /tmp/gw-soak.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$dir"' EXIT
mkdir -p "$out"

port=$(free_port 19960)
printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\nmax_queued_messages 1000000\nset_tcp_nodelay true\n' \
    "$port" >"$dir/mosquitto.conf"
mosquitto -c "$dir/mosquitto.conf" >"$dir/mosquitto.log" 2>&1 &
wait_port "$port"
http=$(free_port 19980)
cat >"$dir/gateway.json" <<CONF
{"gateway_id": "soak", "broker": {"port": $port}, "http": {"listen": "127.0.0.1:$http"},
 "limits": {"device_rate_per_s": 1000000, "device_burst": 1000000},
 "store": {"path": "$dir/gateway.db", "capacity_readings": $CAPACITY},
 "log": {"level": "warning", "stats_interval_s": 0}}
CONF
MALLOC_ARENA_MAX=2 "$bin/gatewayd" --config "$dir/gateway.json" 2>"$dir/gatewayd.log" &
gw=$!
for _ in $(seq 200); do grep -q mqtt_connected "$dir/gatewayd.log" 2>/dev/null && break; sleep 0.05; done
sleep 0.5
{
    echo "# soak $(date -u +%Y-%m-%dT%H:%MZ): $RATE messages/s, $DEVICES devices, ${DURATION} s, ring $CAPACITY, $(nproc) cores"
    "$bin/gwbench" ingest --port "$port" --db "$dir/gateway.db" --gateway-pid "$gw" --devices "$DEVICES" \
        --rate "$RATE" --duration "$DURATION" --sample-every 60 --label soak --settle-s 30
    echo "db_bytes_at_end=$(stat -c %s "$dir/gateway.db") wal_bytes=$(stat -c %s "$dir/gateway.db-wal" 2>/dev/null || echo 0)"
} | tee "$out/soak.txt"
