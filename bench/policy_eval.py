"""Verdict time for policy tables of 10, 100 and 1,000 policies with CEL conditions.

Printed beside a baseline measured in the same run: a plain dict lookup of the
action type (what a table without conditions, globs or explanations would cost).
Target: p99 under 50 µs at 1,000 policies.

Run: .venv/bin/python bench/policy_eval.py [--requests 20000]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from policies.evaluation import CompiledPolicy, PolicyTable, RequestFacts, evaluate

CONDITIONS = [
    "params.amount > 1000",
    '!params.to.endsWith("@example.com")',
    "confidence < 0.8",
    '"finance" in agent.tags',
    'action_type.startsWith("send_")',
]
MODES = ["auto", "log", "approve", "block"]


def build_table(size: int, rng: random.Random) -> tuple[PolicyTable, list[str]]:
    """70% exact names (half with a condition), 25% globs by family, a few catch-alls; conditions throughout."""
    policies = []
    action_types = []
    exact = int(size * 0.7)
    globs = int(size * 0.25)
    for i in range(exact):
        name = f"action_{i}"
        action_types.append(name)
        condition = CONDITIONS[i % len(CONDITIONS)] if i % 2 == 0 else ""
        policies.append(
            CompiledPolicy(id=len(policies) + 1, action_pattern=name, mode=rng.choice(MODES), condition=condition)
        )
        if condition:  # the unconditional fallback for the same name
            policies.append(CompiledPolicy(id=len(policies) + 1, action_pattern=name, mode="approve", priority=-1))
    for j in range(globs):
        policies.append(
            CompiledPolicy(
                id=len(policies) + 1,
                action_pattern=f"family{j}_*",
                mode=rng.choice(MODES),
                condition=CONDITIONS[j % len(CONDITIONS)],
            )
        )
        action_types.extend(f"family{j}_{verb}" for verb in ("create", "delete"))
    while len(policies) < size:
        policies.append(
            CompiledPolicy(
                id=len(policies) + 1, action_pattern="*", mode="approve", priority=-10, condition="confidence < 0.5"
            )
        )
    action_types.extend(f"unknown_{k}" for k in range(20))
    return PolicyTable.build(policies[:size], version=1), action_types


def make_requests(action_types: list[str], count: int, rng: random.Random) -> list[RequestFacts]:
    requests = []
    for _ in range(count):
        requests.append(
            RequestFacts(
                action_type=rng.choice(action_types),
                params={
                    "amount": rng.choice([20, 999, 1001, 25_000]),
                    "to": rng.choice(["a@example.com", "b@customer.org"]),
                },
                context={"trace_id": "t"},
                confidence=rng.random(),
                agent_name="bench-bot",
                agent_tags=("finance",) if rng.random() < 0.5 else (),
            )
        )
    return requests


def percentiles(samples_ns: list[int]) -> tuple[float, float]:
    ordered = sorted(samples_ns)
    return statistics.median(ordered) / 1000, ordered[int(len(ordered) * 0.99) - 1] / 1000


def measure(table: PolicyTable, requests: list[RequestFacts]) -> tuple[list[int], list[int]]:
    baseline = {p.action_pattern: p.mode for p in table.policies if not p.is_glob}
    clock = time.perf_counter_ns
    for request in requests[:2000]:  # warm the candidate memo and the allocator
        evaluate(table=table, request=request)
    verdict_ns, dict_ns = [], []
    for request in requests:
        start = clock()
        evaluate(table=table, request=request)
        verdict_ns.append(clock() - start)
        start = clock()
        baseline.get(request.action_type, "approve")
        dict_ns.append(clock() - start)
    return verdict_ns, dict_ns


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=20_000)
    args = parser.parse_args()
    rng = random.Random(42)
    print(
        f"{'policies':>8} {'verdict p50':>12} {'verdict p99':>12} {'dict p50':>9} {'dict p99':>9} {'p50 ratio':>10} {'p99 ratio':>10}"
    )
    worst_p99 = 0.0
    for size in (10, 100, 1000):
        table, action_types = build_table(size, rng)
        requests = make_requests(action_types, args.requests, rng)
        verdict_ns, dict_ns = measure(table, requests)
        v50, v99 = percentiles(verdict_ns)
        d50, d99 = percentiles(dict_ns)
        worst_p99 = max(worst_p99, v99) if size == 1000 else worst_p99
        print(
            f"{size:>8} {v50:>10.2f}µs {v99:>10.2f}µs {d50:>7.2f}µs {d99:>7.2f}µs {v50 / d50:>9.0f}x {v99 / d99:>9.0f}x"
        )
    target = 50.0
    print(
        f"p99 at 1,000 policies: {worst_p99:.2f} µs (target < {target:.0f} µs): {'OK' if worst_p99 < target else 'MISSED'}"
    )
    return 0 if worst_p99 < target else 1


if __name__ == "__main__":
    raise SystemExit(main())
