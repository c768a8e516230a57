#!/usr/bin/env bash
# Soak: a fixed rate for a long time, sampling gatewayd's RSS, open descriptors, the rate and the
# publish -> committed latency each minute, to show nothing grows without bound. Not run in CI.
#
#   make soak                                  # = bash Benchmarks/soak.sh: 30 min at 5 000 messages/s
#   RATE=8000 DURATION=600 bash Benchmarks/soak.sh
#
# The ring is small (CAPACITY) so it wraps many times: the store file must stop growing too.
# Meanwhile one more gauge sends an alarm or all-clear level every second, and each alert is
# timed to the upstream broker (mutual TLS; the windows go upstream too): alarm latency is
# reported for the seconds in which the previous minute's windows are written out (2-22 s past
# the minute: lateness, then the spread) and for the rest of the minute. ALARMS=0 leaves it out.
set -euo pipefail
cd "$(dirname "$0")/.."
source .ci/deps.sh
source .ci/loopback.sh

RATE=${RATE:-5000}
DURATION=${DURATION:-1800}
DEVICES=${DEVICES:-10000}
CAPACITY=${CAPACITY:-2000000}
ALARMS=${ALARMS:-1}
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
upstream=""
if [ "$ALARMS" = 1 ]; then
    chmod 755 "$dir"
    upstream_port=$(free_port 19970)
    bash Deploy/make-certs.sh "$dir/certs" "$upstream_port" soak >/dev/null
    mosquitto -c "$dir/certs/upstream-mosquitto.conf" >"$dir/upstream.log" 2>&1 &
    wait_port "$upstream_port"
    upstream=', "alerts": {"water": {"warning_cm": 100, "alarm_cm": 200, "dwell_s": 0}},
 "upstream": {"host": "127.0.0.1", "port": '$upstream_port',
              "tls": {"ca_file": "'$dir'/certs/ca.crt", "cert_file": "'$dir'/certs/client.crt", "key_file": "'$dir'/certs/client.key"}}'
fi
cat >"$dir/gateway.json" <<CONF
{"gateway_id": "soak", "broker": {"port": $port}, "http": {"listen": "127.0.0.1:$http"},
 "limits": {"device_rate_per_s": 1000000, "device_burst": 1000000},
 "store": {"path": "$dir/gateway.db", "capacity_readings": $CAPACITY},
 "log": {"level": "warning", "stats_interval_s": 0}$upstream}
CONF
MALLOC_ARENA_MAX=2 "$bin/gatewayd" --config "$dir/gateway.json" 2>"$dir/gatewayd.log" &
gw=$!
for _ in $(seq 200); do grep -q mqtt_connected "$dir/gatewayd.log" 2>/dev/null && break; sleep 0.05; done
sleep 0.5
alarms=""
if [ "$ALARMS" = 1 ]; then
    "$bin/gwbench" alert-latency --local-port "$port" --upstream-port "$upstream_port" --certs "$dir/certs" \
        --gateway-id soak --count "$DURATION" --interval-ms 1000 --samples-out "$dir/alarms.txt" --sensor soak-alarm-gauge \
        >"$dir/alarms.log" 2>&1 &
    alarms=$!
fi
{
    echo "# soak $(date -u +%Y-%m-%dT%H:%MZ): $RATE messages/s, $DEVICES devices, ${DURATION} s, ring $CAPACITY, $(nproc) cores"
    "$bin/gwbench" ingest --port "$port" --db "$dir/gateway.db" --gateway-pid "$gw" --devices "$DEVICES" \
        --rate "$RATE" --duration "$DURATION" --sample-every 60 --label soak --settle-s 30 --exclude-device soak-alarm-gauge
    echo "db_bytes_at_end=$(stat -c %s "$dir/gateway.db") wal_bytes=$(stat -c %s "$dir/gateway.db-wal" 2>/dev/null || echo 0)"
} | tee "$out/soak.txt"
if [ -n "$alarms" ]; then
    wait "$alarms" || true
    {
        echo "alarms: $(cat "$dir/alarms.log")"
        # p50/p99/max of alarm latency while windows are written (2-22 s past the minute) and otherwise.
        awk '{ s = ($1 % 60000) / 1000; if (s >= 2 && s < 22) c[++n] = $2; else o[++m] = $2 }
             function pct(a, k, p,   i, j, t) { for (i = 1; i <= k; i++) for (j = i + 1; j <= k; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
                                               return k ? a[int((k - 1) * p) + 1] : 0 }
             END { printf "alarm_latency_during_window_writes n=%d p50_ms=%.1f p99_ms=%.1f max_ms=%.1f\n", n, pct(c, n, 0.5), pct(c, n, 0.99), pct(c, n, 1)
                   printf "alarm_latency_rest_of_minute n=%d p50_ms=%.1f p99_ms=%.1f max_ms=%.1f\n", m, pct(o, m, 0.5), pct(o, m, 0.99), pct(o, m, 1) }' \
            "$dir/alarms.txt"
    } | tee -a "$out/soak.txt"
fi
