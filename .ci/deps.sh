#!/usr/bin/env bash
# Installs the Debian packages the project needs, only those that are missing.
# Used by Deploy/quickstart.sh, .ci/test.sh and Benchmarks/ingest.sh.
set -euo pipefail

packages=(mosquitto mosquitto-clients libmosquitto-dev libsqlite3-dev libssl-dev pkg-config sqlite3 openssl procps curl ca-certificates)
# Callers add their own (the tests need libfaketime for the clock-jump test).
read -r -a extra <<<"${EXTRA_PACKAGES:-}"
packages+=("${extra[@]}")
missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "deps: missing ${missing[*]}; run as root or: sudo apt-get install -y ${missing[*]}" >&2
        exit 1
    fi
    echo "deps: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q "${missing[@]}"
fi
if ! command -v swift >/dev/null 2>&1; then
    for candidate in /opt/swift/usr/bin /usr/share/swift/usr/bin; do
        [ -x "$candidate/swift" ] && export PATH="$candidate:$PATH"
    done
fi
command -v swift >/dev/null 2>&1 || {
    echo "deps: no Swift toolchain found. Install Swift 6 for Debian 12 (swift.org) and put it on PATH." >&2
    exit 1
}
