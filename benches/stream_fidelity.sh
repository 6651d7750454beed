#!/usr/bin/env bash
# Streaming fidelity: against `llmvolley mock` in a process of its own (serving from all cores) with
# 50 ms TTFT, 10 ms per token and 128 output tokens, at 1, 100, 500 and 1000 concurrent streams, over
# HTTP/1.1 and over cleartext HTTP/2 (--http2), reports the median and p99 of (measured TTFT -
# configured TTFT), the ITL standard deviation and the CPU the client used (the mock's is its own,
# so the figure measures the client, not the mock; both share the machine's 2 cores).
#
# Each level sends 3 x streams requests (at least 20); the first `streams` start evenly over one
# request's duration (--ramp-up 1.32s) so equal-length requests do not march in lock-step waves.
# Usage: bash benches/stream_fidelity.sh [LEVELS...]   (default: 1 100 500 1000)
set -euo pipefail
cd "$(dirname "$0")/.."
levels=("$@")
[ ${#levels[@]} -gt 0 ] || levels=(1 100 500 1000)
cargo build --release --locked -q
work=$(mktemp -d)
trap 'kill "${mock_pid:-}" 2>/dev/null || true; rm -rf "$work"' EXIT
ulimit -n 65536 2>/dev/null || true
source benches/lib.sh
start_mock "$work/mock.out" --mock-ttft 50ms --mock-itl 10ms --mock-output-tokens 128
printf '| streams | transport | requests | TTFT error p50 (ms) | TTFT error p99 (ms) | ITL mean (ms) | ITL stdev (ms) | CPU |\n'
printf '|---:|---|---:|---:|---:|---:|---:|---:|\n'
for c in "${levels[@]}"; do
    requests=$(( c * 3 > 20 ? c * 3 : 20 ))
    workload="$work/w$c.jsonl"
    for i in $(seq 1 "$requests"); do
        printf '{"model":"gpt-4.1-mini","input":"Tell me story number %d.","stream":true}\n' "$i"
    done > "$workload"
    for transport in http1 http2; do
        flag=()
        [ "$transport" = http2 ] && flag=(--http2)
        out="$work/run-$c-$transport"
        /usr/bin/time -f '%P' -o "$work/cpu" target/release/llmvolley run "$workload" --endpoint "$endpoint" \
            -c "$c" --ramp-up 1.32s "${flag[@]}" --quiet --out "$out" > /dev/null
        python3 - "$out/summary.json" "$c" "$transport" "$requests" "$(cat "$work/cpu")" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
assert s["requests"]["ok"] == int(sys.argv[4]), s["requests"]
t, i = s["ttft_ms"], s["itl_ms"]
print(f"| {sys.argv[2]} | {sys.argv[3]} | {sys.argv[4]} | {t['p50'] - 50:.2f} | {t['p99'] - 50:.2f} | {i['mean']:.2f} | {i['stdev']:.2f} | {sys.argv[5]} |")
PY
    done
done
