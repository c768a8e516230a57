#!/usr/bin/env bash
# OTA distribution: an 8 MiB image to 200 simulated vehicles through gatewayd, against the broker
# alone moving the same bytes (gwbench ota-baseline), with gatewayd's CPU and peak RSS; the same
# campaign to 50 vehicles shows whether memory depends on the fleet; and the size of a delta
# between two release builds of gatewayd that differ by one string constant.
#
#   bash Benchmarks/ota.sh                 # VEHICLES="50 200" MIB=8 DELTA=1
set -euo pipefail
cd "$(dirname "$0")/.."
source .ci/deps.sh
source .ci/loopback.sh

VEHICLES=${VEHICLES:-"50 200"}
MIB=${MIB:-8}
DELTA=${DELTA:-1}
bytes=$((MIB * 1024 * 1024))

swift build -c release >/dev/null
bin=$(swift build -c release --show-bin-path)
dir=$(mktemp -d /tmp/gw-ota-bench.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$dir"' EXIT

port=$(free_port 19830)
printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\nmax_queued_messages 100000\nset_tcp_nodelay true\n' \
    "$port" >"$dir/mosquitto.conf"
mosquitto -c "$dir/mosquitto.conf" >"$dir/mosquitto.log" 2>&1 &
broker=$!
wait_port "$port"

head -c "$bytes" /dev/urandom >"$dir/v1.bin"
head -c "$bytes" /dev/urandom >"$dir/v2.bin"
"$bin/gwctl" ota keygen --out "$dir/op" >/dev/null
key=$(openssl pkey -in "$dir/op.key" -pubout -outform DER | tail -c 32 | od -An -tx1 | tr -d ' \n')
token=bench-operator
clk=$(getconf CLK_TCK)

round=0
for n in $VEHICLES; do
    round=$((round + 1))
    echo "== $n vehicles, ${MIB} MiB each =="
    # The simulated vehicles' flash writes go through the page cache; a cache full of earlier
    # runs' pages makes them (and the result) up to 1.7x slower. Start each round from a clean one.
    sync
    echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || echo "(page cache not dropped: not root)"
    "$bin/gwbench" ota-baseline --port "$port" --vehicles "$n" --bytes "$bytes"

    run="$dir/run-$round"
    mkdir -p "$run"
    http=$(free_port 19880)
    cat >"$run/gateway.json" <<CONF
{"gateway_id": "bench-ota", "broker": {"port": $port},
 "http": {"listen": "127.0.0.1:$http", "tokens": [{"name": "b", "role": "operator", "sha256": "$(printf %s "$token" | sha256sum | cut -d' ' -f1)"}]},
 "limits": {"device_rate_per_s": 1000000, "device_burst": 1000000},
 "store": {"path": "$run/gateway.db"},
 "ota": {"trusted_keys": ["$key"], "max_concurrent_transfers": $n},
 "log": {"level": "warning", "stats_interval_s": 0}}
CONF
    MALLOC_ARENA_MAX=2 "$bin/gatewayd" --config "$run/gateway.json" 2>"$run/gatewayd.log" &
    gw=$!
    wait_port "$http"
    ${SIM_WRAP:-} "$bin/gwsim" --port "$port" --ota-vehicles "$n" --ota-dir "$run/fleet" --ota-trusted-key "$key" \
        --ota-firmware "$dir/v1.bin" --ota-install-ms 0 >"$run/gwsim.log" 2>&1 &
    sim=$!
    export GWCTL_GATEWAY="http://127.0.0.1:$http" GWCTL_TOKEN=$token
    for _ in $(seq 600); do
        [ "$("$bin/gwctl" ota vehicles --json | grep -o '"vin"' | wc -l)" -ge "$n" ] && break
        sleep 0.1
    done
    read -r u0 s0 < <(awk '{print $14, $15}' /proc/$gw/stat)
    read -r su0 ss0 < <(awk '{print $14, $15}' /proc/$sim/stat)
    read -r bu0 bs0 < <(awk '{print $14, $15}' /proc/$broker/stat)
    "$bin/gwctl" ota push "$dir/v2.bin" --version 2.0.0 --counter 2 --hw tgu-1 --key "$dir/op.key" --all \
        >"$run/push.log" 2>&1
    start=$(date +%s.%N)
    served_at=""
    while true; do
        state=$(curl -s -H "Authorization: Bearer $token" "http://127.0.0.1:$http/v1/ota/campaigns/1" |
            sed -n 's/^{"id":1,"state":"\([a-z]*\)".*/\1/p')
        if [ -z "$served_at" ] && curl -s "http://127.0.0.1:$http/metrics" |
            awk -v ideal=$((n * bytes)) '/^gateway_ota_bytes_served_total / {exit !($2 >= ideal)}'; then
            served_at=$(date +%s.%N)
        fi
        [ "$state" = completed ] && break
        [ "$state" = aborted ] && { echo "campaign aborted" >&2; break; }
        sleep 0.02
    done
    end=$(date +%s.%N)
    read -r u1 s1 < <(awk '{print $14, $15}' /proc/$gw/stat)
    read -r su1 ss1 < <(awk '{print $14, $15}' /proc/$sim/stat)
    read -r bu1 bs1 < <(awk '{print $14, $15}' /proc/$broker/stat)
    hwm=$(awk '/VmHWM/ {print $2}' /proc/$gw/status)
    metrics=$(curl -s "http://127.0.0.1:$http/metrics")
    served=$(echo "$metrics" | awk '/^gateway_ota_bytes_served_total / {print $2}')
    blocks=$(echo "$metrics" | awk '/^gateway_ota_blocks_served_total / {print $2}')
    installed=$("$bin/gwctl" ota status 1 --json | sed -n 's/.*"installed":\([0-9]*\).*/\1/p')
    awk -v s="$start" -v e="$end" -v f="${served_at:-$end}" -v u0="$u0" -v s0="$s0" -v u1="$u1" -v s1="$s1" -v c="$clk" -v h="$hwm" \
        -v served="$served" -v blocks="$blocks" -v n="$n" -v b="$bytes" -v inst="$installed" 'BEGIN {
      ideal = n * b
      printf "gateway vehicles=%d installed=%d seconds=%.2f all_bytes_published_s=%.2f mib_per_s=%.1f published_bytes=%d ideal_bytes=%d overhead=%.4f gatewayd_cpu_s=%.2f gatewayd_peak_rss_mb=%.1f\n",
        n, inst, e - s, f - s, ideal / 1048576 / (e - s), served + 16 * blocks, ideal, (served + 16 * blocks) / ideal - 1,
        (u1 + s1 - u0 - s0) / c, h / 1024
    }'
    awk -v c="$clk" -v a="$((su1 + ss1 - su0 - ss0))" -v b="$((bu1 + bs1 - bu0 - bs0))" 'BEGIN {
      printf "  same run: gwsim_cpu_s=%.2f (its vehicles write, sync and hash every block) mosquitto_cpu_s=%.2f\n", a / c, b / c }'
    kill "$sim" "$gw" 2>/dev/null || true
    wait "$sim" "$gw" 2>/dev/null || true
    rm -rf "$run/fleet"
done
kill "$broker"

if [ "$DELTA" = 1 ]; then
    echo "== delta between two release builds of gatewayd (one string constant changed) =="
    version_file=Sources/Version/GatewayVersion.swift
    cp "$bin/gatewayd" "$dir/gatewayd-a"
    cp "$version_file" "$dir/GatewayVersion.swift.orig"
    trap 'cp "$dir/GatewayVersion.swift.orig" "'"$version_file"'"; kill $(jobs -p) 2>/dev/null || true; rm -rf "$dir"' EXIT
    sed -i 's/static let current = "\([^"]*\)"/static let current = "\1-patched"/' "$version_file"
    swift build -c release --product gatewayd >/dev/null
    cp "$bin/gatewayd" "$dir/gatewayd-b"
    cp "$dir/GatewayVersion.swift.orig" "$version_file"
    swift build -c release --product gatewayd >/dev/null
    start=$(date +%s.%N)
    "$bin/gwctl" ota sign "$dir/gatewayd-b" --from "$dir/gatewayd-a" --version 2.0.1 --counter 3 --hw tgu-1 \
        --key "$dir/op.key" --all --out "$dir/m.json" --delta-out "$dir/delta.bin" 2>&1 | grep -v written
    end=$(date +%s.%N)
    awk -v a="$(stat -c %s "$dir/gatewayd-b")" -v d="$(stat -c %s "$dir/delta.bin")" -v s="$start" -v e="$end" 'BEGIN {
      printf "image_bytes=%d delta_bytes=%d ratio=%.4f sign_and_diff_s=%.1f\n", a, d, d / a, e - s }'
fi
