#!/usr/bin/env python3
"""TTFT against a server that does not set TCP_NODELAY: llmvolley beside the official OpenAI Python SDK.

A small asyncio server on 127.0.0.1 streams Chat answers as many small writes (the headers, then one
SSE event every 5 ms, 8 of them), with TCP_NODELAY off (Nagle on) or on. Each client sends the same
40 requests one at a time on one kept-alive connection; the table gives TTFT p50/p90 in ms. The
true TTFT is 5 ms: what a client adds beyond it is its own (delayed ACKs meeting the server's
Nagle cost up to 40 ms per event on Linux).

Usage: python3 benches/nagle_ttft.py [LLMVOLLEY_BINARY]   (needs `pip install openai`; default
binary target/release/llmvolley, built with `cargo build --release`).
"""

import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

REQUESTS = 40
EVENT_GAP_S = 0.005


async def handle(reader, writer, nodelay):
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1 if nodelay else 0)
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.decode().split("\r\n"):
                if line.lower().startswith("content-length:"):
                    length = int(line.split(":", 1)[1])
            await reader.readexactly(length)
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n")
            await writer.drain()
            for i in range(8):
                await asyncio.sleep(EVENT_GAP_S)
                chunk = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
                         "choices": [{"index": 0, "delta": {"content": f"w{i} "}, "finish_reason": None}]}
                event = f"data: {json.dumps(chunk)}\n\n".encode()
                writer.write(b"%x\r\n%s\r\n" % (len(event), event))
                await writer.drain()
            tail = [{"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
                     "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}]
            events = b"".join(f"data: {json.dumps(t)}\n\n".encode() for t in tail) + b"data: [DONE]\n\n"
            writer.write(b"%x\r\n%s\r\n0\r\n\r\n" % (len(events), events))
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


def start_server(nodelay):
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    port = []

    async def main():
        server = await asyncio.start_server(lambda r, w: handle(r, w, nodelay), "127.0.0.1", 0)
        port.append(server.sockets[0].getsockname()[1])
        ready.set()
        await server.serve_forever()

    threading.Thread(target=lambda: loop.run_until_complete(main()), daemon=True).start()
    ready.wait()
    return port[0]


def sdk_ttfts(port):
    from openai import OpenAI
    client = OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="x", max_retries=0)
    ttfts = []
    for _ in range(REQUESTS):
        sent = time.perf_counter()
        first = None
        for chunk in client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}], stream=True):
            if first is None and chunk.choices and chunk.choices[0].delta.content:
                first = time.perf_counter()
        ttfts.append((first - sent) * 1000)
    return ttfts


def llmvolley_ttfts(binary, port):
    with tempfile.TemporaryDirectory() as tmp:
        workload = os.path.join(tmp, "w.jsonl")
        with open(workload, "w") as f:
            for _ in range(REQUESTS):
                f.write('{"model":"m","messages":[{"role":"user","content":"hi"}],"stream":true}\n')
        out = os.path.join(tmp, "out")
        subprocess.run([binary, "run", workload, "--api", "chat", "--endpoint", f"http://127.0.0.1:{port}/v1",
                        "-c", "1", "-q", "--out", out], check=False, stdout=subprocess.DEVNULL)
        with open(os.path.join(out, "records.jsonl")) as f:
            return [json.loads(line)["ttft_ms"] for line in f]


def row(name, server, ttfts):
    ttfts = sorted(ttfts)
    p90 = ttfts[int(len(ttfts) * 0.9) - 1]
    print(f"| {name} | {server} | {statistics.median(ttfts):.1f} | {p90:.1f} |")


def main():
    binary = sys.argv[1] if len(sys.argv) > 1 else "target/release/llmvolley"
    print("| client | server | TTFT p50 (ms) | TTFT p90 (ms) |\n|---|---|---:|---:|")
    for nodelay in (False, True):
        server = "TCP_NODELAY on" if nodelay else "Nagle (no TCP_NODELAY)"
        port = start_server(nodelay)
        row("llmvolley", server, llmvolley_ttfts(binary, port))
        try:
            row("openai SDK", server, sdk_ttfts(port))
        except ImportError:
            print(f"| openai SDK | {server} | (pip install openai) | |")


if __name__ == "__main__":
    main()
