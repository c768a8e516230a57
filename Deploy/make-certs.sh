#!/usr/bin/env bash
# Throwaway TLS material for development and tests: a CA, a server certificate for a
# loopback upstream broker, a client certificate for the gateway, and a mosquitto config for
# an upstream TLS listener that requires client certificates. Never use these in production.
#
#   bash Deploy/make-certs.sh DIR [PORT] [GATEWAY_ID]
#
# Writes DIR/ca.{crt,key}, DIR/server.{crt,key} (for 127.0.0.1 and localhost),
# DIR/client.{crt,key} (CN = GATEWAY_ID), DIR/client-expired.{crt,key} (expired in 2020, for
# tests) and DIR/upstream-mosquitto.conf (TLS listener on 127.0.0.1:PORT, default 18883).
#
#   bash Deploy/make-certs.sh --client DIR CN
#
# Issues one more client certificate, DIR/CN.{crt,key} (CN = a gateway_id, or the city
# platform's consumer), from the CA already in DIR.
set -euo pipefail

key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:prime256v1 -out "$1" 2>/dev/null; chmod 600 "$1"; }

if [[ ${1:-} == --client ]]; then
    dir=${2:?usage: make-certs.sh --client DIR CN}
    name=${3:?usage: make-certs.sh --client DIR CN}
    cd "$dir"
    [[ -f ca.key ]] || { echo "make-certs: no CA in $PWD; run make-certs.sh $PWD first" >&2; exit 1; }
    key "$name.key"
    openssl req -new -key "$name.key" -out "$name.csr" -subj "/CN=$name" 2>/dev/null
    printf 'extendedKeyUsage = clientAuth\n' >"$name.ext"
    openssl x509 -req -in "$name.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -out "$name.crt" -days 90 \
        -extfile "$name.ext" 2>/dev/null
    rm -f "$name.csr" "$name.ext"
    exit 0
fi

dir=${1:?usage: make-certs.sh DIR [PORT] [GATEWAY_ID]}
port=${2:-18883}
gateway=${3:-gw-01}
mkdir -p "$dir"
cd "$dir"

key ca.key
openssl req -x509 -new -key ca.key -out ca.crt -days 90 -subj "/CN=telemetry-gateway development CA" 2>/dev/null

key server.key
openssl req -new -key server.key -out server.csr -subj "/CN=localhost" 2>/dev/null
printf 'subjectAltName = IP:127.0.0.1, DNS:localhost\nextendedKeyUsage = serverAuth\n' >server.ext
openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out server.crt -days 90 \
    -extfile server.ext 2>/dev/null

key client.key
openssl req -new -key client.key -out client.csr -subj "/CN=$gateway" 2>/dev/null
printf 'extendedKeyUsage = clientAuth\n' >client.ext
openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out client.crt -days 90 \
    -extfile client.ext 2>/dev/null

# An expired client certificate, signed by the same CA, to test that it is refused.
key client-expired.key
openssl req -new -key client-expired.key -out client-expired.csr -subj "/CN=$gateway" 2>/dev/null
mkdir -p ca-db
: >ca-db/index.txt
cat >ca-db/openssl.cnf <<CONF
[ ca ]
default_ca = dev
[ dev ]
database = $PWD/ca-db/index.txt
new_certs_dir = $PWD/ca-db
serial = $PWD/ca-db/serial
default_md = sha256
policy = anything
copy_extensions = none
[ anything ]
commonName = supplied
CONF
echo 1000 >ca-db/serial
openssl ca -batch -config ca-db/openssl.cnf -cert ca.crt -keyfile ca.key -in client-expired.csr \
    -out client-expired.crt -startdate 20200101000000Z -enddate 20200102000000Z -notext 2>/dev/null

rm -f ./*.csr ./*.ext
# Started as root, mosquitto drops to the user named by `user` (default "mosquitto"), which could
# not reach these files in a checkout under /root (0700): the broker keeps the user that started
# it ("root" means: do not switch). A dedicated user of its own is for boards (Deploy/debian).
chmod 644 server.key
chmod 755 .

cat >upstream-mosquitto.conf <<CONF
# Upstream broker for development: TLS only, client certificate required.
user $(id -un)
per_listener_settings true
persistence false
listener $port 127.0.0.1
cafile $PWD/ca.crt
certfile $PWD/server.crt
keyfile $PWD/server.key
require_certificate true
use_identity_as_username true
tls_version tlsv1.2
allow_anonymous false
CONF
echo "make-certs: wrote CA, server, client and expired client certificates and upstream-mosquitto.conf to $PWD"
