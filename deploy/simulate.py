#!/usr/bin/env python3
"""Runs the commands of deploy/kubernetes/job.yaml and merge-job.yaml as local processes against
`llmvolley mock`: N shard "pods" at once (one killed with SIGKILL and run again, as a container
restart would), then the merge Job's command, and checks that the merged folder holds every workload
line exactly once. What it cannot show: the cluster's scheduling, the shared volume, the image.
`.ci/run` runs it (with kubernetes-validate's PyYAML) after the tests. (The Slurm array script runs
under a real Slurm instead: tests/slurm.rs, with deploy/slurm/ci-cluster.sh.)

Usage: python3 deploy/simulate.py [LLMVOLLEY_BINARY]   (default: target/debug/llmvolley)
"""
import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
LINES = 400


def container(path):
    spec = yaml.safe_load(path.read_text())
    return spec, spec["spec"]["template"]["spec"]["containers"][0]


def start_mock(binary):
    mock = subprocess.Popen([binary, "mock", "--port", "0", "--mock-latency", "5ms"], stdout=subprocess.PIPE, text=True)
    line = mock.stdout.readline()
    url = line.split("http://", 1)[1].split()[0]
    return mock, "http://" + url


def check_merged(merged):
    ids = [json.loads(l)["id"] for l in (merged / "records.jsonl").read_text().splitlines()]
    assert len(ids) == LINES and len(set(ids)) == LINES, f"{len(ids)} records, {len(set(ids))} ids"
    summary = json.loads((merged / "summary.json").read_text())
    assert summary["requests"]["ok"] == LINES, summary["requests"]


def kubernetes(binary, bindir, work, url):
    job, shard = container(ROOT / "deploy/kubernetes/job.yaml")
    _, merge = container(ROOT / "deploy/kubernetes/merge-job.yaml")
    n = job["spec"]["completions"]
    assert job["spec"]["parallelism"] == n and job["spec"]["completionMode"] == "Indexed"
    data = work / "k8s"
    (data / "results").mkdir(parents=True)
    shutil.copy(work / "workload.jsonl", data / "workload.jsonl")
    script = shard["args"][0].replace("/data", str(data))
    assert f"--shards {n}" in script, "job.yaml: --shards must equal completions"
    env = dict(os.environ, PATH=f"{bindir}:{os.environ['PATH']}", ENDPOINT=url, OPENAI_API_KEY="sk-simulated")
    pods = [subprocess.Popen(["/bin/sh", "-c", script], env=dict(env, JOB_COMPLETION_INDEX=str(i)),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
            for i in range(n)]
    # Pod 0's container is OOM-killed (SIGKILL) mid-run, then restarted with the same command.
    records = data / "results/shard-0/records.jsonl"
    deadline = time.time() + 60
    while time.time() < deadline and (not records.exists() or len(records.read_text().splitlines()) < 10):
        time.sleep(0.02)
    os.killpg(pods[0].pid, signal.SIGKILL)
    pods[0].wait()
    pods[0] = subprocess.Popen(["/bin/sh", "-c", script], env=dict(env, JOB_COMPLETION_INDEX="0"),
                               stdout=subprocess.DEVNULL)
    codes = [p.wait(timeout=120) for p in pods]
    assert codes == [0] * n, f"shard pods exited {codes}"
    merge_script = merge["args"][0].replace("/data", str(data))
    subprocess.run(["/bin/sh", "-c", merge_script], env=env, check=True, stdout=subprocess.DEVNULL, timeout=120)
    check_merged(data / "results/merged")
    assert (data / "results/merged/report.html").is_file()
    print(f"kubernetes: {n} shard pods (pod 0 killed and restarted), merge and report: {LINES} lines, each once")


def main():
    binary = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else ROOT / "target/debug/llmvolley").resolve()
    work = pathlib.Path(tempfile.mkdtemp())
    bindir = work / "bin"
    bindir.mkdir()
    shutil.copy(binary, bindir / "llmvolley")
    with open(work / "workload.jsonl", "w") as f:
        for i in range(LINES):
            f.write(json.dumps({"model": "gpt-4.1-mini", "input": f"Question {i}: what is {i} squared?"}) + "\n")
    mock, url = start_mock(binary)
    try:
        kubernetes(binary, bindir, work, url)
    finally:
        mock.terminate()
        mock.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
