#!/usr/bin/env bash
# End-to-end ingest benchmark: gwsim → mosquitto → gatewayd → SQLite, counted in the file.
#
#   bash Benchmarks/ingest.sh                         # 1 000 devices, 200 000 messages, QoS 1
#   VEHICLES=8000 SENSORS=2000 MESSAGES=300000 bash Benchmarks/ingest.sh
#   UPSTREAM=1 GPS_EVERY=3 PRIVACY=on RATE=20000 MESSAGES=1600000 bash Benchmarks/ingest.sh
#
# UPSTREAM=1 adds a TLS city broker and the upstream link (aggregates and events queued and sent);
# GPS_EVERY=K makes every K-th vehicle message a GPS fix; PRIVACY=on (the default settings:
# pseudonyms upstream, positions kept 60 s here so that sweeps run during the run) or off (plain
# VINs upstream, positions kept a year). RATE caps the publish rate (messages/s, 0 = as fast as
# the broker acknowledges).
#
# Reports readings/s from the first publish until the last reading is committed (polled in
# the SQLite file), gatewayd's peak RSS (VmHWM) and CPU seconds, and the file size.
set -euo pipefail
cd "$(dirname "$0")/.."
source .ci/deps.sh
source .ci/loopback.sh

VEHICLES=${VEHICLES:-800}
SENSORS=${SENSORS:-200}
MESSAGES=${MESSAGES:-200000}
QOS=${QOS:-1}
CONNECTIONS=${CONNECTIONS:-4}
CAPACITY=${CAPACITY:-1000000}
FLUSH_MS=${FLUSH_MS:-50}
SYNCHRONOUS=${SYNCHRONOUS:-full}
RATE=${RATE:-0}
UPSTREAM=${UPSTREAM:-0}
GPS_EVERY=${GPS_EVERY:-0}
PRIVACY=${PRIVACY:-on}

swift build -c release >/dev/null
bin=$(swift build -c release --show-bin-path)
dir=$(mktemp -d /tmp/gw-bench.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$dir"' EXIT

port=$(free_port 19830)
case "$PRIVACY" in
on) privacy='"privacy": {"upstream_vin": "pseudonym", "position_retention_s": 60},' ;;
off) privacy='"privacy": {"upstream_vin": "plain", "position_retention_s": 31536000},' ;;
*) echo "PRIVACY must be on or off" >&2; exit 64 ;;
esac
upstream=""
if [ "$UPSTREAM" = 1 ]; then
    upstream_port=$(free_port $((port + 1)))
    chmod 755 "$dir"
    bash Deploy/make-certs.sh "$dir/certs" "$upstream_port" bench >/dev/null
    mosquitto -c "$dir/certs/upstream-mosquitto.conf" >"$dir/upstream.log" 2>&1 &
    wait_port "$upstream_port"
    upstream='"upstream": {"host": "127.0.0.1", "port": '$upstream_port', "max_rate_msgs_per_s": 1000,
 "tls": {"ca_file": "'$dir'/certs/ca.crt", "cert_file": "'$dir'/certs/client.crt", "key_file": "'$dir'/certs/client.key"}},'
fi
cat >"$dir/mosquitto.conf" <<CONF
listener $port 127.0.0.1
allow_anonymous true
persistence false
max_queued_messages 1000000
max_inflight_messages 1000
CONF
cat >"$dir/gateway.json" <<CONF
{"gateway_id": "bench", "broker": {"port": $port}, "http": {"listen": "127.0.0.1:$(free_port 18480)"},
 "limits": {"device_rate_per_s": 1000000, "device_burst": 1000000}, $privacy $upstream
 "store": {"path": "$dir/gateway.db", "capacity_readings": $CAPACITY, "flush_interval_ms": $FLUSH_MS,
           "synchronous": "$SYNCHRONOUS"},
 "log": {"level": "warning", "stats_interval_s": 0}}
CONF
mosquitto -c "$dir/mosquitto.conf" >"$dir/mosquitto.log" 2>&1 &
wait_port "$port"
"$bin/gatewayd" --config "$dir/gateway.json" 2>"$dir/gatewayd.log" &
gw=$!
for _ in $(seq 100); do [ -f "$dir/gateway.db" ] && break; sleep 0.05; done
sleep 0.5

written() { sqlite3 "$dir/gateway.db" "SELECT next_seqno FROM rings WHERE name = 'readings'" 2>/dev/null || echo 0; }
clk=$(getconf CLK_TCK)
start=$(date +%s.%N)
"$bin/gwsim" --port "$port" --vehicles "$VEHICLES" --sensors "$SENSORS" --rate "$RATE" --messages "$MESSAGES" \
    --qos "$QOS" --connections "$CONNECTIONS" --window 1000 --gps-every "$GPS_EVERY" --quiet >"$dir/gwsim.out"
published=$(date +%s.%N)
expected=$(sed -n 's/.*readings=\([0-9]*\).*/\1/p' "$dir/gwsim.out")
deadline=$(($(date +%s) + 300))
while [ "$(written)" -lt "$expected" ] && [ "$(date +%s)" -lt "$deadline" ]; do sleep 0.05; done
done_at=$(date +%s.%N)
got=$(written)
hwm=$(awk '/VmHWM/ {print $2}' /proc/$gw/status)
positions_erased=$(sqlite3 "$dir/gateway.db" "SELECT value FROM meta WHERE key = 'positions_erased_through'" 2>/dev/null || true)
read -r utime stime < <(awk '{print $14, $15}' /proc/$gw/stat)
kill -TERM $gw; wait $gw || true
size=$(stat -c %s "$dir/gateway.db")
awk -v s="$start" -v p="$published" -v d="$done_at" -v r="$got" -v e="$expected" -v m="$MESSAGES" \
    -v h="$hwm" -v u="$utime" -v st="$stime" -v c="$clk" -v z="$size" -v dev="$((VEHICLES + SENSORS))" -v q="$QOS" '
BEGIN {
  t = d - s; cpu = (u + st) / c
  printf "devices=%d messages=%d qos=%d readings_expected=%d readings_committed=%d lost=%d\n", dev, m, q, e, r, e - r
  printf "publish_s=%.2f end_to_end_s=%.2f readings_per_s=%d messages_per_s=%d\n", p - s, t, r / t, m / t
  printf "gatewayd_peak_rss_mb=%.1f gatewayd_cpu_s=%.2f cpu_s_per_million_readings=%.2f db_mb=%.1f\n", h / 1024, cpu, cpu / (r / 1e6), z / 1048576
}'
cat "$dir/gwsim.out"
echo "privacy=$PRIVACY upstream=$UPSTREAM gps_every=$GPS_EVERY positions_erased_through_row=${positions_erased:-0}"
[ "$UPSTREAM" = 1 ] && echo "outbox_left=$(sqlite3 "$dir/gateway.db" 'SELECT count(*) FROM outbox')" || true
