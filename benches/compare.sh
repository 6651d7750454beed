#!/usr/bin/env bash
# llmvolley against oha, wrk and Python aiohttp on one nginx server: see benches/compare.py.
# Usage: bash benches/compare.sh [--secs 5] [--repeats 3] [--concurrency 1,16,64,256] [--unpinned]
set -euo pipefail
cd "$(dirname "$0")/.."
exec python3 benches/compare.py "$@"
