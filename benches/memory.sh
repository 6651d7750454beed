#!/usr/bin/env bash
# Memory benchmark: peak RSS of a 1,000,000-line `run` at -c 256 against `llmvolley mock` in a
# process of its own, the client and the mock reported apart (the mock counts input tokens with
# tiktoken: its tables are the mock's, not the client's). Target: client at or under 38 MB.
# Usage: bash benches/memory.sh [LINES] [CONCURRENCY]
set -euo pipefail
cd "$(dirname "$0")/.."
lines=${1:-1000000}
concurrency=${2:-256}
command -v /usr/bin/time >/dev/null || { echo "needs GNU time: apt-get install -y time" >&2; exit 2; }
cargo build --release --locked -q
bin=target/release/llmvolley
work=$(mktemp -d)
trap 'kill "${mock_pid:-}" 2>/dev/null || true; rm -rf "$work"' EXIT
python3 workloads/generate.py "$lines" 11 > "$work/workload.jsonl"
echo "workload: $lines lines, $(du -h "$work/workload.jsonl" | cut -f1)"

source benches/lib.sh
start_mock "$work/mock.out"

/usr/bin/time -v "$bin" run "$work/workload.jsonl" --endpoint "$endpoint" -c "$concurrency" --quiet \
    --out "$work/run" > "$work/stdout.txt" 2> "$work/time.txt" || true
# The mock's peak, read before it is stopped (VmHWM: its high-water resident set).
mock_kb=$(awk '/VmHWM/ {print $2}' "/proc/$mock_pid/status")
cat "$work/stdout.txt"
echo "records.jsonl: $(wc -l < "$work/run/records.jsonl") lines, $(du -h "$work/run/records.jsonl" | cut -f1)"
grep -E "Maximum resident set size|Elapsed \(wall clock\)|Percent of CPU" "$work/time.txt"
rss_kb=$(awk -F: '/Maximum resident set size/ {gsub(/ /, "", $2); print $2}' "$work/time.txt")
echo "client peak RSS: $((rss_kb / 1024)) MB (target: at most 38 MB)"
echo "mock peak RSS (its own process, not the client's): $((mock_kb / 1024)) MB"
