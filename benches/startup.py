#!/usr/bin/env python3
"""Process start to first request sent: llmvolley run, llmvolley bench, oha and curl.

A listening socket on 127.0.0.1 stands in for the server; the time runs from just before the client
process is spawned until the first bytes of its request arrive, then the socket answers one small
Responses body so the client ends normally. 15 runs each; median, min and max. Run by hand.

Usage: python3 benches/startup.py   (oha is looked up on PATH, then under target/bench-tools)
"""
import json
import os
import pathlib
import shutil
import socket
import statistics
import subprocess
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
BODY = json.dumps({"id": "resp_1", "object": "response", "status": "completed", "model": "m", "output": [],
                   "usage": {"input_tokens": 1, "output_tokens": 1, "total_tokens": 2}}).encode()
ANSWER = (b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n"
          b"connection: close\r\n\r\n%s" % (len(BODY), BODY))


def first_request_ms(command_for):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    url = f"http://127.0.0.1:{server.getsockname()[1]}/v1"
    started = time.perf_counter()
    client = subprocess.Popen(command_for(url), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    conn, _ = server.accept()
    conn.recv(65536)
    arrived = time.perf_counter()
    conn.sendall(ANSWER)
    conn.close()
    client.wait(timeout=10)
    server.close()
    return (arrived - started) * 1000


def main():
    subprocess.run(["cargo", "build", "--release", "--quiet"], check=True, cwd=ROOT)
    work = pathlib.Path(tempfile.mkdtemp())
    workload = work / "w.jsonl"
    workload.write_text(json.dumps({"model": "gpt-4.1-mini", "input": "hi"}) + "\n")
    llmvolley = str(ROOT / "target" / "release" / "llmvolley")
    out = lambda: str(work / f"out-{time.monotonic_ns()}")
    clients = {
        "llmvolley run": lambda u: [llmvolley, "run", str(workload), "--endpoint", u, "-q", "--out", out()],
        "llmvolley bench": lambda u: [llmvolley, "bench", str(workload), "--endpoint", u, "-q",
                                      "--requests", "1", "--out", out()],
        "curl": lambda u: ["curl", "-s", "-XPOST", "-d", "{}", u + "/responses"],
    }
    oha = shutil.which("oha") or str(ROOT / "target" / "bench-tools" / "oha" / "bin" / "oha")
    if os.path.exists(oha):
        clients["oha"] = lambda u: [oha, "-n", "1", "--no-tui", "-m", "POST", "-d", "{}", u + "/responses"]
    print(f"# {time.strftime('%Y-%m-%d %H:%M')} UTC: process start to first request sent, 15 runs")
    print("| client | median ms | min ms | max ms |")
    print("|---|---:|---:|---:|")
    for name, command_for in clients.items():
        times = [first_request_ms(command_for) for _ in range(15)]
        print(f"| {name} | {statistics.median(times):.1f} | {min(times):.1f} | {max(times):.1f} |")
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
