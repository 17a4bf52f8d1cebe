"""Verdict time for policy tables of 10, 100 and 1,000 policies with CEL conditions.

Printed beside a baseline measured in the same run: a plain dict lookup of the
action type (what a table without conditions, globs or explanations would cost).
Target: p99 under 50 µs at 1,000 policies.

Then the verdict with usage conditions (issue 13): the two budget policies of the README
(``usage.sum("params.amount", "24h") + params.amount > 500`` and ``usage.count("1m") > 20``)
answered from a real database (a throwaway SQLite file, or ``--database-url``) holding 10,000
past requests of 20 agents over a week, beside the plain verdict of the same table without them.
Target: p99 under 1 ms including the usage lookups.

Run: .venv/bin/python bench/policy_eval.py [--requests 20000] [--database-url postgres://...] [--skip-usage]
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


USAGE_TARGET_MS = 1.0


def measure_usage(database_url: str | None, count: int) -> bool:
    """Verdicts reading usage from a database of 10,000 past requests, beside the same table without usage."""
    import os
    import tempfile
    from datetime import timedelta

    workdir = tempfile.mkdtemp(prefix="countersign-bench-usage-")
    os.environ["DATABASE_URL"] = database_url or f"sqlite:///{workdir}/bench.sqlite3"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("COUNTERSIGN_SECRET_KEY", "bench-only")
    import django

    django.setup()
    from django.core.management import call_command
    from django.utils import timezone

    from approvals.models import ActionRequest, Agent, Status
    from approvals.usage import DatabaseUsage

    call_command("migrate", verbosity=0)
    ActionRequest.objects.filter(action_type="issue_refund").delete()
    rng = random.Random(7)
    agents = [Agent.objects.get_or_create(name=f"bench-agent-{i}")[0] for i in range(20)]
    now = timezone.now()
    ActionRequest.objects.bulk_create(
        ActionRequest(
            agent=rng.choice(agents),
            action_type="issue_refund",
            params={"amount": rng.choice([5, 20, 45, 120])},
            summary="refund",
            request_hash="-",
            status=Status.ALLOWED,
            mode="auto",
            risk="low",
            verdict_reason="bench",
            approval_ttl_seconds=900,
        )
        for _ in range(10_000)
    )
    # Spread over the last 7 days (created_at is set on insert).
    for index, pk in enumerate(ActionRequest.objects.filter(action_type="issue_refund").values_list("pk", flat=True)):
        ActionRequest.objects.filter(pk=pk).update(created_at=now - timedelta(seconds=index * 60))

    fallback = CompiledPolicy(id=3, action_pattern="issue_refund", mode="auto")
    with_usage = PolicyTable.build(
        [
            CompiledPolicy(
                id=1,
                action_pattern="issue_refund",
                mode="approve",
                priority=10,
                condition='usage.sum("params.amount", "24h") + params.amount > 500',
            ),
            CompiledPolicy(
                id=2, action_pattern="issue_refund", mode="block", priority=20, condition='usage.count("1m") > 20'
            ),
            fallback,
        ]
    )
    plain = PolicyTable.build(
        [
            CompiledPolicy(
                id=1, action_pattern="issue_refund", mode="approve", priority=10, condition="params.amount > 500"
            ),
            CompiledPolicy(
                id=2, action_pattern="issue_refund", mode="block", priority=20, condition="confidence < 0.1"
            ),
            fallback,
        ]
    )
    clock = time.perf_counter_ns
    usage_ns, plain_ns = [], []
    for index in range(count + 200):
        agent = agents[index % len(agents)]
        facts = RequestFacts(action_type="issue_refund", params={"amount": 40}, confidence=0.9, agent_name=agent.name)
        start = clock()
        evaluate(table=plain, request=facts)
        middle = clock()
        usage = DatabaseUsage(
            agent_id=agent.pk,
            action_type="issue_refund",
            now=timezone.now(),
            queries=with_usage.usage_queries("issue_refund"),
        )
        evaluate(table=with_usage, request=facts, usage=usage)
        end = clock()
        if index >= 200:  # warm-up: connections, statement caches
            plain_ns.append(middle - start)
            usage_ns.append(end - middle)
    u50, u99 = percentiles(usage_ns)
    p50, p99 = percentiles(plain_ns)
    vendor = "PostgreSQL" if (database_url or "").startswith("postgres") else "SQLite"
    print()
    print(f"verdict with usage conditions ({vendor}, 10,000 past requests, 2 usage lookups per verdict):")
    print(f"{'':>8} {'p50':>10} {'p99':>10}")
    print(f"{'plain':>8} {p50:>8.1f}µs {p99:>8.1f}µs")
    print(f"{'usage':>8} {u50:>8.1f}µs {u99:>8.1f}µs   ratio p50 {u50 / p50:.0f}x, p99 {u99 / p99:.0f}x")
    ok = u99 / 1000 < USAGE_TARGET_MS
    print(f"usage verdict p99: {u99 / 1000:.3f} ms (target < {USAGE_TARGET_MS:.0f} ms): {'OK' if ok else 'MISSED'}")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--database-url", default=None, help="a database for the usage figure (default: SQLite)")
    parser.add_argument("--usage-requests", type=int, default=2_000)
    parser.add_argument("--skip-usage", action="store_true")
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
    usage_ok = args.skip_usage or measure_usage(args.database_url, args.usage_requests)
    return 0 if worst_p99 < target and usage_ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
