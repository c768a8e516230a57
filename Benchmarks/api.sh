#!/usr/bin/env bash
# REST API under load while ingest continues: wrk with 64 connections against a gateway that
# holds 10 000 devices and 24 hours of 1-second readings for one gauge.
#
#   bash Benchmarks/api.sh                     # 20 s per endpoint
#   DURATION=60 INGEST_RATE=5000 bash Benchmarks/api.sh
#
# Per endpoint: requests/s and p50/p99 latency (wrk --latency), non-2xx count; gatewayd's RSS
# sampled during the runs (max) and its peak (VmHWM); readings ingested meanwhile.
set -euo pipefail
cd "$(dirname "$0")/.."
source .ci/deps.sh
source .ci/loopback.sh
if ! command -v wrk >/dev/null 2>&1; then
    [ "$(id -u)" -eq 0 ] || { echo "api.sh: needs wrk: sudo apt-get install -y wrk" >&2; exit 1; }
    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q wrk
fi

DURATION=${DURATION:-20}
CONNECTIONS=${CONNECTIONS:-64}
DEVICES=${DEVICES:-10000}
INGEST_RATE=${INGEST_RATE:-500}
CAPACITY=${CAPACITY:-4000000}

swift build -c release >/dev/null
bin=$(swift build -c release --show-bin-path)
dir=$(mktemp -d /tmp/gw-api-bench.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$dir"' EXIT

echo "api.sh: seeding $DEVICES devices and 24 h of 1 s readings"
"$bin/gwbench" seed-api --db "$dir/gateway.db" --devices "$DEVICES" --hours 24 --capacity "$CAPACITY"

port=$(free_port 19930)
http_port=$(free_port 19980)
printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\nmax_queued_messages 1000000\n' "$port" \
    >"$dir/mosquitto.conf"
token_json=$("$bin/gwctl" token new --role viewer --name bench --json)
token=$(sed -n 's/.*"token":"\([^"]*\)".*/\1/p' <<<"$token_json")
hash=$(sed -n 's/.*"sha256":"\([^"]*\)".*/\1/p' <<<"$token_json")
cat >"$dir/gateway.json" <<CONF
{"gateway_id": "bench", "broker": {"port": $port},
 "limits": {"device_rate_per_s": 1000000, "device_burst": 1000000},
 "store": {"path": "$dir/gateway.db", "max_devices": $((DEVICES + 10000)), "capacity_readings": $CAPACITY},
 "http": {"listen": "127.0.0.1:$http_port", "tokens": [{"name": "bench", "role": "viewer", "sha256": "$hash"}]},
 "log": {"level": "warning", "stats_interval_s": 0}}
CONF
mosquitto -c "$dir/mosquitto.conf" >"$dir/mosquitto.log" 2>&1 &
wait_port "$port"
MALLOC_ARENA_MAX=${MALLOC_ARENA_MAX:-2} "$bin/gatewayd" --config "$dir/gateway.json" 2>"$dir/gatewayd.log" &
gw=$!
wait_port "$http_port"

# Ingest continues for the whole run.
"$bin/gwsim" --port "$port" --vehicles 200 --sensors 50 --rate "$INGEST_RATE" --quiet --client-prefix benchsim \
    >"$dir/gwsim.out" 2>&1 &
sleep 2
written() { sqlite3 "$dir/gateway.db" "SELECT next_seqno FROM rings WHERE name = 'readings'" 2>/dev/null || echo 0; }
before=$(written)

# RSS sampler.
(
    max=0
    while kill -0 $gw 2>/dev/null; do
        rss=$(awk '/VmRSS/ {print $2}' /proc/$gw/status 2>/dev/null || echo 0)
        [ "${rss:-0}" -gt "$max" ] && max=$rss && echo "$max" >"$dir/rss.max"
        sleep 0.5
    done
) &

base="http://127.0.0.1:$http_port"
# name|path|extra header. "no-cache" bypasses the 1 s series cache: every request computes.
endpoints=(
    "series_24h_step60|/v1/series?device=bench-gauge&signal=level_cm&from=now-24h&step=60s"
    "series_24h_step60_nocache|/v1/series?device=bench-gauge&signal=level_cm&from=now-24h&step=60s|Cache-Control: no-cache"
    "devices_page100|/v1/devices?limit=100"
    "device_one|/v1/devices/bench-gauge"
    "health|/v1/health"
    "series_1h_raw_step10|/v1/series?device=bench-gauge&signal=level_cm&from=now-1h&step=10s"
)
started=$(date +%s.%N)
for entry in "${endpoints[@]}"; do
    IFS='|' read -r name path header <<<"$entry"
    wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" --latency -H "Authorization: Bearer $token" -H "${header:-X-Bench: 1}" \
        "$base$path" >"$dir/$name.wrk"
    rps=$(awk '/Requests\/sec/ {print $2}' "$dir/$name.wrk")
    p50=$(awk '$1 == "50%" {print $2}' "$dir/$name.wrk")
    p99=$(awk '$1 == "99%" {print $2}' "$dir/$name.wrk")
    errors=$(awk '/Non-2xx/ {print $5}' "$dir/$name.wrk")
    bytes=$(curl -s -H "Authorization: Bearer $token" "$base$path" | wc -c)
    printf "%-26s requests_per_s=%-9s p50=%-8s p99=%-8s non_2xx=%s body_bytes=%s\n" "$name" "$rps" "$p50" "$p99" "${errors:-0}" "$bytes"
done
ended=$(date +%s.%N)
after=$(written)
hwm=$(awk '/VmHWM/ {print $2}' /proc/$gw/status)
awk -v b="$before" -v a="$after" -v s="$started" -v e="$ended" -v r="$(cat "$dir/rss.max" 2>/dev/null || echo 0)" -v h="$hwm" '
BEGIN { printf "ingest_during_load readings=%d readings_per_s=%d gatewayd_rss_max_mb=%.1f gatewayd_peak_rss_mb=%.1f\n", a - b, (a - b) / (e - s), r / 1024, h / 1024 }'
grep -c "level=error" "$dir/gatewayd.log" | sed 's/^/gatewayd_error_lines=/'
