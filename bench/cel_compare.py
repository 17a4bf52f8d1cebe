"""Compare the two CEL implementations on PyPI on our condition examples.

Run: .venv/bin/python bench/cel_compare.py
"""

from __future__ import annotations

import statistics
import time

import cel
import celpy

EXAMPLES = [
    ("params.amount > 1000", True),
    ('!params.to.endsWith("@example.com")', True),
    ("confidence < 0.8", True),
    ('agent.name == "support-bot" && "finance" in agent.tags', True),
    ('action_type.startsWith("send_")', True),
    ("params.missing > 3", "error"),
]
FACTS = {
    "params": {"amount": 20000, "to": "someone@customer.org"},
    "context": {},
    "confidence": 0.5,
    "agent": {"name": "support-bot", "tags": ["finance"]},
    "action_type": "send_external_email",
}


def timed(fn, n=20000):
    samples = []
    for _ in range(n):
        t0 = time.perf_counter_ns()
        fn()
        samples.append(time.perf_counter_ns() - t0)
    samples.sort()
    return statistics.median(samples) / 1000, samples[int(len(samples) * 0.99)] / 1000


def rust_impl():
    results = []
    for src, expected in EXAMPLES:
        program = cel.compile(src)
        try:
            got = program.execute(FACTS)
        except Exception as exc:
            got = f"error: {type(exc).__name__}"
        results.append((src, expected, got))
    program = cel.compile("params.amount > 1000")
    return results, timed(lambda: program.execute(FACTS))


def python_impl():
    env = celpy.Environment()
    activation = celpy.json_to_cel(FACTS)
    results = []
    for src, expected in EXAMPLES:
        program = env.program(env.compile(src))
        try:
            got = program.evaluate(celpy.json_to_cel(FACTS))
            if isinstance(got, celpy.CELEvalError):
                got = f"error: {got}"
        except Exception as exc:
            got = f"error: {type(exc).__name__}"
        results.append((src, expected, got))
    program = env.program(env.compile("params.amount > 1000"))
    return (
        results,
        timed(lambda: program.evaluate(celpy.json_to_cel(FACTS)), n=5000),
        timed(lambda: program.evaluate(activation), n=5000),
    )


if __name__ == "__main__":
    results, (p50, p99) = rust_impl()
    print("common-expression-language", cel.__file__)
    for row in results:
        print("  ", row)
    print(f"   params.amount > 1000: p50 {p50:.2f} µs  p99 {p99:.2f} µs (dict in)")
    results, (p50, p99), (p50b, p99b) = python_impl()
    print("cel-python")
    for row in results:
        print("  ", row)
    print(f"   params.amount > 1000: p50 {p50:.2f} µs  p99 {p99:.2f} µs (incl. json_to_cel)")
    print(f"   params.amount > 1000: p50 {p50b:.2f} µs  p99 {p99b:.2f} µs (pre-converted activation)")
