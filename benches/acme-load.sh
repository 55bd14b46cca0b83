#!/bin/sh
# benches/acme-load.sh: whole-flow throughput of hsm-acme with ../shared/bench/acme-load,
# the same load generator pebble-baseline.sh runs against Pebble, so the two are read side
# by side. Builds hsm-acme and acme-load in release mode, sets up a demo CA on a fresh
# SoftHSM token (target/bench-demo), and for each concurrency starts a fresh server, runs
# acme-load, stops the server. Prints acme-load's median table at the end.
#
# Environment: CONCURRENCIES ("1 4 16"), REPEATS (3), ORDERS (300), WARMUP (32),
# HSM_ACME_BENCH_DIR (target/bench-demo), ACME_LOAD_DIR (../shared/bench/acme-load).
# Ports (127.0.0.1): ACME 15010, http-01 15002, publication 15090, mock DNS 14053.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
concurrencies=${CONCURRENCIES:-"1 4 16"}
repeats=${REPEATS:-3}
orders=${ORDERS:-300}
warmup=${WARMUP:-32}
demo=${HSM_ACME_BENCH_DIR:-$repo/target/bench-demo}
load_dir=${ACME_LOAD_DIR:-$repo/../shared/bench/acme-load}
interop=${HSM_ACME_INTEROP_DIR:-$repo/../shared/interop}
out=$demo/results-$(date +%Y%m%d-%H%M%S)

[ -d "$load_dir" ] || { echo "acme-load is not at $load_dir (set ACME_LOAD_DIR)" >&2; exit 2; }
echo "building acme-load and hsm-acme (release)..." >&2
CARGO_TARGET_DIR="$repo/target/acme-load" cargo build --release --quiet \
    --manifest-path "$load_dir/Cargo.toml"
load="$repo/target/acme-load/release/acme-load"
HSM_ACME_DEMO_DIR="$demo" HSM_ACME_PUBLICATION_LISTEN=127.0.0.1:15090 \
    "$repo/softhsm-test/demo.sh" --setup-only >/dev/null
mkdir -p "$out"

"$interop/dns-mock.sh" start --state-dir "$demo/dns" >/dev/null
server_pid=""
stop_server() {
    [ -n "$server_pid" ] || return 0
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
}
cleanup() {
    stop_server
    "$interop/dns-mock.sh" stop --state-dir "$demo/dns" >/dev/null 2>&1 || true
}
trap cleanup EXIT INT TERM

export SOFTHSM2_CONF="$demo/softhsm2.conf"
for run in $(seq 1 "$repeats"); do
    for c in $concurrencies; do
        HSM_ACME_LOG=warn "$repo/target/release/hsm-acme" --config "$demo/hsm-acme.toml" serve \
            --listen 127.0.0.1:15010 --http01-port 15002 --dns-resolver 127.0.0.1:14053 \
            --publication-listen 127.0.0.1:15090 2>>"$out/serve.log" &
        server_pid=$!
        for _ in $(seq 1 100); do
            curl -s -o /dev/null --cacert "$demo/trust-anchor.pem" \
                https://127.0.0.1:15010/directory && break
            sleep 0.2
        done
        echo "run $run, concurrency $c" >&2
        "$load" --directory https://127.0.0.1:15010/directory \
            --ca-bundle "$demo/trust-anchor.pem" --http01-listen 127.0.0.1:15002 \
            --concurrency "$c" --orders "$orders" --warmup "$warmup" \
            --label hsm-acme --cpu-pid "$server_pid" \
            > "$out/hsm-acme-c$c-r$run.json" 2>>"$out/acme-load.log" || true
        stop_server
    done
done
"$load" summarize "$out"/*.json
echo "results: $out" >&2
