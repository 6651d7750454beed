#!/usr/bin/env bash
# Memory benchmark: peak RSS of a 1,000,000-line run against the embedded mock at -c 256.
# Target: under 100 MB. Usage: bash benches/memory.sh [LINES] [CONCURRENCY]
set -euo pipefail
cd "$(dirname "$0")/.."
lines=${1:-1000000}
concurrency=${2:-256}
command -v /usr/bin/time >/dev/null || { echo "needs GNU time: apt-get install -y time" >&2; exit 2; }
cargo build --release --locked -q
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 workloads/generate.py "$lines" 11 > "$work/workload.jsonl"
echo "workload: $lines lines, $(du -h "$work/workload.jsonl" | cut -f1)"
/usr/bin/time -v target/release/llmvolley run "$work/workload.jsonl" --mock -c "$concurrency" --quiet \
    --out "$work/run" > "$work/stdout.txt" 2> "$work/time.txt" || true
cat "$work/stdout.txt"
echo "records.jsonl: $(wc -l < "$work/run/records.jsonl") lines, $(du -h "$work/run/records.jsonl" | cut -f1)"
grep -E "Maximum resident set size|Elapsed \(wall clock\)|Percent of CPU" "$work/time.txt"
rss_kb=$(awk -F: '/Maximum resident set size/ {gsub(/ /, "", $2); print $2}' "$work/time.txt")
echo "peak RSS: $((rss_kb / 1024)) MB (target < 100 MB)"
