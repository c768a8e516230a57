#!/usr/bin/env bash
# A three-node RabbitMQ cluster (Debian's rabbitmq-server, MQTT plugin, quorum queues) on
# loopback: the city broker for development and for the project's tests. The production
# shape of the same configuration, on three machines, is described in Deploy/city/README.md.
#
#   bash Deploy/city/cluster.sh up DIR [GATEWAY_ID...]   certificates, configs, start, join, policy
#   bash Deploy/city/cluster.sh add-gateway DIR GATEWAY_ID
#   bash Deploy/city/cluster.sh stop-node DIR N [--kill]  N = 1..3; --kill is kill -9 of the node
#   bash Deploy/city/cluster.sh start-node DIR N
#   bash Deploy/city/cluster.sh status DIR
#   bash Deploy/city/cluster.sh down DIR
#
# `up` writes DIR/cluster.env (each node's MQTT-over-TLS and AMQP-over-TLS port), DIR/certs
# (a CA, one server certificate for the nodes, a client certificate per gateway with
# CN = gateway_id, one for the consumer "city-platform" and one for the fleet OTA depot
# "ota-depot"). Every listener is TLS with a client certificate; the certificate's CN is the
# account (ssl_cert_login): there are no passwords. Gateways may publish only under
# city/{their CN}/... (and their fleet fetch requests) and read only the fleet OTA topics; the
# consumer may only read the quorum queue "city-platform" (replicated on all three nodes), which
# collects city/#.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
rmq=/usr/lib/rabbitmq/bin
command=${1:?usage: cluster.sh up|add-gateway|stop-node|start-node|status|down DIR ...}
dir=${2:?usage: cluster.sh $command DIR ...}
shift 2
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
prefix=${CITY_TOPIC_PREFIX:-city}

[[ -x $rmq/rabbitmq-server ]] || { echo "cluster.sh: rabbitmq-server is missing: apt-get install rabbitmq-server" >&2; exit 1; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Node names carry the cluster's tag (in cluster.env): two clusters on one machine, or one left
# over from a killed run, do not take each other's names in epmd.
node_name() { echo "city$1-$TAG@localhost"; }

node_env() { # node number -> environment of that node and of the CLI talking to it
    local n=$1
    export HOME=$dir RABBITMQ_NODENAME=$(node_name "$n")
    export RABBITMQ_CONFIG_FILE=$dir/node$n/rabbitmq.conf
    export RABBITMQ_ADVANCED_CONFIG_FILE=$dir/node$n/advanced.config
    export RABBITMQ_CONF_ENV_FILE=$dir/rabbitmq-env.conf
    export RABBITMQ_ENABLED_PLUGINS_FILE=$dir/enabled_plugins
    export RABBITMQ_MNESIA_BASE=$dir/node$n/mnesia RABBITMQ_LOG_BASE=$dir/node$n/log
    export RABBITMQ_PID_FILE=$dir/node$n/pid
    # shellcheck disable=SC2154 # set by cluster.env
    export RABBITMQ_DIST_PORT=$(eval echo "\$NODE${n}_DIST")
}

ctl() { local n=$1; shift; (node_env "$n"; "$rmq/rabbitmqctl" -q -n "$(node_name "$n")" "$@"); }

client_cert() { # CN -> certs/CN.{crt,key}, signed by the cluster's CA
    [[ -f $dir/certs/$1.crt ]] || bash "$here/../make-certs.sh" --client "$dir/certs" "$1"
}

valid_id() { [[ $1 =~ ^[A-Za-z0-9_-]{1,64}$ ]] || { echo "cluster.sh: \"$1\" is not a gateway id for the city broker (1 to 64 of A-Z a-z 0-9 _ -: a dot would split the routing key)" >&2; exit 2; }; }

gateway_definitions() { # gateway ids -> the users, permissions and topic permissions, as JSON lists
    python3 - "$prefix" "$@" <<'PY'
import json, sys
prefix, ids = sys.argv[1], sys.argv[2:]
users = [{"name": i, "password_hash": "", "hashing_algorithm": "rabbit_password_hashing_sha256", "tags": []} for i in ids]
p = prefix.replace(".", "\\.")
# The fleet link's persistent session (client id telemetry-gateway-ID-ota): its own queue only.
session = lambda i: "^mqtt-subscription-telemetry-gateway-%s-otaqos[01]$" % i
perms = [{"user": i, "vhost": "/", "configure": session(i), "write": "^amq\\.topic$|" + session(i),
          "read": "^amq\\.topic$|" + session(i)} for i in ids]
# {username} is expanded by the broker: one rule, every gateway confined to its own prefix
# (and its fetch requests); it may read the fleet's announcements and the chunks sent to it.
topics = [{"user": i, "vhost": "/", "exchange": "amq.topic",
           "write": "^" + p + "\\.{username}\\.|^" + p + "-ota\\.from\\.{username}\\.",
           "read": "^" + p + "-ota\\.(releases|orders|tally|to\\.{username}\\.)"} for i in ids]
print(json.dumps({"users": users, "permissions": perms, "topic_permissions": topics}))
PY
}

case $command in
up)
    for id in "$@"; do valid_id "$id"; done
    if [[ ! -f $dir/cluster.env ]]; then
        {
            echo "TAG=$(head -c 4 /dev/urandom | od -An -tx1 | tr -d ' \n')"
            for n in 1 2 3; do
                echo "NODE${n}_MQTT=$(free_port)"
                echo "NODE${n}_AMQP=$(free_port)"
                echo "NODE${n}_DIST=$(free_port)"
            done
        } >"$dir/cluster.env"
    fi
    # shellcheck disable=SC1091
    source "$dir/cluster.env"
    if [[ ! -f $dir/certs/ca.crt ]]; then
        bash "$here/../make-certs.sh" "$dir/certs" 0 gw-01 >/dev/null
    fi
    client_cert city-platform
    client_cert ota-depot
    for id in "$@"; do client_cert "$id"; done
    : >"$dir/rabbitmq-env.conf"
    echo '[rabbitmq_mqtt,rabbitmq_auth_mechanism_ssl].' >"$dir/enabled_plugins"
    [[ -f $dir/.erlang.cookie ]] || { head -c 30 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$dir/.erlang.cookie"; chmod 400 "$dir/.erlang.cookie"; }
    for n in 1 2 3; do
        mkdir -p "$dir/node$n/log" "$dir/node$n/mnesia"
        mqtt=$(eval echo "\$NODE${n}_MQTT") amqp=$(eval echo "\$NODE${n}_AMQP")
        sed -e "s|@CERTS@|$dir/certs|g" -e "s|@MQTT@|127.0.0.1:$mqtt|" -e "s|@AMQP@|127.0.0.1:$amqp|" \
            "$here/rabbitmq/rabbitmq.conf" >"$dir/node$n/rabbitmq.conf"
        cat >>"$dir/node$n/rabbitmq.conf" <<CONF
cluster_formation.peer_discovery_backend = classic_config
cluster_formation.classic_config.nodes.1 = $(node_name 1)
cluster_formation.classic_config.nodes.2 = $(node_name 2)
cluster_formation.classic_config.nodes.3 = $(node_name 3)
# Loopback development cluster: smaller than production.
vm_memory_high_watermark.absolute = 256MiB
disk_free_limit.absolute = 50MB
CONF
        echo '[].' >"$dir/node$n/advanced.config"
    done
    # One node first, then the others join it: started together, two could each form a cluster.
    for n in 1 2 3; do
        bash "$0" start-node "$dir" "$n"
    done
    python3 - "$here/rabbitmq/definitions.json" "$dir/definitions.json" "$prefix" <<'PY'
import json, sys
definitions = json.load(open(sys.argv[1]))
prefix = sys.argv[3]
for b in definitions["bindings"]:
    b["routing_key"] = prefix + ".#"
for t in definitions["topic_permissions"]:
    for k in ("write", "read"):
        t[k] = t[k].replace("^city", "^" + prefix.replace(".", "\\."))
json.dump(definitions, open(sys.argv[2], "w"), indent=1)
PY
    # Declared once all three have joined, so the quorum queue has a member on each.
    ctl 1 import_definitions "$dir/definitions.json" >/dev/null
    if [[ $# -gt 0 ]]; then
        gateway_definitions "$@" >"$dir/gateways.json"
        ctl 1 import_definitions "$dir/gateways.json" >/dev/null
    fi
    members=$(ctl 1 eval 'length(rabbit_nodes:all_running()).')
    [[ $members == 3 ]] || { echo "cluster.sh: only $members nodes running" >&2; exit 1; }
    echo "cluster.sh: 3 nodes up in $dir; ports in $dir/cluster.env"
    ;;
add-gateway)
    # shellcheck disable=SC1091
    source "$dir/cluster.env"
    id=${1:?usage: cluster.sh add-gateway DIR GATEWAY_ID}
    valid_id "$id"
    client_cert "$id"
    gateway_definitions "$id" >"$dir/gateway-$id.json"
    for n in 1 2 3; do
        if ctl "$n" import_definitions "$dir/gateway-$id.json" >/dev/null 2>&1; then
            echo "cluster.sh: gateway $id may publish under $prefix/$id/; certificate $dir/certs/$id.crt"
            exit 0
        fi
    done
    echo "cluster.sh: no node answered" >&2
    exit 1
    ;;
start-node)
    # shellcheck disable=SC1091
    source "$dir/cluster.env"
    n=${1:?usage: cluster.sh start-node DIR N}
    (
        node_env "$n"
        cd "$dir"
        setsid "$rmq/rabbitmq-server" >>"$dir/node$n/log/console.log" 2>&1 </dev/null &
    )
    for _ in $(seq 1 120); do
        if ctl "$n" await_startup --timeout 2 >/dev/null 2>&1; then exit 0; fi
        sleep 1
    done
    echo "cluster.sh: node $n did not start; see $dir/node$n/log" >&2
    tail -20 "$dir/node$n/log/console.log" >&2
    exit 1
    ;;
stop-node)
    # shellcheck disable=SC1091
    source "$dir/cluster.env"
    n=${1:?usage: cluster.sh stop-node DIR N [--kill]}
    if [[ ${2:-} == --kill ]]; then
        pid=$(cat "$dir/node$n/pid" 2>/dev/null || true)
        [[ -n $pid ]] && kill -9 "$pid" 2>/dev/null || true
        # The listener is gone once the VM is: wait for that, not for a fixed time.
        port=$(eval echo "\$NODE${n}_MQTT")
        for _ in $(seq 1 100); do
            python3 -c "import socket,sys; s=socket.socket(); sys.exit(s.connect_ex(('127.0.0.1',$port))==0)" && break
            sleep 0.1
        done
    else
        ctl "$n" stop >/dev/null
    fi
    ;;
status)
    # shellcheck disable=SC1091
    source "$dir/cluster.env"
    for n in 1 2 3; do
        if ctl "$n" status >/dev/null 2>&1; then
            ctl "$n" cluster_status | sed -n '/Running Nodes/,/^$/p'
            (node_env "$n"; "$rmq/rabbitmq-queues" -q -n "$(node_name "$n")" quorum_status city-platform) || true
            exit 0
        fi
    done
    echo "cluster.sh: no node is running" >&2
    exit 1
    ;;
down)
    # shellcheck disable=SC1091
    source "$dir/cluster.env"
    for n in 3 2 1; do ctl "$n" stop >/dev/null 2>&1 || bash "$0" stop-node "$dir" "$n" --kill; done
    ;;
*)
    echo "cluster.sh: unknown command $command" >&2
    exit 2
    ;;
esac
