#!/usr/bin/env bash
# Where gatewayd's memory goes by device count: peak RSS with aggregation on and off, the load
# paced (RATE messages/s for 30 s) so that no backlog builds up in the gateway or the broker and
# what is measured is the per-device and per-series state. Not run in CI.
#
#   bash Benchmarks/memory.sh                     # 10 000 and 100 000 devices, 12 000 messages/s
#   DEVICES="1000 10000" RATE=8000 bash Benchmarks/memory.sh
#   HEAPTRACK=/tmp/heap DEVICES=10000 bash Benchmarks/memory.sh   # also: peak heap by function (heaptrack)
#   AGGREGATION=true DEVICES=100000 bash Benchmarks/memory.sh     # only the runs with aggregation
#   SMAPS=1 DEVICES=10000 bash Benchmarks/memory.sh               # also: resident MB by mapping at the peak
set -euo pipefail
cd "$(dirname "$0")/.."
source .ci/deps.sh
source .ci/loopback.sh
DEVICES=${DEVICES:-"10000 100000"}
RATE=${RATE:-12000}
swift build -c release >/dev/null
bin=$(swift build -c release --show-bin-path)
dir=$(mktemp -d /tmp/gw-mem.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$dir"' EXIT
port=$(free_port 19730)
printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\nmax_queued_messages 1000000\nmax_inflight_messages 1000\n' "$port" >"$dir/mosquitto.conf"
mosquitto -c "$dir/mosquitto.conf" >"$dir/mosquitto.log" 2>&1 &
wait_port "$port"
run() {
    local devices=$1 aggregation=$2 rate=$3
    rm -rf "$dir/run"; mkdir -p "$dir/run"
    cat >"$dir/run/gateway.json" <<CONF
{"gateway_id": "mem", "broker": {"port": $port}, "http": {"enabled": false}, "ota": {"enabled": false},
 "limits": {"device_rate_per_s": 1000000, "device_burst": 1000000}, "aggregation": {"enabled": $aggregation},
 "store": {"path": "$dir/run/gateway.db", "capacity_readings": 1000000, "max_devices": 200000},
 "log": {"level": "warning", "stats_interval_s": 0}}
CONF
    local wrap=()
    if [[ -n ${HEAPTRACK:-} ]]; then
        command -v heaptrack >/dev/null || { apt-get update -qq && apt-get install -y -qq heaptrack >/dev/null; }
        mkdir -p "$HEAPTRACK"
        wrap=(heaptrack -o "$HEAPTRACK/gatewayd-$devices-$aggregation")
    fi
    MALLOC_ARENA_MAX=2 "${wrap[@]}" "$bin/gatewayd" --config "$dir/run/gateway.json" 2>"$dir/run/gatewayd.log" &
    local gw=$! job=$!
    # heaptrack runs gatewayd as its child: measure and stop that one.
    if [[ -n ${HEAPTRACK:-} ]]; then
        for _ in $(seq 100); do pgrep -P "$gw" -x gatewayd >/dev/null && break; sleep 0.1; done
        gw=$(pgrep -P "$gw" -x gatewayd)
    fi
    for _ in $(seq 200); do grep -q mqtt_connected "$dir/run/gatewayd.log" 2>/dev/null && break; sleep 0.05; done
    sleep 0.3
    # With aggregation, the peak is while a closed minute is written (over ~15 s after the
    # minute plus lateness) and the next one fills: start at second 50 and load for 30 s, so
    # that every run holds one close. Without it, any 30 s.
    if [[ $aggregation == true ]]; then sleep $(((110 - $(date +%s) % 60) % 60)); fi
    # SMAPS: /proc/PID/smaps sampled every 0.5 s, the one with the largest resident total kept.
    local sampler=""
    if [[ -n ${SMAPS:-} ]]; then
        (
            best=0
            while kill -0 "$gw" 2>/dev/null; do
                rss=$(awk '/^Rss:/ {s += $2} END {print s + 0}' "/proc/$gw/smaps" 2>/dev/null || echo 0)
                if [ "${rss:-0}" -gt "$best" ]; then best=$rss; cp "/proc/$gw/smaps" "$dir/run/smaps" 2>/dev/null || true; fi
                sleep 0.5
            done
        ) &
        sampler=$!
    fi
    echo "devices=$devices aggregation=$aggregation rate=$rate $("$bin/gwbench" ingest --port "$port" --db "$dir/run/gateway.db" --gateway-pid "$gw" --devices "$devices" --rate "$rate" --duration 30 --connections 4 --label mem | tr ' ' '\n' | grep -E '^(readings_lost|gatewayd_peak_rss_mb|latency_ms_p99)=' | paste -sd' ')"
    kill -TERM "$gw"; wait "$job" || true
    if [[ -n $sampler ]]; then
        wait "$sampler" || true
        echo "resident MB by mapping at the peak (devices=$devices aggregation=$aggregation):"
        awk '/^[0-9a-f]+-[0-9a-f]+ / {name = (NF >= 6 ? $6 : "[anonymous]"); sub(".*/", "", name)}
             /^Rss:/ {rss[name] += $2}
             END {for (n in rss) if (rss[n] >= 100) printf "  %7.1f %s\n", rss[n] / 1024, n}' "$dir/run/smaps" | sort -rn
    fi
    if [[ -n ${HEAPTRACK:-} ]]; then
        heaptrack_print -f "$HEAPTRACK/gatewayd-$devices-$aggregation".*zst -p 0 -a 0 -l 0 -T 0 \
            -F "$HEAPTRACK/flame-$devices-$aggregation.txt" --flamegraph-cost-type peak >/dev/null 2>&1 || true
        python3 Benchmarks/heap-sites.py "$HEAPTRACK/flame-$devices-$aggregation.txt" 20
    fi
}
for devices in $DEVICES; do
    for aggregation in ${AGGREGATION:-true false}; do run "$devices" "$aggregation" "$RATE"; done
done
