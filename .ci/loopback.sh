#!/usr/bin/env bash
# Loopback port helpers shared by the quick start and the benchmarks (sourced, not run).

# The first port at or above $1 that nothing on 127.0.0.1 answers on.
free_port() {
    local candidate=$1
    while (exec 3<>"/dev/tcp/127.0.0.1/$candidate") 2>/dev/null; do candidate=$((candidate + 1)); done
    echo "$candidate"
}

# Waits (up to 10 s) until something listens on 127.0.0.1:$1.
wait_port() {
    for _ in $(seq 200); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done
    echo "nothing listens on 127.0.0.1:$1" >&2
    return 1
}
