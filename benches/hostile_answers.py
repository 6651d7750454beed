#!/usr/bin/env python3
"""Client RSS and time against a hostile server: answers of any size must not hurt the client.

A raw socket server on 127.0.0.1 serves four answers, each to one request of its own run:
  big     a 200 with a 512 MB JSON body (one output_text of 'x')
  error   a 500 with a 200 MB text body
  endless a stream that never ends: a 64 KB delta every ms (the run uses --timeout 20s)
  blank   a 200 whose body is 128 MB of spaces
and prints, per case, the client's peak RSS, its wall time, the record's status and error kind, and
the size of records.jsonl.

Usage: python3 benches/hostile_answers.py [LLMVOLLEY_BINARY] [CASE...]
(default binary target/release/llmvolley, built with `cargo build --release`; default: every case).
"""

import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time

MB = 1 << 20
CHUNK = b"x" * MB


def serve(conn):
    try:
        data = b""
        while b"\r\n\r\n" not in data:
            more = conn.recv(65536)
            if not more:
                return
            data += more
        head, _, rest = data.partition(b"\r\n\r\n")
        path = head.split(b" ")[1].decode()
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        while len(rest) < length:
            rest += conn.recv(65536)
        case = path.rsplit("/", 1)[-1]
        if case == "big":
            opening = b'{"object":"response","status":"completed","output":[{"type":"message","content":[{"type":"output_text","text":"'
            closing = b'"}]}]}'
            size = len(opening) + 512 * MB + len(closing)
            conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n" % size + opening)
            for _ in range(512):
                conn.sendall(CHUNK)
            conn.sendall(closing)
        elif case == "error":
            conn.sendall(b"HTTP/1.1 500 Internal Server Error\r\ncontent-type: text/plain\r\ncontent-length: %d\r\n\r\n" % (200 * MB))
            for _ in range(200):
                conn.sendall(CHUNK)
        elif case == "endless":
            conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n")
            delta = json.dumps({"choices": [{"index": 0, "delta": {"content": "y" * 65536}}]})
            event = f"data: {delta}\n\n".encode()
            framed = b"%x\r\n%s\r\n" % (len(event), event)
            deadline = time.time() + 60
            while time.time() < deadline:
                conn.sendall(framed)
                time.sleep(0.001)
        else:
            conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n" % (128 * MB))
            spaces = b" " * MB
            for _ in range(128):
                conn.sendall(spaces)
    except OSError:
        pass
    finally:
        conn.close()


def start():
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)

    def accept():
        while True:
            conn, _ = listener.accept()
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    return listener.getsockname()[1]


def run(binary, port, case):
    with tempfile.TemporaryDirectory() as tmp:
        workload = os.path.join(tmp, "w.jsonl")
        body = {"model": "m", "input": "hi", "stream": case == "endless"}
        with open(workload, "w") as f:
            f.write(json.dumps({"custom_id": case, "method": "POST", "url": f"/v1/case/{case}", "body": body}) + "\n")
        out = os.path.join(tmp, "out")
        timing = os.path.join(tmp, "time")
        extra = ["--timeout", "20s"] if case == "endless" else []
        subprocess.run(["/usr/bin/time", "-f", "%M %e", "-o", timing, binary, "run", workload, "--endpoint",
                        f"http://127.0.0.1:{port}/v1", "--max-retries", "0", "-q", "--out", out, *extra],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        rss_kb, wall = open(timing).read().split()[-2:]  # the last line: "Command exited" may precede
        path = os.path.join(out, "records.jsonl")
        line = open(path).readline() if os.path.exists(path) else ""
        if line.strip():
            record = json.loads(line)
            kind = (record.get("error") or {}).get("kind") or ""
            outcome = f"{record['status']} {kind}"
        else:
            outcome = "no record (the client died or is still reading)"
        size = os.path.getsize(path) if os.path.exists(path) else 0
        print(f"| {case} | {int(rss_kb) / 1024:.0f} | {float(wall):.2f} | {outcome} | {size / MB:.2f} |")


def main():
    binary = sys.argv[1] if len(sys.argv) > 1 else "target/release/llmvolley"
    cases = sys.argv[2:] or ["big", "error", "endless", "blank"]
    port = start()
    print("| case | peak RSS (MB) | wall (s) | record | records.jsonl (MB) |\n|---|---:|---:|---|---:|")
    for case in cases:
        run(binary, port, case)


if __name__ == "__main__":
    main()
