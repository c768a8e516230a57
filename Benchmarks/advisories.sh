#!/usr/bin/env bash
# Flooded-road advisories: latency from the alarm-level reading to the advisory at the vehicle,
# the advisory engine's CPU per 1 000 position updates (10 000 vehicles, 1 000 flooding gauges),
# and gatewayd's whole cost per 1 000 GPS messages end to end.
#
#   bash Benchmarks/advisories.sh                  # COUNT=200 alarm/clear cycles, 200 000 GPS messages
set -euo pipefail
cd "$(dirname "$0")/.."
source .ci/deps.sh
source .ci/loopback.sh

COUNT=${COUNT:-200}
GPS_MESSAGES=${GPS_MESSAGES:-200000}

swift build -c release >/dev/null
bin=$(swift build -c release --show-bin-path)
dir=$(mktemp -d /tmp/gw-adv-bench.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$dir"' EXIT

echo "advisory engine alone:"
"$bin/gwbench" advisory-cpu --vehicles 10000 --gauges 1000 --updates 1000000

port=$(free_port 19730)
printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\nmax_queued_messages 1000000\nset_tcp_nodelay true\n' "$port" \
    >"$dir/mosquitto.conf"
cat >"$dir/gateway.json" <<CONF
{"gateway_id": "bench", "broker": {"port": $port},
 "http": {"listen": "127.0.0.1:$(free_port 19780)"},
 "limits": {"device_rate_per_s": 1000000, "device_burst": 1000000},
 "store": {"path": "$dir/gateway.db", "max_devices": 20000},
 "alerts": {"water": {"warning_cm": 100, "alarm_cm": 200, "dwell_s": 0}},
 "sensors": $("$bin/gwsim" --sensors 999 --print-sites | sed 's/^{/{"bench-gauge": {"lat": 3.139, "lon": 101.6869, "radius_m": 500}, /'),
 "log": {"level": "warning", "stats_interval_s": 0}}
CONF
mosquitto -c "$dir/mosquitto.conf" >"$dir/mosquitto.log" 2>&1 &
wait_port "$port"
MALLOC_ARENA_MAX=2 "$bin/gatewayd" --config "$dir/gateway.json" 2>"$dir/gatewayd.log" &
gw=$!
for _ in $(seq 100); do grep -q mqtt_connected "$dir/gatewayd.log" 2>/dev/null && break; sleep 0.05; done

echo "alarm reading -> advisory at the vehicle (local broker, dwell 0):"
"$bin/gwbench" advisory-latency --port "$port" --count "$COUNT"

echo "gatewayd per GPS message, end to end (10 000 vehicles, 1 000 gauge sites):"
clk=$(getconf CLK_TCK)
read -r u0 s0 < <(awk '{print $14, $15}' /proc/$gw/stat)
written() { sqlite3 "$dir/gateway.db" "SELECT next_seqno FROM rings WHERE name = 'readings'" 2>/dev/null || echo 0; }
before=$(written)
"$bin/gwsim" --port "$port" --vehicles 10000 --sensors 0 --rate 0 --messages "$GPS_MESSAGES" --gps-every 1 \
    --connections 4 --window 1000 --quiet --client-prefix advsim >"$dir/gwsim.out"
expected=$((before + $(sed -n 's/.*readings=\([0-9]*\).*/\1/p' "$dir/gwsim.out")))
deadline=$(($(date +%s) + 120))
while [ "$(written)" -lt "$expected" ] && [ "$(date +%s)" -lt "$deadline" ]; do sleep 0.05; done
read -r u1 s1 < <(awk '{print $14, $15}' /proc/$gw/stat)
hwm=$(awk '/VmHWM/ {print $2}' /proc/$gw/status)
awk -v u0="$u0" -v s0="$s0" -v u1="$u1" -v s1="$s1" -v c="$clk" -v m="$GPS_MESSAGES" -v h="$hwm" 'BEGIN {
  cpu = (u1 + s1 - u0 - s0) / c
  printf "gps_messages=%d gatewayd_cpu_s=%.2f cpu_ms_per_1000_gps_messages=%.1f gatewayd_peak_rss_mb=%.1f\n", m, cpu, cpu / m * 1e6, h / 1024
}'
