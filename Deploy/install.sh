#!/usr/bin/env bash
# Installs telemetry-gateway on a Debian 12 board, or removes it. Idempotent: running it again
# upgrades the binaries and keeps every configuration, credential and byte of data.
#
#   bash Deploy/install.sh [--bin DIR] [--gateway-id ID]   install or upgrade (as root)
#   bash Deploy/install.sh --rollback                      go back to the previous binaries
#   bash Deploy/install.sh --uninstall [--purge]           remove (--purge: config and data too)
#
# --bin DIR       where gatewayd and gwctl are (default: builds them, swift build -c release)
# --root DIR      install into DIR instead of / (for tests and image builds): nothing is
#                 started, users go into DIR/etc/passwd
# --no-start      install but do not enable or start the services
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=""
bin=""
action=install
purge=0
start=1
gateway_id=""
while [ $# -gt 0 ]; do
    case "$1" in
        --root) root=${2:?--root needs a directory}; shift ;;
        --bin) bin=${2:?--bin needs a directory}; shift ;;
        --gateway-id) gateway_id=${2:?--gateway-id needs a value}; shift ;;
        --uninstall) action=uninstall ;;
        --rollback) action=rollback ;;
        --purge) purge=1 ;;
        --no-start) start=0 ;;
        -h | --help) sed -n '2,13p' "$0"; exit 0 ;;
        *) echo "install: unknown option $1 (see --help)" >&2; exit 64 ;;
    esac
    shift
done
[ "$(id -u)" -eq 0 ] || { echo "install: run as root" >&2; exit 77; }
[ -z "$root" ] || { root=$(cd "$root" && pwd); start=0; }

user=telemetry-gateway
etc="$root/etc/telemetry-gateway"
data="$root/var/lib/telemetry-gateway"
bindir="$root/usr/local/bin"
mqetc="$root/etc/mosquitto"
units="$root/etc/systemd/system"
systemd_running() { [ -z "$root" ] && [ -d /run/systemd/system ]; }
say() { echo "install: $*"; }

if [ "$action" = uninstall ]; then
    if systemd_running; then
        systemctl disable --now gatewayd.service 2>/dev/null || true
    fi
    rm -f "$units/gatewayd.service" "$units/mosquitto.service.d/telemetry-gateway.conf"
    rmdir "$units/mosquitto.service.d" 2>/dev/null || true
    rm -f "$bindir/gatewayd" "$bindir/gwctl" "$bindir/gatewayd.previous" "$bindir/gwctl.previous"
    rm -f "$mqetc/conf.d/telemetry-gateway.conf"
    if [ "$purge" -eq 1 ]; then
        rm -rf "$etc" "$data" "$mqetc/telemetry-gateway.passwd" "$mqetc/telemetry-gateway.acl" \
            "$mqetc/certs/telemetry-gateway-broker.crt" "$mqetc/certs/telemetry-gateway-broker.key" \
            "$mqetc/certs/telemetry-gateway-ca.key"
        if [ -n "$root" ]; then
            userdel --prefix "$root" "$user" 2>/dev/null || true
        else
            userdel "$user" 2>/dev/null || true
        fi
        say "removed, configuration and data purged"
    else
        say "removed; kept $etc, $data and the broker's device credentials (--purge removes them)"
    fi
    if systemd_running; then systemctl daemon-reload; systemctl restart mosquitto || true; fi
    exit 0
fi

if [ "$action" = rollback ]; then
    for tool in gatewayd gwctl; do
        [ -x "$bindir/$tool.previous" ] || { echo "install: no previous $tool to roll back to" >&2; exit 1; }
    done
    for tool in gatewayd gwctl; do
        mv "$bindir/$tool" "$bindir/$tool.rolled-back"
        mv "$bindir/$tool.previous" "$bindir/$tool"
        mv "$bindir/$tool.rolled-back" "$bindir/$tool.previous"
    done
    say "now running $("$bindir/gatewayd" --version); the one rolled back from is gatewayd.previous"
    if systemd_running; then systemctl restart gatewayd.service; fi
    exit 0
fi

# --- install or upgrade ---
if [ -z "$root" ]; then
    missing=()
    for package in mosquitto mosquitto-clients libmosquitto1 libsqlite3-0 libssl3 openssl; do
        dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        say "installing ${missing[*]}"
        DEBIAN_FRONTEND=noninteractive apt-get update -q
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
    fi
fi
if [ -z "$bin" ]; then
    say "building release binaries"
    (cd "$here/.." && swift build -c release --product gatewayd && swift build -c release --product gwctl)
    bin="$here/../.build/release"
fi
for tool in gatewayd gwctl; do
    [ -x "$bin/$tool" ] || { echo "install: $bin/$tool not found (--bin DIR)" >&2; exit 66; }
done

# The service user: no shell, no home outside its data directory.
if [ -n "$root" ]; then
    grep -q "^$user:" "$root/etc/passwd" ||
        useradd --prefix "$root" --system --home-dir /var/lib/telemetry-gateway --no-create-home \
            --shell /usr/sbin/nologin --user-group "$user"
else
    id "$user" >/dev/null 2>&1 ||
        useradd --system --home-dir /var/lib/telemetry-gateway --no-create-home --shell /usr/sbin/nologin \
            --user-group "$user"
fi
group_of() { if [ -n "$root" ]; then grep "^$1:" "$root/etc/group" | cut -d: -f3; else getent group "$1" | cut -d: -f3; fi; }
uid_of() { if [ -n "$root" ]; then grep "^$1:" "$root/etc/passwd" | cut -d: -f3; else id -u "$1"; fi; }
gid=$(group_of "$user")
uid=$(uid_of "$user")
mqgid=$(group_of mosquitto || true)
[ -n "$mqgid" ] || mqgid=0

install -d -m 0755 "$bindir" "$units" "$mqetc/conf.d" "$mqetc/certs"
install -d -m 0750 -o 0 -g "$gid" "$etc"
install -d -m 0750 -o "$uid" -g "$gid" "$data"

# Binaries: the running ones are kept as *.previous for --rollback.
for tool in gatewayd gwctl; do
    if [ -x "$bindir/$tool" ] && ! cmp -s "$bin/$tool" "$bindir/$tool"; then
        cp -p "$bindir/$tool" "$bindir/$tool.previous"
    fi
    install -m 0755 "$bin/$tool" "$bindir/$tool.new"
    mv "$bindir/$tool.new" "$bindir/$tool"
done

# Configuration: written once, never overwritten (an operator's edits survive upgrades).
if [ ! -e "$etc/gatewayd.json" ]; then
    id_value=${gateway_id:-$(hostname -s | tr -c 'A-Za-z0-9_\n-' '-')}
    sed "s/@GATEWAY_ID@/$id_value/" "$here/gatewayd.board.json" >"$etc/gatewayd.json"
    chown 0:"$gid" "$etc/gatewayd.json"
    chmod 0640 "$etc/gatewayd.json"
    say "wrote $etc/gatewayd.json (gateway_id $id_value)"
fi
install -m 0644 "$here/gatewayd.json" "$etc/gatewayd.example.json"

# gatewayd's own broker account.
if [ ! -s "$etc/broker.password" ]; then
    (umask 077; head -c 24 /dev/urandom | base64 | tr '+/' '-_' >"$etc/broker.password")
    chown 0:"$gid" "$etc/broker.password"
    chmod 0640 "$etc/broker.password"
fi
passwd_file="$mqetc/telemetry-gateway.passwd"
touch "$passwd_file"
if ! grep -q '^gatewayd:' "$passwd_file"; then
    mosquitto_passwd -b "$passwd_file" gatewayd "$(cat "$etc/broker.password")"
fi
chown 0:"$mqgid" "$passwd_file"
chmod 0640 "$passwd_file"
acl_file="$mqetc/telemetry-gateway.acl"
if [ ! -e "$acl_file" ]; then
    install -m 0640 -o 0 -g "$mqgid" "$here/mosquitto/telemetry-gateway.acl" "$acl_file"
fi
install -m 0644 "$here/mosquitto/telemetry-gateway.conf" "$mqetc/conf.d/telemetry-gateway.conf"

# The device listener's TLS: a board CA (its key stays on the board, 0600) and a server
# certificate for this host. Devices are provisioned with telemetry-gateway-ca.crt.
certs="$mqetc/certs"
if [ ! -e "$certs/telemetry-gateway-broker.crt" ]; then
    host=$(hostname -f 2>/dev/null || hostname)
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:prime256v1 -out "$certs/telemetry-gateway-ca.key" 2>/dev/null
    chmod 0600 "$certs/telemetry-gateway-ca.key"
    openssl req -x509 -new -key "$certs/telemetry-gateway-ca.key" -out "$certs/telemetry-gateway-ca.crt" -days 3650 \
        -subj "/CN=telemetry-gateway board CA $host" 2>/dev/null
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:prime256v1 -out "$certs/telemetry-gateway-broker.key" 2>/dev/null
    openssl req -new -key "$certs/telemetry-gateway-broker.key" -out "$certs/broker.csr" -subj "/CN=$host" 2>/dev/null
    printf 'subjectAltName = DNS:%s, DNS:localhost, IP:127.0.0.1\nextendedKeyUsage = serverAuth\n' "$host" >"$certs/broker.ext"
    openssl x509 -req -in "$certs/broker.csr" -CA "$certs/telemetry-gateway-ca.crt" -CAkey "$certs/telemetry-gateway-ca.key" \
        -CAcreateserial -out "$certs/telemetry-gateway-broker.crt" -days 825 -extfile "$certs/broker.ext" 2>/dev/null
    rm -f "$certs/broker.csr" "$certs/broker.ext" "$certs/telemetry-gateway-ca.srl"
    chown 0:"$mqgid" "$certs/telemetry-gateway-broker.key"
    chmod 0640 "$certs/telemetry-gateway-broker.key"
    cp "$certs/telemetry-gateway-ca.crt" "$etc/device-ca.crt"
    chmod 0644 "$etc/device-ca.crt"
    say "made the device listener's certificate for $host; devices trust $etc/device-ca.crt"
fi

install -m 0644 "$here/systemd/gatewayd.service" "$units/gatewayd.service"
install -d -m 0755 "$units/mosquitto.service.d"
install -m 0644 "$here/systemd/mosquitto-hardening.conf" "$units/mosquitto.service.d/telemetry-gateway.conf"

"$bindir/gatewayd" --check-config "$etc/gatewayd.json" >/dev/null ||
    [ -n "$root" ] || { echo "install: $etc/gatewayd.json has problems: gatewayd --check-config $etc/gatewayd.json" >&2; exit 78; }

if [ "$start" -eq 1 ] && systemd_running; then
    systemctl daemon-reload
    systemctl enable mosquitto.service gatewayd.service
    systemctl restart mosquitto.service
    systemctl restart gatewayd.service
    say "running: $("$bindir/gatewayd" --version); systemctl status gatewayd, journalctl -u gatewayd"
else
    say "installed $("$bindir/gatewayd" --version) under ${root:-/}; not started"
fi
