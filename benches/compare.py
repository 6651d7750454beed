#!/usr/bin/env python3
"""llmvolley against oha, wrk and a Python aiohttp client on one server (issue 13's comparison).

nginx serves a fixed ~1 KB Responses body on 127.0.0.1; each client runs for SECS seconds at each
concurrency, REPEATS times, pinned to CPU 1 with nginx on CPU 0 (when the machine has two CPUs), and
once unpinned. One table: requests/s, p50/p99 latency, client CPU per request (user + system time /
requests), peak RSS, and the ratios llmvolley/oha, llmvolley/wrk, llmvolley/python, min–max over the
repeats. Read the ratios, not the absolutes. Run by hand (benches/compare.sh), never in CI.

The streaming comparison (--stream) runs the same way against llmvolley's mock in a process of its
own: 128 tokens per answer, one token per event, every event sent at once (no inter-token delay), so
the client parses as fast as it can; llmvolley against a Python aiohttp client that parses every SSE
event (the stack of `vllm bench serve`) and oha (reads the stream, parses nothing: a floor). Then
one paced run (TTFT 50 ms, 10 ms between tokens, 128 tokens) at 64 streams for at least 10 s:
llmvolley's measured TTFT and inter-token latency against the mock's, the client's CPU per stream,
and its peak RSS beside a non-streamed bench of the same length.

Usage: python3 benches/compare.py [--secs 5] [--repeats 3] [--concurrency 1,16,64,256] [--unpinned]
                                  [--stream] [--no-plain]
"""
import argparse
import functools
import json
import os
import pathlib
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
CACHE = pathlib.Path(os.environ.get("LLMVOLLEY_BENCH_CACHE", ROOT / "target" / "bench-tools"))
BODY = {
    "id": "resp_67ccd2bed1ec8190b14f964abc0542670bb6a6b452d3795b",
    "object": "response",
    "created_at": 1741476542,
    "status": "completed",
    "error": None,
    "incomplete_details": None,
    "model": "gpt-4.1-mini-2025-04-14",
    "output": [{
        "type": "message",
        "id": "msg_67ccd2bf17f0819081ff3bb2cf6508e60bb6a6b452d3795b",
        "status": "completed",
        "role": "assistant",
        "content": [{"type": "output_text", "annotations": [],
                     "text": "In a peaceful grove beneath a silver moon, a unicorn named Lumina discovered a hidden pool. " * 6}],
    }],
    "usage": {"input_tokens": 36, "input_tokens_details": {"cached_tokens": 0}, "output_tokens": 87,
              "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 123},
}
REQUEST = {"model": "gpt-4.1-mini", "input": "Write a one-sentence bedtime story about a unicorn."}

PYTHON_CLIENT = r'''
import asyncio, json, sys, time
import aiohttp
url, c, secs, body = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
stream = json.loads(body).get("stream", False)
lat = []
async def worker(session, deadline):
    while time.perf_counter() < deadline:
        t = time.perf_counter()
        async with session.post(url, data=body, headers={"content-type": "application/json"}) as r:
            if stream:
                async for line in r.content:
                    if line.startswith(b"data:"):
                        json.loads(line[5:])
            else:
                json.loads(await r.read())
        lat.append(time.perf_counter() - t)
async def main():
    conn = aiohttp.TCPConnector(limit=c)
    async with aiohttp.ClientSession(connector=conn, timeout=aiohttp.ClientTimeout(total=None)) as s:
        deadline = time.perf_counter() + secs
        start = time.perf_counter()
        await asyncio.gather(*(worker(s, deadline) for _ in range(c)))
        wall = time.perf_counter() - start
    lat.sort()
    q = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))] * 1000
    print(json.dumps({"requests": len(lat), "rps": len(lat) / wall, "p50": q(0.5), "p99": q(0.99)}))
asyncio.run(main())
'''

def tools():
    """wrk and nginx from Debian, oha built once with cargo into the cache, aiohttp in a venv."""
    missing = [p for p in ("wrk", "nginx") if not shutil.which(p) and not pathlib.Path("/usr/sbin/nginx").exists()]
    if missing and os.geteuid() == 0:
        subprocess.run(["apt-get", "install", "-y", "-q", "wrk", "nginx-light"], check=True)
    oha = shutil.which("oha") or str(CACHE / "oha" / "bin" / "oha")
    if not pathlib.Path(oha).exists():
        subprocess.run(["cargo", "install", "oha", "--locked", "--root", str(CACHE / "oha")], check=True)
    venv = CACHE / "venv"
    if not (venv / "bin" / "python").exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "aiohttp"], check=True)
    subprocess.run(["cargo", "build", "--release", "--quiet"], check=True, cwd=ROOT)
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    return {"oha": oha, "wrk": shutil.which("wrk"), "nginx": nginx,
            "python": str(venv / "bin" / "python"), "llmvolley": str(ROOT / "target" / "release" / "llmvolley")}


def start_nginx(nginx, work, pin):
    body = json.dumps(BODY).replace("\\", "\\\\").replace("'", "\\'")
    conf = work / "nginx.conf"
    conf.write_text(textwrap.dedent(f"""
        worker_processes 1;
        pid {work}/nginx.pid;
        error_log {work}/error.log;
        events {{ worker_connections 4096; }}
        http {{
            access_log off;
            keepalive_requests 1000000;
            server {{
                listen 127.0.0.1:18599 backlog=4096;
                location /v1/responses {{
                    default_type application/json;
                    return 200 '{body}';
                }}
            }}
        }}
    """))
    cmd = ([ "taskset", "-c", "0"] if pin else []) + [nginx, "-c", str(conf), "-p", str(work)]
    subprocess.run(cmd, check=True)
    time.sleep(0.3)
    return "http://127.0.0.1:18599/v1"


def timed(cmd, pin):
    """Runs a client; returns its stdout, CPU seconds (user + system) and peak RSS in MB."""
    out = tempfile.NamedTemporaryFile(delete=False)
    full = ["/usr/bin/time", "-f", "%U %S %M", "-o", out.name] + (["taskset", "-c", "1"] if pin else []) + cmd
    result = subprocess.run(full, text=True, capture_output=True)
    user, system, rss = open(out.name).read().split()[-3:]
    os.unlink(out.name)
    if result.returncode not in (0, 1):
        raise RuntimeError(f"{cmd[0]} failed: {result.stderr[-500:]}")
    return result.stdout, float(user) + float(system), int(rss) / 1024


def request_body(stream):
    return json.dumps({**REQUEST, "stream": True} if stream else REQUEST)


def run_oha(t, url, c, secs, pin, work, stream=False):
    data = work / f"request-{stream}.json"
    data.write_text(request_body(stream))
    out, cpu, rss = timed([t["oha"], "-z", f"{secs:g}s", "-c", str(c), "--no-tui", "-m", "POST",
                           "-H", "content-type: application/json", "-D", str(data),
                           "--output-format", "json", f"{url}/responses"], pin)
    j = json.loads(out)
    n = sum(j["statusCodeDistribution"].values())
    lat = j["latencyPercentiles"]
    return {"requests": n, "rps": j["summary"]["requestsPerSec"], "p50": lat["p50"] * 1000,
            "p99": lat["p99"] * 1000, "cpu": cpu, "rss": rss}


def run_wrk(t, url, c, secs, pin, work):
    script = work / "post.lua"
    script.write_text('wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
                      f'wrk.body = {json.dumps(json.dumps(REQUEST))}\n')
    out, cpu, rss = timed([t["wrk"], "-t1", f"-c{c}", f"-d{secs:g}s", "--latency", "-s", str(script),
                           f"{url}/responses"], pin)
    n = int(re.search(r"(\d+) requests in", out).group(1))
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))

    def ms(label):
        m = re.search(rf"{label}%\s+([\d.]+)(us|ms|s)", out)
        return float(m.group(1)) * {"us": 0.001, "ms": 1, "s": 1000}[m.group(2)]
    return {"requests": n, "rps": rps, "p50": ms("50"), "p99": ms("99"), "cpu": cpu, "rss": rss}


def run_python(t, url, c, secs, pin, work, stream=False):
    script = work / "client.py"
    script.write_text(PYTHON_CLIENT)
    out, cpu, rss = timed([t["python"], str(script), f"{url}/responses", str(c), str(secs),
                           request_body(stream)], pin)
    return {**json.loads(out), "cpu": cpu, "rss": rss}


def run_llmvolley(t, url, c, secs, pin, work, stream=False, keep=False):
    workload = work / "w.jsonl"
    workload.write_text(request_body(stream) + "\n")
    out_dir = work / f"llmvolley-{time.monotonic_ns()}"
    _, cpu, rss = timed([t["llmvolley"], "bench", str(workload), "--endpoint", url, "-c", str(c),
                         "--duration", f"{secs:g}s", "-q", "--out", str(out_dir)], pin)
    s = json.loads((out_dir / "summary.json").read_text())
    shutil.rmtree(out_dir)
    result = {"requests": s["requests"]["total"], "rps": s["requests_per_s"],
              "p50": s["latency_ms"]["p50"], "p99": s["latency_ms"]["p99"], "cpu": cpu, "rss": rss}
    if keep:
        result["summary"] = s
    return result


CLIENTS = {"llmvolley": run_llmvolley, "oha": run_oha, "wrk": run_wrk, "python": run_python}


STREAM_CLIENTS = {name: functools.partial(run, stream=True) for name, run in CLIENTS.items()
                  if name != "wrk"}


def start_mock(t, pin, port, *flags):
    cmd = (["taskset", "-c", "0"] if pin else []) + [t["llmvolley"], "mock", "--port", str(port),
                                                      "--mock-output-tokens", "128", *flags]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    proc.stdout.readline()
    return proc, f"http://127.0.0.1:{port}/v1"


def table(rows, clients, baseline_names, unit):
    print(f"| pinned | c | client | {unit}/s | p50 ms | p99 ms | CPU µs/{unit} | peak RSS MB |")
    print("|---|---:|---|---:|---:|---:|---:|---:|")
    for pin, c, results in rows:
        for name, rs in results.items():
            med = lambda k: statistics.median(r[k] for r in rs)
            rng = lambda k: f"{min(r[k] for r in rs):,.0f}–{max(r[k] for r in rs):,.0f}"
            print(f"| {'yes' if pin else 'no'} | {c} | {name} | {med('rps'):,.0f} ({rng('rps')}) | "
                  f"{med('p50'):.2f} | {med('p99'):.2f} | {med('cpu_us'):,.1f} | {med('rss'):.1f} |")
    print()
    heads = " | ".join(f"llmvolley/{b} {k}" for b in baseline_names for k in (f"{unit}/s", f"CPU per {unit}"))
    print(f"| pinned | c | {heads} |")
    print("|---|---:|" + "---:|" * (2 * len(baseline_names)))
    for pin, c, results in rows:
        def ratio(other, key):
            rs = [a[key] / b[key] for a, b in zip(results["llmvolley"], results[other]) if b[key]]
            return f"{statistics.median(rs):.2f} ({min(rs):.2f}–{max(rs):.2f})" if rs else "-"
        cells = " | ".join(f"{ratio(b, 'rps')} | {ratio(b, 'cpu_us')}" for b in baseline_names)
        print(f"| {'yes' if pin else 'no'} | {c} | {cells} |")


def targets_table(rows):
    """The table issue 31 asks for: llmvolley against oha (req/s and CPU per request, the targets
    are ratios of at least 1.0 and at most 1.0) and against Python aiohttp (at least 10x)."""
    print("| pinned | c | oha req/s | llmvolley req/s | ratio | oha µs CPU/req | llmvolley µs CPU/req | ratio "
          "| Python aiohttp req/s | llmvolley / Python |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for pin, c, results in rows:
        med = lambda name, k: statistics.median(r[k] for r in results[name])
        ratio = lambda other, key: statistics.median(
            a[key] / b[key] for a, b in zip(results["llmvolley"], results[other]) if b[key])
        print(f"| {'yes' if pin else 'no'} | {c} | {med('oha', 'rps'):,.0f} | {med('llmvolley', 'rps'):,.0f} | "
              f"{ratio('oha', 'rps'):.2f} | {med('oha', 'cpu_us'):.1f} | {med('llmvolley', 'cpu_us'):.1f} | "
              f"{ratio('oha', 'cpu_us'):.2f}× | {med('python', 'rps'):,.0f} | {ratio('python', 'rps'):.1f}× |")


def measure(clients, t, url, concurrencies, pins, repeats, secs, work):
    rows = []
    for pin in pins:
        for c in concurrencies:
            results = {name: [] for name in clients}
            for _ in range(repeats):
                for name, run in clients.items():
                    r = run(t, url, c, secs, pin, work)
                    r["cpu_us"] = r["cpu"] / max(r["requests"], 1) * 1e6
                    results[name].append(r)
            rows.append((pin, c, results))
    return rows


def paced_streams(t, pin, secs, work):
    """64 streams at a realistic pace (issue 31's method): does llmvolley measure the mock's TTFT and
    ITL, what does a stream cost the client in CPU, and does a streamed bench peak within 5 MB of a
    non-streamed one of the same length (nothing loaded that the run does not use)?"""
    secs = max(secs, 10)
    mock, url = start_mock(t, pin, 18601, "--mock-ttft", "50ms", "--mock-itl", "10ms")
    try:
        r = run_llmvolley(t, url, 64, secs, pin, work, stream=True, keep=True)
        whole = run_llmvolley(t, url, 64, secs, pin, work, stream=False)
    finally:
        mock.terminate()
        mock.wait()
    s = r["summary"]
    print(f"Paced: 64 streams of 128 tokens, mock TTFT 50 ms and 10 ms between tokens, {secs:g} s: "
          f"{r['requests']} streams, TTFT p50 {s['ttft_ms']['p50']:.2f} ms / p99 {s['ttft_ms']['p99']:.2f} ms, "
          f"ITL p50 {s['itl_ms']['p50']:.2f} ms / p99 {s['itl_ms']['p99']:.2f} ms; client CPU "
          f"{r['cpu'] / secs * 100:.1f}% of a core, {r['cpu'] / max(r['requests'], 1) * 1e3:.2f} ms per stream "
          f"(target: at most 1 ms); peak RSS {r['rss']:.1f} MB streamed, {whole['rss']:.1f} MB whole answers "
          f"(target: within 5 MB)")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--secs", type=float, default=5)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--concurrency", default="1,16,64,256")
    ap.add_argument("--unpinned", action="store_true", help="also run every client without pinning")
    ap.add_argument("--stream", action="store_true", help="also compare streaming clients on the mock")
    ap.add_argument("--no-plain", action="store_true", help="skip the nginx (non-streamed) comparison")
    args = ap.parse_args()
    t = tools()
    work = pathlib.Path(tempfile.mkdtemp())
    can_pin = (os.cpu_count() or 1) >= 2 and shutil.which("taskset")
    pins = [True] if can_pin else [False]
    if args.unpinned and can_pin:
        pins.append(False)
    concurrencies = [int(x) for x in args.concurrency.split(",")]
    print(f"# {time.strftime('%Y-%m-%d %H:%M')} UTC, {os.cpu_count()} CPUs, {args.secs:g} s per run, "
          f"{args.repeats} repeats (median, min–max); server on CPU 0, clients on CPU 1 when pinned")
    if not args.no_plain:
        url = start_nginx(t["nginx"], work, can_pin)
        try:
            rows = measure(CLIENTS, t, url, concurrencies, pins, args.repeats, args.secs, work)
        finally:
            subprocess.run([t["nginx"], "-c", str(work / "nginx.conf"), "-p", str(work), "-s", "stop"])
        print("\nNon-streamed, nginx serving a fixed ~1 KB Responses body:\n")
        table(rows, CLIENTS, ["oha", "wrk", "python"], "req")
        print()
        targets_table(rows)
    if args.stream:
        mock, url = start_mock(t, can_pin, 18600, "--mock-ttft", "0s", "--mock-itl", "0s")
        try:
            rows = measure(STREAM_CLIENTS, t, url, concurrencies, pins, args.repeats, args.secs, work)
        finally:
            mock.terminate()
            mock.wait()
        print("\nStreamed, llmvolley's mock in its own process: 128 tokens, one per event, no delay:\n")
        table(rows, STREAM_CLIENTS, ["python", "oha"], "stream")
        print()
        paced_streams(t, can_pin, args.secs, work)


if __name__ == "__main__":
    main()
