#!/usr/bin/env bash
# Upstream benchmarks: alert latency (local publish → alert at the TLS upstream broker) and
# the drain rate of a 1,000,000-row aggregate backlog once the upstream link returns.
#
#   bash Benchmarks/upstream.sh                 # 1 000 alerts, 1 000 000 rows
#   ALERTS=200 ROWS=100000 bash Benchmarks/upstream.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source .ci/deps.sh
source .ci/loopback.sh

ALERTS=${ALERTS:-1000}
ROWS=${ROWS:-1000000}
RATE=${RATE:-200}

swift build -c release >/dev/null
bin=$(swift build -c release --show-bin-path)
dir=$(mktemp -d /tmp/gw-upstream-bench.XXXXXX)
chmod 755 "$dir"
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$dir"' EXIT

port=$(free_port 20830)
upstream_port=$(free_port $((port + 1)))
bash Deploy/make-certs.sh "$dir/certs" "$upstream_port" bench >/dev/null
printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\n' "$port" >"$dir/local.conf"
cat >"$dir/gateway.json" <<CONF
{"gateway_id": "bench", "broker": {"port": $port}, "http": {"listen": "127.0.0.1:$(free_port 18480)"},
 "limits": {"device_rate_per_s": 1000000, "device_burst": 1000000},
 "store": {"path": "$dir/gateway.db", "synchronous": "full"},
 "alerts": {"water": {"warning_cm": 100, "alarm_cm": 200, "dwell_s": 0}},
 "upstream": {"host": "127.0.0.1", "port": $upstream_port, "max_rate_msgs_per_s": $RATE,
              "tls": {"ca_file": "$dir/certs/ca.crt", "cert_file": "$dir/certs/client.crt", "key_file": "$dir/certs/client.key"}},
 "log": {"level": "warning", "stats_interval_s": 0}}
CONF

mosquitto -c "$dir/local.conf" >"$dir/local.log" 2>&1 &
mosquitto -c "$dir/certs/upstream-mosquitto.conf" >"$dir/upstream.log" 2>&1 &
upstream=$!
wait_port "$port"
wait_port "$upstream_port"
"$bin/gatewayd" --config "$dir/gateway.json" 2>"$dir/gatewayd.log" &
gw=$!
sleep 1

echo "== alert latency: $ALERTS alarm and all-clear readings, one at a time"
"$bin/gwbench" alert-latency --local-port "$port" --upstream-port "$upstream_port" --certs "$dir/certs" \
    --gateway-id bench --count "$ALERTS"

echo "== drain: $ROWS aggregate rows queued while the upstream broker is down, max_rate_msgs_per_s=$RATE"
kill -TERM "$upstream"; wait "$upstream" 2>/dev/null || true
kill -TERM "$gw"; wait "$gw" 2>/dev/null || true
"$bin/gwbench" fill-outbox --db "$dir/gateway.db" --rows "$ROWS" --gateway-id bench
echo "backlog: $(sqlite3 "$dir/gateway.db" "SELECT count(*) FROM outbox") messages," \
    "$(sqlite3 "$dir/gateway.db" "SELECT sum(length(payload)) / 1048576 FROM outbox") MiB"
"$bin/gatewayd" --config "$dir/gateway.json" 2>>"$dir/gatewayd.log" &
gw=$!
sleep 1
mosquitto -c "$dir/certs/upstream-mosquitto.conf" >>"$dir/upstream.log" 2>&1 &
start=$(date +%s.%N)
while [ "$(sqlite3 "$dir/gateway.db" 'SELECT count(*) FROM outbox' 2>/dev/null || echo 1)" -gt 0 ]; do
    sleep 0.1
    if awk -v s="$start" -v n="$(date +%s.%N)" 'BEGIN { exit !(n - s > 600) }'; then echo "drain: not done after 600 s"; break; fi
done
end=$(date +%s.%N)
awk -v s="$start" -v e="$end" -v r="$ROWS" 'BEGIN { t = e - s; printf "drained rows=%d seconds=%.2f rows_per_s=%d\n", r, t, r / t }'
echo "gatewayd peak RSS: $(awk '/VmHWM/ {print $2 / 1024 " MB"}' /proc/$gw/status)"
