#!/usr/bin/env bash
# Coordinated omission: a server that stalls for 2 s once, 4 s into a 10 s constant-rate run at
# 100 req/s with at most 4 requests in flight. llmvolley's latency_from_schedule p99 must show the
# stall (~1.9 s) while its plain latency p99 does not, and match `oha --latency-correction` on the
# same server within 5%. Each tool gets a fresh mock (the stall is timed from the first request).
# Usage: bash benches/stall_vs_oha.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
command -v oha >/dev/null || { echo "needs oha: cargo install oha --locked" >&2; exit 2; }
cargo build --release --locked -q
bin=target/release/llmvolley
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$work"' EXIT
body='{"model":"gpt-4.1-mini","input":"Say hello"}'
echo "$body" > "$work/one.jsonl"
mock() { "$bin" mock --port "$1" --mock-latency 10ms --mock-stall-at 4s --mock-stall-for 2s > /dev/null 2>&1 & sleep 0.5; }
printf '%-4s %16s %16s %16s %16s %8s\n' run "llmvolley lat" "llmvolley sched" "oha corrected" "oha plain" "diff"
for i in $(seq "$runs"); do
    mock 18621; m=$!
    "$bin" bench "$work/one.jsonl" --endpoint http://127.0.0.1:18621/v1 --profile constant --rate 100 \
        --duration 10s --max-inflight 4 --quiet --out "$work/llmvolley$i" > /dev/null || true
    kill $m; wait $m 2>/dev/null || true
    mock 18622; m=$!
    oha -q 100 -z 10s -c 4 --latency-correction -m POST -T application/json -d "$body" --no-tui \
        --output-format json http://127.0.0.1:18622/v1/responses > "$work/oha$i.json"
    kill $m; wait $m 2>/dev/null || true
    mock 18623; m=$!
    oha -q 100 -z 10s -c 4 -m POST -T application/json -d "$body" --no-tui \
        --output-format json http://127.0.0.1:18623/v1/responses > "$work/oha-plain$i.json"
    kill $m; wait $m 2>/dev/null || true
    python3 - "$work" "$i" <<'PY'
import json, sys
work, i = sys.argv[1], sys.argv[2]
s = json.load(open(f"{work}/llmvolley{i}/summary.json"))
corrected = json.load(open(f"{work}/oha{i}.json"))["latencyPercentiles"]["p99"] * 1000
plain = json.load(open(f"{work}/oha-plain{i}.json"))["latencyPercentiles"]["p99"] * 1000
ours = s["latency_from_schedule_ms"]["p99"]
print(f'{i:<4} {s["latency_ms"]["p99"]:>13.1f} ms {ours:>13.1f} ms {corrected:>13.1f} ms {plain:>13.1f} ms '
      f'{100 * (ours / corrected - 1):>7.2f}%')
PY
done | tee "$work/rows.txt"
python3 - "$work/rows.txt" <<'PY'
import statistics, sys
rows = [line.split() for line in open(sys.argv[1])]
med = lambda k: statistics.median(float(r[k]) for r in rows)
print(f"median p99: llmvolley latency {med(1):.1f} ms, latency_from_schedule {med(3):.1f} ms, "
      f"oha --latency-correction {med(5):.1f} ms, oha plain {med(7):.1f} ms; "
      f"difference {statistics.median(float(r[9].rstrip('%')) for r in rows):.2f}% (target within 5%)")
PY
