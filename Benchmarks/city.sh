#!/usr/bin/env bash
# City side: N gatewayd processes (release build), each with its own loopback mosquitto and a
# gwsim fleet, forwarding over mutual TLS into the three-node RabbitMQ cluster of Deploy/city,
# and the reference consumer (two processes) applying the upstream contract.
#
#   bash Benchmarks/city.sh                                  # 20 gateways x 100 devices, 120 s
#   GATEWAYS=10 DEVICES=50 SECONDS_RUN=60 bash Benchmarks/city.sh
#
# Measured over the run: messages and bytes the consumers applied (per gateway and in all), the
# consumer lag (a window's end -> applied at the consumer; p50, p99, max) and the queue depth,
# the cluster's CPU seconds and resident memory (sum of the three nodes: idle, with every gateway
# connected but no traffic, and at the end; CPU per gateway net of idle), and
# from those, on paper, what 1,000 gateways with 100 devices each need at the city side.
# The consumer lag is from the moment a window closes (its end + lateness, 2 s) to the moment
# its batch is committed at the consumer. Windows are WINDOW_S (10 s) long, six times the upstream volume of the default 60 s, so that a
# short run carries enough of it; the paper figures are scaled back to 60 s windows.
# Result: Benchmarks/results/city.json.
set -euo pipefail
cd "$(dirname "$0")/.."
EXTRA_PACKAGES="rabbitmq-server python3-pika" source .ci/deps.sh
source .ci/loopback.sh

GATEWAYS=${GATEWAYS:-20}
DEVICES=${DEVICES:-100}
SECONDS_RUN=${SECONDS_RUN:-120}
WINDOW_S=${WINDOW_S:-10}
RATE=${RATE:-$DEVICES} # messages/s per gateway: one per device per second
out=${OUT:-Benchmarks/results}
mkdir -p "$out"

swift build -c release >/dev/null
bin=$(swift build -c release --show-bin-path)
dir=$(mktemp -d /tmp/gw-city.XXXXXX)
cleanup() {
    kill $(jobs -p) 2>/dev/null || true
    bash Deploy/city/cluster.sh down "$dir/city" >/dev/null 2>&1 || true
    wait 2>/dev/null || true
    rm -rf "$dir"
}
trap cleanup EXIT

ids=()
for i in $(seq 1 "$GATEWAYS"); do ids+=("$(printf 'bench-%03d' "$i")"); done
bash Deploy/city/cluster.sh up "$dir/city" "${ids[@]}" >/dev/null
source "$dir/city/cluster.env"
certs=$(cd "$dir/city/certs" && pwd)
nodes=("127.0.0.1:$NODE1_MQTT" "127.0.0.1:$NODE2_MQTT" "127.0.0.1:$NODE3_MQTT")
amqp="127.0.0.1:$NODE1_AMQP,127.0.0.1:$NODE2_AMQP,127.0.0.1:$NODE3_AMQP"
for c in 1 2; do
    /usr/bin/python3 Deploy/city/city-consumer.py --db "$dir/city.db" --ca "$certs/ca.crt" \
        --cert "$certs/city-platform.crt" --key "$certs/city-platform.key" --nodes "$amqp" --stats-s 10 \
        >"$dir/consumer-$c.log" 2>&1 &
done

beam_cpu() { # CPU time (user + system, in clock ticks) of the three nodes
    local total=0
    for n in 1 2 3; do
        local pid
        pid=$(cat "$dir/city/node$n/pid")
        total=$((total + $(awk '{print $14 + $15}' "/proc/$pid/stat")))
    done
    echo "$total"
}
beam_rss_kb() {
    local total=0
    for n in 1 2 3; do
        total=$((total + $(awk '/VmRSS/ {print $2}' "/proc/$(cat "$dir/city/node$n/pid")/status")))
    done
    echo "$total"
}
applied() { sqlite3 "$dir/city.db" "SELECT coalesce(sum(count), 0), coalesce(sum(bytes), 0) FROM outcomes" 2>/dev/null || echo "0|0"; }

# The cluster idle (consumers connected, no gateway yet): subtracted from the loaded figures, so
# that "per gateway" is what each gateway adds.
ticks=$(getconf CLK_TCK)
idle_cpu0=$(beam_cpu)
idle_t0=$(date +%s%N)
sleep 10
idle_cpu1=$(beam_cpu)
idle_t1=$(date +%s%N)
idle_rss=$(beam_rss_kb)

vehicles=$((DEVICES * 9 / 10))
sensors=$((DEVICES - vehicles))
port=19000
for i in "${!ids[@]}"; do
    id=${ids[$i]}
    run="$dir/$id"
    mkdir -p "$run"
    port=$(free_port $((port + 1)))
    printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\nmax_queued_messages 100000\n' "$port" >"$run/mosquitto.conf"
    mosquitto -c "$run/mosquitto.conf" >"$run/mosquitto.log" 2>&1 &
    wait_port "$port"
    first=$((i % 3))
    hosts="\"${nodes[$first]}\", \"${nodes[$(((first + 1) % 3))]}\", \"${nodes[$(((first + 2) % 3))]}\""
    cat >"$run/gateway.json" <<CONF
{"gateway_id": "$id", "broker": {"port": $port}, "http": {"enabled": false}, "ota": {"enabled": false},
 "store": {"path": "$run/gateway.db", "capacity_readings": 1000000},
 "aggregation": {"window_s": $WINDOW_S, "lateness_ms": 2000},
 "upstream": {"hosts": [$hosts], "status_interval_s": 60,
   "tls": {"ca_file": "$certs/ca.crt", "cert_file": "$certs/$id.crt", "key_file": "$certs/$id.key"}},
 "log": {"level": "warning"}}
CONF
    echo "$port" >"$run/port"
    "$bin/gatewayd" --config "$run/gateway.json" >"$run/gatewayd.log" 2>&1 &
done
# Waits (up to 2 minutes) until the consumers' count SQL reaches the number of gateways.
wait_for_every_gateway() {
    for _ in $(seq 1 120); do
        [[ $(sqlite3 "$dir/city.db" "$1" 2>/dev/null || echo 0) -ge $GATEWAYS ]] && return 0
        sleep 1
    done
}
# Every gateway connected (its first status at the consumers), no traffic yet: what the
# connections themselves cost the cluster.
wait_for_every_gateway "SELECT count(*) FROM status WHERE state = 'online'"
connected_rss=$(beam_rss_kb)
for i in "${!ids[@]}"; do
    run="$dir/${ids[$i]}"
    "$bin/gwsim" --port "$(cat "$run/port")" --vehicles "$vehicles" --sensors "$sensors" --rate "$RATE" \
        --seed "$((i + 1))" --client-prefix "sim-${ids[$i]}" --quiet >"$run/gwsim.log" 2>&1 &
done

# Warm-up: every gateway has delivered something; then the measured period.
wait_for_every_gateway "SELECT count(DISTINCT gateway) FROM batches"
cpu0=$(beam_cpu)
IFS='|' read -r count0 bytes0 < <(applied)
t0=$(date +%s%N)
depth_max=0
end=$((SECONDS + SECONDS_RUN))
while [[ $SECONDS -lt $end ]]; do
    depth=$(HOME=$dir/city /usr/lib/rabbitmq/bin/rabbitmqctl -q -n "city1-$TAG@localhost" list_queues name messages 2>/dev/null |
        awk '$1 == "city-platform" {print $2}')
    [[ -n $depth && $depth -gt $depth_max ]] && depth_max=$depth
    sleep 5
done
t1=$(date +%s%N)
cpu1=$(beam_cpu)
rss=$(beam_rss_kb)
IFS='|' read -r count1 bytes1 < <(applied)

python3 - "$dir/city.db" "$out/city.json" <<PY
import json, sqlite3, sys
db = sqlite3.connect(sys.argv[1], timeout=30)
lags = sorted(r[0] for r in db.execute(
    "SELECT b.received_ms - (a.start_ms + a.window_s * 1000 + 2000) FROM aggregates a JOIN batches b ON b.batch_id = a.batch_id"
    " WHERE a.window_s = $WINDOW_S"))
def pct(p): return lags[min(len(lags) - 1, int(p * len(lags)))] if lags else None
seconds = ($t1 - $t0) / 1e9
messages = ($count1 - $count0) / seconds
bytes_s = ($bytes1 - $bytes0) / seconds
items = db.execute("SELECT count(*) FROM aggregates").fetchone()[0]
cpu = ($cpu1 - $cpu0) / $ticks
idle_cpu_s = ($idle_cpu1 - $idle_cpu0) / $ticks / (($idle_t1 - $idle_t0) / 1e9)
gateways, devices = $GATEWAYS, $DEVICES
# Scaled to 1,000 gateways x 100 devices at the default 60 s windows.
scale = (1000 / gateways) * (100 / devices) * ($WINDOW_S / 60)
result = {
    "label": "city", "date": "$(date -u +%Y-%m-%dT%H:%MZ)", "cpus": $(nproc), "gateways": gateways,
    "devices_per_gateway": devices, "messages_per_s_per_gateway": $RATE, "window_s": $WINDOW_S,
    "seconds": round(seconds, 1),
    "consumer_messages_per_s": round(messages, 1), "consumer_bytes_per_s": round(bytes_s),
    "per_gateway_messages_per_s": round(messages / gateways, 3), "per_gateway_bytes_per_s": round(bytes_s / gateways),
    "lag_ms_p50": pct(0.5), "lag_ms_p99": pct(0.99), "lag_ms_max": lags[-1] if lags else None,
    "queue_depth_max": $depth_max,
    "cluster_idle_cpu_s_per_s": round(idle_cpu_s, 3), "cluster_cpu_s_per_s": round(cpu / seconds, 3),
    "cluster_cpu_ms_per_s_per_gateway": round((cpu / seconds - idle_cpu_s) / gateways * 1000, 2),
    "cluster_idle_rss_mb": round($idle_rss / 1024), "cluster_connected_rss_mb": round($connected_rss / 1024),
    "cluster_rss_mb": round($rss / 1024),
    "cluster_rss_mb_per_connection": round(($connected_rss - $idle_rss) / 1024 / gateways, 2),
    "cluster_rss_mb_traffic": round(($rss - $connected_rss) / 1024),
    "windows_at_consumer": items,
    "city_1000x100_messages_per_s": round(messages * scale, 1),
    "city_1000x100_gb_per_day": round(bytes_s * scale * 86400 / 1e9, 1),
    "city_1000x100_cluster_cpu_cores": round(idle_cpu_s + (cpu / seconds - idle_cpu_s) * scale, 2),
    "city_1000x100_cluster_connections_rss_gb": round(($idle_rss + ($connected_rss - $idle_rss) * 1000 / gateways) / 1048576, 2),
}
print(json.dumps(result, indent=1))
open(sys.argv[2], "w").write(json.dumps(result) + "\n")
PY
