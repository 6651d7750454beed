#!/usr/bin/env bash
# Peak RSS per in-flight stream: N streams at once (default 2000) whose events arrive split across
# reads (--mock-split-events: the mock's writes end mid-event, each event completing with the next
# write), each streaming
# 128 tokens over ~4 s so that all are in flight together. The mock runs in its own process, so
# only the client is measured. Per stream = (peak RSS of the N-stream run − peak RSS of a 1-stream
# run) / N. Usage: bash benches/stream_memory.sh [N] [http1|h2c]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-2000}
transport=${2:-http1}
cargo build --release --quiet
bin=target/release/llmvolley
tmp=$(mktemp -d)
trap 'kill "${mock_pid:-}" 2>/dev/null || true; rm -rf "$tmp"' EXIT

source benches/lib.sh
start_mock "$tmp/mock.out" --mock-ttft 1s --mock-itl 25ms --mock-output-tokens 128 --mock-split-events

line='{"model":"gpt-4.1-mini","input":"Tell me a long story about a lighthouse keeper.","stream":true}'
for i in $(seq "$n"); do echo "$line"; done > "$tmp/n.jsonl"
echo "$line" > "$tmp/one.jsonl"
extra=()
[ "$transport" = h2c ] && extra=(--http2)

peak_kb() { # workload concurrency out
    /usr/bin/time -f '%M' -o "$tmp/rss" "$bin" run "$1" --endpoint "$endpoint" -c "$2" -q \
        --ramp-up 1s --out "$3" "${extra[@]}" > "$tmp/summary.txt"
    cat "$tmp/rss"
}
base=$(peak_kb "$tmp/one.jsonl" 1 "$tmp/one")
peak=$(peak_kb "$tmp/n.jsonl" "$n" "$tmp/n")
ok=$(grep -o '[0-9]* ok' "$tmp/summary.txt" | head -1)
python3 - "$base" "$peak" "$n" "$ok" "$transport" <<'EOF'
import sys
base, peak, n, ok, transport = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
print(f"{transport}: {n} streams in flight ({ok}): peak RSS {peak / 1024:.1f} MB, 1-stream base {base / 1024:.1f} MB, "
      f"{(peak - base) / n:.1f} KB per stream (target: under 20 KB)")
EOF
