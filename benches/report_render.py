#!/usr/bin/env python3
"""How long the HTML report takes to render in headless Chromium: a 1-hour run (3,600 per-second rows,
errors every second), a 100-step sweep, and both at once. The page records, in data-drawn-ms, the
milliseconds from the start of its load until its last chart drew; the target is under a second.

The folders are built from one short real run (its histograms and summary) with a time series and a
sweep table stretched to size. Run by hand (needs chromium: apt-get install chromium), never in CI.

Usage: python3 benches/report_render.py [--repeats 5]
"""
import argparse
import csv
import json
import math
import pathlib
import random
import re
import shutil
import statistics
import subprocess
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
BIN = ROOT / "target" / "release" / "llmvolley"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--dump-dom"]


def hour_long_run(base: pathlib.Path, out: pathlib.Path):
    shutil.copytree(base, out)
    rng = random.Random(1)
    with open(out / "timeseries.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["second", "sent", "completed", "ok", "errors", "dropped", "in_flight", "output_tokens",
                    "latency_p50_ms", "latency_p99_ms", "ttft_p50_ms", "ttft_p99_ms", "warmup"])
        for s in range(3600):
            ok = 200 + int(50 * math.sin(s / 300)) + rng.randint(-10, 10)
            w.writerow([s, ok + 2, ok + 2, ok, 2, 0, 16, ok * 30, round(50 + rng.random() * 5, 3),
                        round(90 + rng.random() * 20, 3), round(20 + rng.random(), 3), round(30 + rng.random() * 5, 3), 0])
    # Two failed records a second, of two kinds, for the errors-by-kind chart.
    with open(out / "records.jsonl", "a") as f:
        for s in range(3600):
            for kind in ("server_error", "rate_limit_exceeded"):
                f.write(json.dumps({"id": "x", "line": 1, "attempts": 1, "status": "http_error",
                                    "error": {"kind": kind, "message": "m"}, "sent_at": s * 1000.0 + 1,
                                    "latency_ms": 5.0}) + "\n")


def hundred_step_sweep(base: pathlib.Path, out: pathlib.Path):
    out.mkdir()
    shutil.copy(base / "run.json", out / "run.json")
    steps = []
    for i in range(100):
        rate = 10.0 + i * 10
        lat = 50 + (rate / 900) ** 6 * 400
        steps.append({"step": i + 1, "profile": "constant", "folder": f"steps/{i + 1:03}", "rate_per_s": rate,
                      "sent_per_s": rate, "requests_per_s": min(rate, 900), "output_tokens_per_s": rate * 30,
                      "ttft_p50_ms": lat / 3, "ttft_p99_ms": lat / 2, "latency_p50_ms": lat, "latency_p99_ms": lat * 1.5,
                      "latency_from_schedule_p99_ms": lat * 1.6, "error_rate": 0.0, "goodput_per_s": min(rate, 800),
                      "slo_ttft_share": 1.0, "slo_tpot_share": None, "slo_e2e_share": None, "slo_share": 1.0,
                      "failed_gates": ""})
    (out / "sweep.json").write_text(json.dumps({"steps": steps}))


def render_ms(page: pathlib.Path, work: pathlib.Path) -> float:
    profile = tempfile.mkdtemp(dir=work)
    dom = subprocess.run(["chromium", *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"file://{page}"],
                         capture_output=True, text=True, timeout=120).stdout
    if 'data-ready="1"' not in dom or re.search(r'<div id="errors">\s*[^<\s]', dom):
        raise SystemExit(f"{page}: the report did not render cleanly")
    return float(re.search(r'data-drawn-ms="([0-9.]+)"', dom).group(1))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    subprocess.run(["cargo", "build", "--release", "--locked", "-q"], cwd=ROOT, check=True)
    work = pathlib.Path(tempfile.mkdtemp())
    try:
        base = work / "base"
        subprocess.run([BIN, "bench", ROOT / "workloads/varied-1000.jsonl", "--mock", "--stream", "--mock-ttft", "20ms",
                        "--mock-itl", "1ms", "--duration", "3s", "-c", "16", "-q", "--out", base],
                       check=True, capture_output=True)
        hour_long_run(base, work / "hour")
        hundred_step_sweep(base, work / "sweep")
        cases = {"1-hour run (3,600 s)": [work / "hour"], "100-step sweep": [work / "sweep"],
                 "both, plus the base run": [work / "hour", work / "sweep", base]}
        print(f"| report | HTML size | render ms, median of {args.repeats} (min–max) |\n|---|---:|---:|")
        for name, dirs in cases.items():
            page = work / (re.sub(r"\W+", "-", name) + ".html")
            subprocess.run([BIN, "report", *dirs, "-o", page], check=True, capture_output=True)
            times = [render_ms(page, work) for _ in range(args.repeats)]
            print(f"| {name} | {page.stat().st_size / 1024:.0f} KB | {statistics.median(times):.0f} "
                  f"({min(times):.0f}–{max(times):.0f}) |")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
