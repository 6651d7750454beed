#!/usr/bin/env bash
# Open-loop accuracy: `bench --profile constant --rate R` against the mock for D seconds, RUNS times,
# with the mock in a separate process (`separate`, default) or inside llmvolley (`inprocess`, --mock).
# Targets: achieved rate within 1% of R, queue delay p99 under 1 ms. Prints each run (with the share
# of CPU time the hypervisor stole, which stalls every thread on a VM) and the medians. When
# `cyclictest` is installed (Debian: rt-tests), it runs alongside each bench with one thread waking
# every 1/R s at normal priority: its p99 wake-up latency is the floor this machine sets, in the
# same seconds, for any pacer; the last column compares llmvolley's scheduler lag p99 with it.
# Usage: bash benches/rate_accuracy.sh [RATE] [DURATION] [RUNS] [separate|inprocess]
set -euo pipefail
cd "$(dirname "$0")/.."
rate=${1:-2000}
duration=${2:-10s}
runs=${3:-3}
mode=${4:-separate}
cargo build --release --locked -q
bin=target/release/llmvolley
work=$(mktemp -d)
port=18611
"$bin" mock --port "$port" > "$work/mock.log" 2>&1 &
mock=$!
trap 'kill $mock 2>/dev/null; rm -rf "$work"' EXIT
sleep 0.5
if [ "$mode" = inprocess ]; then target=(--mock); else target=(--endpoint "http://127.0.0.1:$port/v1"); fi
echo "mode: $mode, $rate req/s for $duration (after a 1 s warm-up), $runs runs"
printf '%-4s %10s %10s %8s %14s %14s %12s %10s %8s %16s\n' run target achieved error "queue p99 ms" "queue max ms" "lag p99 ms" "client CPU" steal "cyclictest p99"
interval_us=$(python3 -c "print(max(1, round(1e6 / $rate)))")
seconds=$(python3 -c "import sys; d='$duration'; print(int(float(d[:-1]) * (60 if d.endswith('m') else 1)) + 1)")
for i in $(seq "$runs"); do
    if command -v cyclictest >/dev/null; then
        cyclictest -i "$interval_us" -D "$seconds" -q -h 100000 > "$work/cyclictest$i.txt" 2>/dev/null &
    fi
    "$bin" bench workloads/varied-1000.jsonl "${target[@]}" --profile constant \
        --rate "$rate" --duration "$duration" --warmup 1s --quiet --out "$work/run$i" > /dev/null || true
    wait
    python3 - "$work/run$i/summary.json" "$i" "$work/cyclictest$i.txt" <<'PY'
import json, os, sys
s = json.load(open(sys.argv[1]))
floor = "-"
if os.path.exists(sys.argv[3]):
    counts = [tuple(map(int, l.split()[:2])) for l in open(sys.argv[3]) if l[:1].isdigit()]
    total = sum(c for _, c in counts)
    seen = 0
    for us, c in counts:
        seen += c
        if total and seen >= 0.99 * total:
            floor = f"{us / 1000:.3f} ms"
            break
load = s["load"]
target, achieved = load["rate_per_s"], load["achieved_rate_per_s"]
print(f'{sys.argv[2]:<4} {target:>10.1f} {achieved:>10.2f} {100 * (achieved / target - 1):>7.3f}% '
      f'{s["queue_ms"]["p99"]:>14.3f} {s["queue_ms"]["max"]:>14.3f} '
      f'{load["scheduler_lag_ms"]["p99"]:>12.3f} {100 * load["client"]["cpu_cores_used"]:>9.0f}% '
      f'{100 * (load["client"]["steal_share"] or 0):>7.1f}% {floor:>16}')
PY
done | tee "$work/rows.txt"
python3 - "$work/rows.txt" <<'PY'
import statistics, sys
rows = [line.split() for line in open(sys.argv[1])]
error = statistics.median(abs(float(r[3].rstrip('%'))) for r in rows)
queue = statistics.median(float(r[4]) for r in rows)
lag = statistics.median(float(r[6]) for r in rows)
floors = [float(r[9]) for r in rows if len(r) > 10]
floor = f", cyclictest p99 {statistics.median(floors):.3f} ms" if floors else ""
print(f"median: |rate error| {error:.3f}% (target < 1%), queue p99 {queue:.3f} ms (target < 1 ms), "
      f"lag p99 {lag:.3f} ms{floor}")
PY
