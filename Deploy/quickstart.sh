#!/usr/bin/env bash
# Quick start on loopback: the whole path. A simulated fleet publishes to a local mosquitto;
# gatewayd stores, aggregates and raises alerts; it forwards them over mutual TLS to a second
# mosquitto standing in for the city's broker (TLS only, client certificate required), where a
# subscriber logs what arrives. Ten more simulated vehicles take a signed firmware update over
# the air (a delta, in two waves). Ctrl-C stops everything this script started.
#
#   VEHICLES=20 SENSORS=5 RATE=50 OTA_VEHICLES=10 bash Deploy/quickstart.sh
#   DURATION=15 bash Deploy/quickstart.sh      # stop by itself after 15 s
set -euo pipefail
cd "$(dirname "$0")/.."
source .ci/deps.sh
source .ci/loopback.sh

VEHICLES=${VEHICLES:-20}
SENSORS=${SENSORS:-5}
RATE=${RATE:-50}
DURATION=${DURATION:-0}
OTA_VEHICLES=${OTA_VEHICLES:-10}
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
operator_json=$("$bin/gwctl" token new --role operator --name quickstart-ops --json)
operator_token=$(sed -n 's/.*"token":"\([^"]*\)".*/\1/p' <<<"$operator_json")
operator_hash=$(sed -n 's/.*"sha256":"\([^"]*\)".*/\1/p' <<<"$operator_json")

# An operator signing key (kept here for the demo; in the field it never leaves the operator's
# machine), and two builds of a firmware image for the OTA vehicles.
rm -f "$dir/operator.key" "$dir/operator.pub"
ota_key=$("$bin/gwctl" ota keygen --out "$dir/operator" --json | sed -n 's/.*"public_key":"\([^"]*\)".*/\1/p')
head -c 262144 /dev/urandom >"$dir/firmware-1.0.0.bin"
cp "$dir/firmware-1.0.0.bin" "$dir/firmware-1.1.0.bin"
printf 'release 1.1.0' | dd of="$dir/firmware-1.1.0.bin" bs=1 seek=4096 conv=notrunc 2>/dev/null
head -c 8192 /dev/urandom >>"$dir/firmware-1.1.0.bin"

# Throwaway CA, server and client certificates, and the upstream broker's TLS config.
bash Deploy/make-certs.sh "$dir/certs" "$upstream_port" quickstart >/dev/null
certs=$PWD/$dir/certs

# "user": stay the user who started it (see make-certs.sh), whatever the checkout's location.
cat >"$dir/mosquitto.conf" <<CONF
user $(id -un)
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
           "tokens": [{"name": "quickstart", "role": "viewer", "sha256": "$token_hash"},
                      {"name": "quickstart-ops", "role": "operator", "sha256": "$operator_hash"}]},
  "ota": {"trusted_keys": ["$ota_key"]},
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
    if [ -s "$dir/ota-push.log" ]; then
        echo "OTA: $(grep -m 1 'campaign' "$dir/ota-push.log" || true)"
        grep -E '^(campaign|states)' "$dir/ota-status.log" 2>/dev/null || true
    fi
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

if [ "$OTA_VEHICLES" -gt 0 ]; then
    rm -rf "$dir/ota-fleet"
    "$bin/gwsim" --port "$port" --ota-vehicles "$OTA_VEHICLES" --ota-dir "$dir/ota-fleet" --ota-trusted-key "$ota_key" \
        --ota-firmware "$dir/firmware-1.0.0.bin" --ota-hardware tgu-1 >"$dir/ota-fleet.log" 2>&1 &
    pids+=($!)
    # After the vehicles have reported their firmware: sign 1.1.0 with a delta from 1.0.0 and roll it
    # out in two waves (20 %, then the rest). The counter only goes up: the time serves.
    (
        sleep 4
        GWCTL_GATEWAY=http://127.0.0.1:$http_port GWCTL_TOKEN=$operator_token "$bin/gwctl" ota push \
            "$dir/firmware-1.1.0.bin" --version 1.1.0 --counter "$(date +%s)" --hw tgu-1 --key "$dir/operator.key" \
            --from "$dir/firmware-1.0.0.bin" --all --waves 20,100 >"$dir/ota-push.log" 2>&1 &&
            sleep 5 &&
            GWCTL_GATEWAY=http://127.0.0.1:$http_port GWCTL_TOKEN=$operator_token "$bin/gwctl" ota status \
                "$(sed -n 's/^campaign \([0-9]*\) created.*/\1/p' "$dir/ota-push.log")" >"$dir/ota-status.log" 2>&1
        echo "quickstart: OTA $(grep -m 1 '^campaign' "$dir/ota-status.log" 2>/dev/null || echo 'push failed, see '$dir/ota-push.log)"
    ) &
    pids+=($!)
fi

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
