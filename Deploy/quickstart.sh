#!/usr/bin/env bash
# Quick start on loopback: the whole path. A simulated fleet publishes to a local mosquitto;
# gatewayd stores, aggregates and raises alerts; it forwards them over mutual TLS to a second
# mosquitto standing in for the city's broker (TLS only, client certificate required), where a
# subscriber logs what arrives. Ctrl-C stops everything this script started.
#
#   VEHICLES=20 SENSORS=5 RATE=50 bash Deploy/quickstart.sh
#   DURATION=15 bash Deploy/quickstart.sh      # stop by itself after 15 s
set -euo pipefail
cd "$(dirname "$0")/.."
source .ci/deps.sh
source .ci/loopback.sh

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

port=$(free_port 18830)
upstream_port=$(free_port $((port + 1)))
http_port=$(free_port 18080)

# A viewer token for the REST API: the config keeps only its hash.
token_json=$("$bin/gwctl" token new --role viewer --name quickstart --json)
token=$(sed -n 's/.*"token":"\([^"]*\)".*/\1/p' <<<"$token_json")
token_hash=$(sed -n 's/.*"sha256":"\([^"]*\)".*/\1/p' <<<"$token_json")

# Throwaway CA, server and client certificates, and the upstream broker's TLS config.
bash Deploy/make-certs.sh "$dir/certs" "$upstream_port" quickstart >/dev/null
certs=$PWD/$dir/certs

cat >"$dir/mosquitto.conf" <<CONF
listener $port 127.0.0.1
allow_anonymous true
persistence false
max_queued_messages 100000
set_tcp_nodelay true
log_dest stdout
CONF
cat >"$dir/gateway.json" <<CONF
{
  "gateway_id": "quickstart",
  "broker": {"host": "127.0.0.1", "port": $port},
  "store": {"path": "$dir/gateway.db", "capacity_readings": 1000000},
  "aggregation": {"window_s": 10, "lateness_ms": 2000},
  "alerts": {"water": {"warning_cm": 70, "alarm_cm": 110, "dwell_s": 5, "stale_after_s": 60}},
  "upstream": {"host": "127.0.0.1", "port": $upstream_port, "topic_prefix": "city", "status_interval_s": 10,
               "tls": {"ca_file": "$certs/ca.crt", "cert_file": "$certs/client.crt", "key_file": "$certs/client.key"}},
  "sensors": $("$bin/gwsim" --sensors "$SENSORS" --print-sites),
  "http": {"listen": "127.0.0.1:$http_port",
           "tokens": [{"name": "quickstart", "role": "viewer", "sha256": "$token_hash"}]},
  "log": {"level": "info", "stats_interval_s": 10}
}
CONF
printf 'GWCTL_GATEWAY=http://127.0.0.1:%s\nGWCTL_TOKEN=%s\n' "$http_port" "$token" >"$dir/gwctl.env"

pids=()
cleanup() {
    trap - EXIT INT TERM
    echo
    echo "quickstart: stopping"
    for ((i = ${#pids[@]} - 1; i >= 0; i--)); do kill -TERM "${pids[$i]}" 2>/dev/null || true; wait "${pids[$i]}" 2>/dev/null || true; done
    if [ -f "$dir/gateway.db" ]; then "$bin/gwctl" stats --db "$dir/gateway.db" || true; fi
    echo "REST API: set -a; . $dir/gwctl.env; set +a; then gwctl health | devices | series DEVICE SIGNAL (while it runs)"
    if [ -s "$dir/advisories.log" ]; then
        echo "flooded-road advisories sent to vehicles: $(wc -l <"$dir/advisories.log"), e.g."
        head -n 2 "$dir/advisories.log" | cut -c1-200
    fi
    if [ -f "$dir/upstream.log" ]; then
        echo "upstream received (city broker, over mutual TLS):"
        awk '{split($1, t, "/"); n[t[3]]++} END {for (k in n) printf "  %-12s %d messages\n", k, n[k]}' "$dir/upstream.log"
        grep -m 2 '/alerts ' "$dir/upstream.log" | cut -c1-200 || true
    fi
    echo "quickstart: logs and the store are in $dir/ (sqlite3 $dir/gateway.db 'SELECT * FROM readings_v LIMIT 10')"
}
trap cleanup EXIT
trap 'exit 0' INT TERM

mosquitto -c "$dir/mosquitto.conf" >"$dir/mosquitto.log" 2>&1 &
pids+=($!)
mosquitto -c "$certs/upstream-mosquitto.conf" >"$dir/upstream-broker.log" 2>&1 &
pids+=($!)
wait_port "$port"
wait_port "$upstream_port"
# What the city's cloud receives, one line per message.
mosquitto_sub -h 127.0.0.1 -p "$upstream_port" --cafile "$certs/ca.crt" --cert "$certs/client.crt" \
    --key "$certs/client.key" -i quickstart-city -t 'city/#' -v >"$dir/upstream.log" 2>&1 &
pids+=($!)

MALLOC_ARENA_MAX=2 "$bin/gatewayd" --config "$dir/gateway.json" 2>"$dir/gatewayd.log" &
pids+=($!)
for _ in $(seq 100); do grep -q mqtt_connected "$dir/gatewayd.log" 2>/dev/null && break; sleep 0.05; done
grep -q mqtt_connected "$dir/gatewayd.log" || { cat "$dir/gatewayd.log"; echo "quickstart: gatewayd did not connect" >&2; exit 1; }

# What vehicles are told about flooded roads near them, one line per advisory.
mosquitto_sub -h 127.0.0.1 -p "$port" -i quickstart-advisories -t 'v1/advisory/#' -v >"$dir/advisories.log" 2>&1 &
pids+=($!)
"$bin/gwsim" --port "$port" --vehicles "$VEHICLES" --sensors "$SENSORS" --rate "$RATE" --bad-every 200 --gps-every 5 --flood-demo --quiet \
    --duration "$DURATION" >"$dir/gwsim.log" 2>&1 &
pids+=($!)

echo "quickstart: local broker 127.0.0.1:$port, upstream (mutual TLS) 127.0.0.1:$upstream_port;" \
    "$VEHICLES vehicles and $SENSORS water sensors at $RATE msg/s; Ctrl-C stops"
echo "quickstart: REST API http://127.0.0.1:$http_port (token in $dir/gwctl.env), e.g."
echo "  curl -H 'Authorization: Bearer $token' 'http://127.0.0.1:$http_port/v1/series?device=drain-000&signal=level_cm&from=now-10m&step=10s'"
# Every 10 s: what has arrived upstream, by topic.
(
    while sleep 10; do
        counts=$(awk '{split($1, t, "/"); n[t[3]]++} END {for (k in n) printf "%s=%d ", k, n[k]}' "$dir/upstream.log")
        echo "upstream received: ${counts:-nothing yet}; advisories to vehicles: $(wc -l <"$dir/advisories.log")"
    done
) &
pids+=($!)
sleep 3
GWCTL_GATEWAY=http://127.0.0.1:$http_port GWCTL_TOKEN=$token "$bin/gwctl" health || true
if [ "$DURATION" != "0" ]; then
    timeout "$DURATION" "$bin/gwctl" watch --db "$dir/gateway.db" --interval 2 || true
else
    "$bin/gwctl" watch --db "$dir/gateway.db" --interval 2
fi
