#!/usr/bin/env python3
"""Writes a varied, deterministic Responses-API workload: python3 workloads/generate.py LINES [SEED] > out.jsonl

Mixes string and message-array inputs, instructions, max_output_tokens caps, and function tools,
so a run exercises every answer shape the mock produces."""
import json
import random
import sys

SUBJECTS = ["a unicorn", "a lighthouse keeper", "the moon", "a lost robot", "an old oak tree", "a curious cat",
            "a river", "a dragon who hates fire", "a tiny spaceship", "a library at night"]
TASKS = ["Write a one-sentence bedtime story about {s}.", "Describe {s} in three vivid sentences.",
         "Give me five facts a child would enjoy about {s}.", "Write a limerick about {s}.",
         "Explain, step by step, how {s} would plan a picnic."]
MODELS = ["gpt-4.1", "gpt-4.1-mini", "gpt-4o-mini", "gpt-5.1"]
WEATHER_TOOL = {"type": "function", "name": "get_weather", "description": "Current weather for a city.",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"},
                                                                 "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
                               "required": ["city"]}}


def line(rng):
    subject = rng.choice(SUBJECTS)
    prompt = rng.choice(TASKS).format(s=subject)
    body = {"model": rng.choice(MODELS)}
    kind = rng.random()
    if kind < 0.35:
        body["input"] = prompt
    else:
        body["input"] = [{"role": "user", "content": prompt}]
    if rng.random() < 0.3:
        body["instructions"] = "You are a gentle storyteller. Keep answers short."
    if rng.random() < 0.15:
        body["max_output_tokens"] = rng.choice([16, 24, 32])
    if rng.random() < 0.1:
        body["input"] = [{"role": "user", "content": f"What's the weather where {subject} lives?"}]
        body["tools"] = [WEATHER_TOOL]
    return body


def main():
    lines = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    rng = random.Random(int(sys.argv[2]) if len(sys.argv) > 2 else 7)
    out = sys.stdout
    for _ in range(lines):
        out.write(json.dumps(line(rng), separators=(",", ":")) + "\n")


if __name__ == "__main__":
    main()
