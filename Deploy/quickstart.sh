#!/usr/bin/env bash
# Quick start on loopback: a mosquitto broker, gatewayd and a simulated fleet, with a live
# count of readings landing in SQLite. Ctrl-C stops everything this script started.
#
#   VEHICLES=20 SENSORS=5 RATE=50 bash Deploy/quickstart.sh
#   DURATION=15 bash Deploy/quickstart.sh      # stop by itself after 15 s
set -euo pipefail
cd "$(dirname "$0")/.."
source .ci/deps.sh

VEHICLES=${VEHICLES:-20}
SENSORS=${SENSORS:-5}
RATE=${RATE:-50}
DURATION=${DURATION:-0}
dir=var/quickstart
mkdir -p "$dir"

echo "quickstart: building (release)"
swift build -c release --product gatewayd >/dev/null
swift build -c release --product gwsim >/dev/null
swift build -c release --product gwctl >/dev/null
bin=$(swift build -c release --show-bin-path)

# A free loopback port: the first one nothing answers on.
port=18830
while (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do port=$((port + 1)); done

cat >"$dir/mosquitto.conf" <<CONF
listener $port 127.0.0.1
allow_anonymous true
persistence false
max_queued_messages 100000
log_dest stdout
CONF
cat >"$dir/gateway.json" <<CONF
{
  "gateway_id": "quickstart",
  "broker": {"host": "127.0.0.1", "port": $port},
  "store": {"path": "$dir/gateway.db", "capacity_readings": 1000000},
  "log": {"level": "info", "stats_interval_s": 10}
}
CONF

pids=()
cleanup() {
    trap - EXIT INT TERM
    echo
    echo "quickstart: stopping"
    for ((i = ${#pids[@]} - 1; i >= 0; i--)); do kill -TERM "${pids[$i]}" 2>/dev/null || true; wait "${pids[$i]}" 2>/dev/null || true; done
    if [ -f "$dir/gateway.db" ]; then "$bin/gwctl" stats --db "$dir/gateway.db" || true; fi
    echo "quickstart: logs and the store are in $dir/ (sqlite3 $dir/gateway.db 'SELECT * FROM readings_v LIMIT 10')"
}
trap cleanup EXIT
trap 'exit 0' INT TERM

mosquitto -c "$dir/mosquitto.conf" >"$dir/mosquitto.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.05; done

"$bin/gatewayd" --config "$dir/gateway.json" 2>"$dir/gatewayd.log" &
pids+=($!)
for _ in $(seq 100); do grep -q mqtt_connected "$dir/gatewayd.log" 2>/dev/null && break; sleep 0.05; done
grep -q mqtt_connected "$dir/gatewayd.log" || { cat "$dir/gatewayd.log"; echo "quickstart: gatewayd did not connect" >&2; exit 1; }

"$bin/gwsim" --port "$port" --vehicles "$VEHICLES" --sensors "$SENSORS" --rate "$RATE" --bad-every 200 --quiet \
    --duration "$DURATION" >"$dir/gwsim.log" 2>&1 &
pids+=($!)

echo "quickstart: broker 127.0.0.1:$port, $VEHICLES vehicles and $SENSORS water sensors at $RATE msg/s; Ctrl-C stops"
sleep 1
if [ "$DURATION" != "0" ]; then
    timeout "$DURATION" "$bin/gwctl" watch --db "$dir/gateway.db" || true
else
    "$bin/gwctl" watch --db "$dir/gateway.db"
fi
