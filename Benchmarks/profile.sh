#!/usr/bin/env bash
# Instruction counts of gatewayd's ingest path under callgrind: repeatable on a noisy machine
# (it counts instructions, not seconds). Counters are zeroed once gatewayd is connected, so
# start-up is not counted; then MESSAGES messages from DEVICES devices, QoS 1, are ingested and
# the counts dumped. Prints instructions per reading and the costliest functions (inclusive).
#
#   bash Benchmarks/profile.sh                 # 20 000 messages, 1 000 devices
#   callgrind_annotate --inclusive=yes /tmp/gw-profile/callgrind.out.* | head -60
set -euo pipefail
cd "$(dirname "$0")/.."
source .ci/deps.sh
source .ci/loopback.sh
command -v valgrind >/dev/null || { apt-get update -qq && apt-get install -y -qq valgrind >/dev/null; }

MESSAGES=${MESSAGES:-20000}
DEVICES=${DEVICES:-1000}
# Hour-long windows do not close during the run (under callgrind it lasts minutes), so the count
# is per reading and repeatable rather than depending on how many minutes went by.
WINDOW_S=${WINDOW_S:-3600}
# A ring smaller than the run, so most readings overwrite a slot: a gateway's steady state.
CAPACITY=${CAPACITY:-50000}
dir=${PROFILE_DIR:-/tmp/gw-profile}
rm -rf "$dir"
mkdir -p "$dir"

swift build -c release >/dev/null
bin=$(swift build -c release --show-bin-path)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true' EXIT

port=$(free_port 19990)
printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\nmax_queued_messages 1000000\n' "$port" >"$dir/mosquitto.conf"
mosquitto -c "$dir/mosquitto.conf" >"$dir/mosquitto.log" 2>&1 &
wait_port "$port"
cat >"$dir/gateway.json" <<CONF
{"gateway_id": "profile", "broker": {"port": $port}, "http": {"enabled": false}, "ota": {"enabled": false},
 "limits": {"device_rate_per_s": 1000000, "device_burst": 1000000},
 "store": {"path": "$dir/gateway.db", "capacity_readings": $CAPACITY}, "aggregation": {"window_s": $WINDOW_S},
 "log": {"level": "warning", "stats_interval_s": 0}}
CONF
valgrind --tool=callgrind --callgrind-out-file="$dir/callgrind.out" "$bin/gatewayd" --config "$dir/gateway.json" \
    2>"$dir/gatewayd.log" &
gw=$!
for _ in $(seq 600); do grep -q mqtt_connected "$dir/gatewayd.log" 2>/dev/null && break; sleep 0.1; done
sleep 1
callgrind_control -z "$gw" >/dev/null
"$bin/gwbench" ingest --port "$port" --db "$dir/gateway.db" --devices "$DEVICES" --messages "$MESSAGES" \
    --connections 2 --window 200 --label profile --settle-s 300 | tr ' ' '\n' | grep -E '^(messages|readings_counted|readings_lost)='
callgrind_control -d "$gw" >/dev/null
sleep 1
kill -TERM "$gw"
wait "$gw" || true
dump=$(ls -t "$dir"/callgrind.out.* 2>/dev/null | head -1)
readings=$(sqlite3 "$dir/gateway.db" "SELECT next_seqno FROM rings WHERE name = 'readings'")
total=$(callgrind_annotate "$dump" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}')
awk -v t="$total" -v r="$readings" -v m="$MESSAGES" 'BEGIN {
  printf "instructions=%.0f readings=%d instructions_per_reading=%.0f instructions_per_message=%.0f\n", t, r, t / r, t / m }'
echo "top functions (exclusive):"
callgrind_annotate --threshold=100 --inclusive=yes "$dump" 2>/dev/null | sed -n "/file:function/,\$p" | grep -E "Sources/" | sed -E "s/ \[\/.*//" | head -25 | cut -c1-200
