#!/bin/bash
# The board test's guest side: what an operator does on a Debian 12 board (systemd as PID 1,
# Debian's stock mosquitto), checked at every step. Run as root inside the board by
# Tests/Board/run.sh, in two boots of the same disk:
#
#   on-board.sh install DEBDIR   install revision 1 with apt, check services, READY, watchdog,
#                                journald levels; enrol devices, publish over TLS, refuse a
#                                spoofer; restart; upgrade to revision 2 (operator's edit kept);
#                                a start that fails after an upgrade is visible and says how to
#                                go back; go back to revision 1
#   on-board.sh reboot DEBDIR    after a reboot: both services back, data kept, a reading stored;
#                                apt remove keeps config and data; apt purge leaves nothing
#
# Prints one "ok ..." line per check and "board: N passed, 0 failed" at the end; the first
# failed check prints what it saw and exits 1.
set -uo pipefail
phase=${1:?install or reboot}
debs=${2:?directory with the two packages}
export DEBIAN_FRONTEND=noninteractive
apt_opts=(-y -q -o Dpkg::Options::=--force-confold -o Dpkg::Options::=--force-confdef)
deb1=$(ls "$debs"/telemetry-gateway_*-1_*.deb)
deb2=$(ls "$debs"/telemetry-gateway_*-2_*.deb)
db=/var/lib/telemetry-gateway/gateway.db
vin_a=1TGDA000000000001
vin_b=1TGDA000000000002
passed=0
t_start=$(date +%s.%N)

seconds() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", a - b }'; }
ok() { passed=$((passed + 1)); echo "ok $passed - $*"; }
fail() {
    echo "FAILED: $*"
    echo "--- systemctl status"; systemctl status --no-pager gatewayd mosquitto 2>&1 | tail -30
    echo "--- journal (gatewayd)"; journalctl -u gatewayd -b --no-pager -n 30 2>&1
    echo "--- journal (mosquitto)"; journalctl -u mosquitto -b --no-pager -n 15 2>&1
    echo "--- mosquitto.log"; tail -60 /var/log/mosquitto/mosquitto.log 2>&1
    echo "--- devices"; sqlite3 -header "$db" 'SELECT * FROM devices_v' 2>&1
    echo "--- rejects"; sqlite3 "$db" 'SELECT * FROM rejects_v ORDER BY 1 DESC LIMIT 5' 2>&1
    echo "--- metrics"; curl -s http://127.0.0.1:8080/metrics | grep -E '^gateway_(messages|readings|rejects|broker|duplicates|seq|commit|uncommitted)' 2>&1
    echo "board: $passed passed, 1 failed"
    exit 1
}
check() { # check "what" command...
    local what=$1
    shift
    "$@" >/tmp/check.out 2>&1 || fail "$what: $(tail -5 /tmp/check.out)"
    ok "$what"
}
wait_for() { # wait_for SECONDS "what" command...: polls every 0.2 s
    local limit=$1 what=$2 deadline
    shift 2
    deadline=$(($(date +%s) + limit))
    until "$@" >/tmp/check.out 2>&1; do
        [ "$(date +%s)" -lt "$deadline" ] || fail "$what (waited ${limit}s): $(tail -5 /tmp/check.out)"
        sleep 0.2
    done
    ok "$what"
}
count() { sqlite3 "$db" "$1"; }
# count_is N SQL: a command, so wait_for runs the query on every poll (an argument written as
# "$(count ...)" would be counted once, before waiting).
count_is() { [ "$(count "$2")" = "$1" ]; }
secret() { cat "/root/$1.secret"; }
publish() { # publish DEVICE-ID USERNAME TOPIC PAYLOAD
    mosquitto_pub -h localhost -p 8883 --cafile /etc/telemetry-gateway/device-ca.crt -q 1 \
        -i "$1" -u "$2" -P "$(secret "$2")" -t "$3" -m "$4"
}
reading() { # reading SEQ SPEED_HEX: an OBD-II vehicle speed reading (PID 0D), now
    printf '{"ts":%s,"seq":%s,"pids":{"0D":"%s"}}' "$(date +%s%3N)" "$1" "$2"
}
active() { [ "$(systemctl is-active "$1")" = active ]; }
status_text() { systemctl show -p StatusText --value gatewayd; }
main_pid() { systemctl show -p MainPID --value gatewayd; }
version() { dpkg-query -W -f='${Version}' telemetry-gateway; }
# exposure UNIT MAX: systemd-analyze security's overall score for UNIT is at most MAX.
exposure() {
    local score
    score=$(systemd-analyze security "$1" --no-pager 2>/dev/null | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
    echo "$1 exposure $score (at most $2)"
    awk -v s="$score" -v m="$2" 'BEGIN { exit !(s != "" && s + 0 <= m + 0) }'
}

if [ "$phase" = install ]; then
    echo "board: $(. /etc/os-release; echo "$PRETTY_NAME"), systemd $(systemctl --version | head -1 | cut -d' ' -f2)," \
        "mosquitto $(dpkg-query -W -f='${Version}' mosquitto), no Swift: $(command -v swift || echo none)"
    check "stock mosquitto.conf untouched" grep -q '^persistence_location /var/lib/mosquitto/' /etc/mosquitto/mosquitto.conf
    # Every packet in the broker's log, for the failure report (not part of what is tested).
    printf 'log_type all\n' >/etc/mosquitto/conf.d/zz-board-test-debug.conf

    # --- install
    t0=$(date +%s.%N)
    apt-get install "${apt_opts[@]}" "$deb1" >/tmp/apt-install.log 2>&1 || fail "apt install: $(tail -20 /tmp/apt-install.log)"
    t_installed=$(date +%s.%N)
    ok "apt install $(basename "$deb1") ($(seconds $t_installed $t0) s)"
    check "mosquitto active" active mosquitto
    check "gatewayd active (READY reached: Type=notify)" active gatewayd

    # --- enrol devices, publish over TLS: the first reading, timed from the start of apt install
    for id in $vin_a $vin_b drain-7; do
        check "gwctl device add $id" sh -c "gwctl device add $id --password-out /root/$id.secret | grep -q 'broker reloaded'"
    done
    publish $vin_a $vin_a "v1/obd/$vin_a/pids" "$(reading 1 3C)" || fail "vehicle A publish over TLS"
    wait_for 20 "an enrolled vehicle's reading over TLS is stored" count_is 1 "SELECT count(*) FROM readings_v WHERE device = '$vin_a'"
    t_first=$(date +%s.%N)
    echo "measure: apt install to first stored reading: $(seconds $t_first $t0) s (install $(seconds $t_installed $t0) s, enrol and publish after)"

    check "gatewayd enabled" systemctl is-enabled gatewayd
    check "watchdog armed (WatchdogSec=30)" test "$(systemctl show -p WatchdogUSec --value gatewayd)" = 30s
    check "gatewayd logs the watchdog" journalctl -u gatewayd -b --grep 'event=watchdog_enabled .*interval_ms=30000' -q
    # systemd's record of the last ping moves on (gatewayd pings at half the interval, 15 s).
    ping=$(systemctl show -p WatchdogTimestampMonotonic --value gatewayd)
    wait_for 25 "systemd receives watchdog pings" sh -c "test \"\$(systemctl show -p WatchdogTimestampMonotonic --value gatewayd)\" -gt ${ping:-0}"
    wait_for 10 "broker link shown in systemctl status" sh -c 'systemctl show -p StatusText --value gatewayd | grep -q "broker connected"'
    check "runs as telemetry-gateway" test "$(ps -o user= -p "$(main_pid)")" = telemetry-gateway
    check "no Swift runtime needed" sh -c '! ldd /usr/bin/gatewayd | grep -qi swift'
    check "identity from the host name" test "$(cat /etc/telemetry-gateway/gateway-id)" = "$(hostname | cut -d. -f1)"
    check "config and data modes" test "$(stat -c '%a %U %G' /etc/telemetry-gateway /var/lib/telemetry-gateway /etc/mosquitto/certs/telemetry-gateway-ca.key)" \
        = "$(printf '750 root telemetry-gateway\n750 telemetry-gateway telemetry-gateway\n600 root root')"
    check "health answers 200 on loopback" test "$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:8080/v1/health)" = 200
    check "the console is served from the binary" sh -c "curl -fsS http://127.0.0.1:8080/console/app.js | grep -q consoleInternals"
    check "gatewayd sandbox: $(exposure gatewayd.service 2.0 | cut -d' ' -f2-3)" exposure gatewayd.service 2.0
    check "mosquitto sandbox: $(exposure mosquitto.service 3.0 | cut -d' ' -f2-3)" exposure mosquitto.service 3.0
    check "device listener on 8883 (TLS)" sh -c 'echo | openssl s_client -connect 127.0.0.1:8883 -CAfile /etc/telemetry-gateway/device-ca.crt -verify_return_error -verify_hostname localhost 2>&1 | grep -q "Verify return code: 0 (ok)"'

    # --- journald: levels reach the journal, no second timestamp
    check "journal lines carry no ts=" sh -c '! journalctl -u gatewayd -b -o cat | grep -q "^ts="'
    check "info lines filed at priority info" journalctl -u gatewayd -b -p info -o cat --grep '^level=info event=gateway_started' -q

    # --- a spoofing device: A as B and as a gauge, anonymous, wrong password
    publish $vin_a $vin_a "v1/obd/$vin_b/pids" "$(reading 1 50)" || true
    publish $vin_a $vin_a "v1/water/drain-7/level" '{"ts":1,"seq":1,"level_cm":999}' || true
    check "anonymous device refused" sh -c "! mosquitto_pub -h localhost -p 8883 --cafile /etc/telemetry-gateway/device-ca.crt -t v1/obd/$vin_a/pids -m x"
    check "wrong password refused" sh -c "! mosquitto_pub -h localhost -p 8883 --cafile /etc/telemetry-gateway/device-ca.crt -i $vin_a -u $vin_a -P guess -t v1/obd/$vin_a/pids -m x"
    check "plain MQTT not reachable from outside loopback" sh -c "! ss -ltnH | awk '{print \$4}' | grep -E ':1883$' | grep -vE '^127\.0\.0\.1:'"
    # Marker through the same path: once A's second reading is stored, the spoofed ones would be too.
    publish $vin_a $vin_a "v1/obd/$vin_a/pids" "$(reading 2 3D)" || fail "vehicle A second publish"
    wait_for 20 "marker reading stored" count_is 2 "SELECT count(*) FROM readings_v WHERE device = '$vin_a'"
    check "A could not publish as B" count_is 0 "SELECT count(*) FROM readings_v WHERE device = '$vin_b'"
    check "A could not publish as the gauge" count_is 0 "SELECT count(*) FROM readings_v WHERE device = 'drain-7'"
    publish $vin_b $vin_b "v1/obd/$vin_b/pids" "$(reading 1 28)" || fail "vehicle B publish"
    wait_for 20 "B's own reading stored" count_is 1 "SELECT count(*) FROM readings_v WHERE device = '$vin_b'"

    # --- journald priorities: a malformed message is a warning, and -p warning shows no info
    publish $vin_b $vin_b "v1/obd/$vin_b/pids" '{"ts": "not a number"' || fail "malformed publish"
    wait_for 20 "a rejected message is logged at warning" journalctl -u gatewayd -b -p warning -o cat --grep 'level=warning event=message_rejected' -q
    check "journalctl -p warning shows nothing below warning" sh -c '! journalctl -u gatewayd -b -p warning -o cat | grep -Eq "level=(info|notice|debug)"'

    # --- restart keeps everything
    pid=$(main_pid)
    check "systemctl restart gatewayd" systemctl restart gatewayd
    check "a new process, active" sh -c "test $(main_pid) != $pid && systemctl is-active -q gatewayd"
    check "readings kept across restart" count_is 3 'SELECT count(*) FROM readings_v'

    # --- upgrade to revision 2, with an operator's edit in the conffile
    sed -i 's/"stats_interval_s": 60/"stats_interval_s": 30/' /etc/telemetry-gateway/gatewayd.json
    pid=$(main_pid)
    apt-get install "${apt_opts[@]}" "$deb2" >/tmp/apt-upgrade.log 2>&1 || fail "apt upgrade: $(tail -20 /tmp/apt-upgrade.log)"
    ok "upgrade to $(version)"
    check "upgraded version installed" test "$(version)" = "$(dpkg-deb -f "$deb2" Version)"
    check "gatewayd restarted by the upgrade" sh -c "test $(main_pid) != $pid && systemctl is-active -q gatewayd"
    check "operator's edit survived the upgrade" grep -q '"stats_interval_s": 30' /etc/telemetry-gateway/gatewayd.json
    check "credentials survived the upgrade" sh -c "grep -q '^$vin_a:' /etc/mosquitto/telemetry-gateway.passwd"
    check "readings kept across the upgrade" count_is 3 'SELECT count(*) FROM readings_v'
    publish $vin_a $vin_a "v1/obd/$vin_a/pids" "$(reading 3 3E)" || fail "publish after upgrade"
    wait_for 20 "a reading after the upgrade is stored" count_is 3 "SELECT count(*) FROM readings_v WHERE device = '$vin_a'"

    # --- a start that fails after an upgrade is visible: the API's address is taken (1883)
    cp /etc/telemetry-gateway/gatewayd.json /tmp/gatewayd.json.good
    sed -i 's/"listen": "127.0.0.1:8080"/"listen": "127.0.0.1:1883"/' /etc/telemetry-gateway/gatewayd.json
    apt-get install "${apt_opts[@]}" --reinstall "$deb2" >/tmp/apt-fail.log 2>&1 && fail "apt succeeded although gatewayd cannot start"
    ok "apt reports the failed start (exit non-zero)"
    check "the failure says why and how to go back" sh -c "grep -q 'gatewayd did not start' /tmp/apt-fail.log && grep -q 'apt install --allow-downgrades' /tmp/apt-fail.log && grep -q 'startup_failed' /tmp/apt-fail.log"
    check "dpkg shows it half-configured" sh -c "dpkg-query -W -f='\${Status}' telemetry-gateway | grep -q half-configured"
    cp /tmp/gatewayd.json.good /etc/telemetry-gateway/gatewayd.json
    check "fixed config: dpkg --configure -a" dpkg --configure -a
    check "gatewayd active again" active gatewayd

    # --- going back to the previous package
    apt-get install "${apt_opts[@]}" --allow-downgrades "$deb1" >/tmp/apt-down.log 2>&1 || fail "downgrade: $(tail -20 /tmp/apt-down.log)"
    check "rolled back to $(dpkg-deb -f "$deb1" Version)" test "$(version)" = "$(dpkg-deb -f "$deb1" Version)"
    check "gatewayd active after rollback" active gatewayd
    check "readings kept across rollback" count_is 4 'SELECT count(*) FROM readings_v'
elif [ "$phase" = reboot ]; then
    check "booted again (a previous boot in the journal)" journalctl -b -1 -q -n 1
    wait_for 60 "mosquitto back after reboot" active mosquitto
    wait_for 60 "gatewayd back after reboot" active gatewayd
    wait_for 10 "gatewayd connected to the broker" sh -c 'systemctl show -p StatusText --value gatewayd | grep -q "broker connected"'
    check "readings kept across reboot" count_is 4 'SELECT count(*) FROM readings_v'
    publish $vin_a $vin_a "v1/obd/$vin_a/pids" "$(reading 4 3F)" || fail "publish after reboot"
    wait_for 20 "a reading after reboot is stored" count_is 4 "SELECT count(*) FROM readings_v WHERE device = '$vin_a'"

    # --- upstream over mutual TLS to a stand-in city broker, from inside the unit's sandbox and
    # system-call filter: the operator adds an upstream section and the certificates
    id=$(cat /etc/telemetry-gateway/gateway-id)
    bash Deploy/make-certs.sh /root/city 18883 "$id" >/dev/null 2>&1 || fail "make-certs.sh"
    mosquitto -c /root/city/upstream-mosquitto.conf -d || fail "city broker"
    install -m 0640 -o root -g telemetry-gateway /root/city/ca.crt /etc/telemetry-gateway/upstream-ca.crt
    install -m 0640 -o root -g telemetry-gateway /root/city/client.crt /etc/telemetry-gateway/gateway.crt
    install -m 0600 -o telemetry-gateway -g telemetry-gateway /root/city/client.key /etc/telemetry-gateway/gateway.key
    sed -i '1a\  "upstream": {"host": "127.0.0.1", "port": 18883, "topic_prefix": "city", "tls": {"ca_file": "/etc/telemetry-gateway/upstream-ca.crt", "cert_file": "/etc/telemetry-gateway/gateway.crt", "key_file": "/etc/telemetry-gateway/gateway.key"}},' \
        /etc/telemetry-gateway/gatewayd.json
    check "config with an upstream section passes --check-config" gatewayd --check-config /etc/telemetry-gateway/gatewayd.json
    check "systemctl restart gatewayd (upstream configured)" systemctl restart gatewayd
    wait_for 30 "retained status forwarded upstream over mutual TLS" sh -c "mosquitto_sub -h 127.0.0.1 -p 18883 --cafile /root/city/ca.crt --cert /root/city/client.crt --key /root/city/client.key -i board-test-city -t 'city/$id/status' -C 1 -W 3 | grep -q online"
    wait_for 10 "upstream link in /metrics" sh -c "curl -s http://127.0.0.1:8080/metrics | grep -q '^gateway_upstream_connected 1'"

    # --- systemd's watchdog: a gatewayd that stops going round is killed and started again
    pid=$(main_pid)
    kill -STOP "$pid"
    wait_for 60 "a stuck gatewayd is restarted by the watchdog" sh -c \
        "p=\$(systemctl show -p MainPID --value gatewayd); [ \"\$p\" != $pid ] && [ \"\$p\" != 0 ] && systemctl is-active -q gatewayd"
    check "systemd says why" journalctl -u gatewayd -b -q --grep 'Watchdog timeout'
    publish $vin_a $vin_a "v1/obd/$vin_a/pids" "$(reading 5 40)" || fail "publish after the watchdog restart"
    wait_for 20 "a reading after the watchdog restart is stored" count_is 5 "SELECT count(*) FROM readings_v WHERE device = '$vin_a'"

    # --- remove keeps configuration and data
    apt-get remove -y -q telemetry-gateway >/tmp/apt-remove.log 2>&1 || fail "apt remove: $(tail -20 /tmp/apt-remove.log)"
    ok "apt remove"
    check "gatewayd stopped" sh -c '! systemctl is-active -q gatewayd'
    check "binaries gone" sh -c '! test -e /usr/bin/gatewayd && ! test -e /usr/bin/gwctl'
    check "config, identity and data kept" test -s /etc/telemetry-gateway/gatewayd.json -a -s /etc/telemetry-gateway/gateway-id -a -s $db
    check "mosquitto still active" active mosquitto

    # --- purge leaves nothing the package made
    apt-get purge -y -q telemetry-gateway >/tmp/apt-purge.log 2>&1 || fail "apt purge: $(tail -20 /tmp/apt-purge.log)"
    ok "apt purge"
    check "package gone from dpkg" sh -c '! dpkg-query -W -f="\${Status}" telemetry-gateway 2>/dev/null | grep -q installed'
    check "no file left with the package's name" sh -c \
        'test -z "$(find / -xdev \( -name "*telemetry-gateway*" -o -name "gatewayd*" -o -name gwctl \) -not -path "/var/lib/dpkg/*" -not -path "/proc/*" -not -path "/var/log/*" -not -path "/tmp/*" -not -path "/run/board-vm/*" -print -quit)"'
    check "system user gone" sh -c '! getent passwd telemetry-gateway && ! getent group telemetry-gateway'
    wait_for 30 "mosquitto active on Debian's stock config" active mosquitto
    check "device listener gone" sh -c '! ss -ltnH | grep -q ":8883 "'
else
    echo "unknown phase $phase" >&2
    exit 64
fi
elapsed=$(seconds "$(date +%s.%N)" "$t_start")
echo "board: $passed passed, 0 failed (phase $phase, ${elapsed} s)"
