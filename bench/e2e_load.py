"""bench/e2e.py's load: agents and reviewers driven over HTTP and websockets, each step timed."""

from __future__ import annotations

import argparse
import asyncio
import collections
import gc
import secrets
import time
from dataclasses import dataclass
from typing import Any

from bench.e2e_cpu import CpuMeter
from bench.e2e_shape import People

SUBMIT_APPROVE = "send_external_email"  # held for a reviewer by the default policies
SUBMIT_AUTO = "search_web"  # allowed at once by the default policies


def body(action_type: str, n: int = 0) -> dict[str, Any]:
    """A submission of its own task (a fresh ``task_id``): identical pending ones would collapse into one card."""
    return {
        "action_type": action_type,
        "params": {"to": "customer@example.org", "subject": f"Your refund {n}", "body": "It is on its way."},
        "evidence": [{"title": "Ticket 42", "url": "https://tickets.example/42", "excerpt": "Where is my refund?"}],
        "summary": "Tell the customer their refund is on its way",
        "confidence": 0.82,
        "context": {"trace_id": f"bench-{n}", "task_id": secrets.token_hex(8)},
    }


def pct(values: list[float], p: float) -> float:
    """Nearest-rank percentile (``p`` in 0-100)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))]


# --- the measurements --------------------------------------------------------------------------


@dataclass
class Row:
    what: str
    measured: str
    target: str
    ratio: str
    ok: bool | None


class Bench:
    def __init__(self, url: str, people: People, args: argparse.Namespace) -> None:
        import httpx

        self.url = url
        self.people = people
        self.args = args
        # Idle connections are dropped before uvicorn drops them (its keep-alive timeout is 5 s, httpx's default
        # too): otherwise a request now and then goes out on a connection the server is closing, and fails.
        limits = httpx.Limits(
            max_connections=args.waiters + 100, max_keepalive_connections=args.waiters + 100, keepalive_expiry=2
        )
        self.http = httpx.AsyncClient(base_url=url, timeout=120, limits=limits)
        self.rows: list[Row] = []
        self.cpu: CpuMeter | None = None
        self.last_cpu: dict[str, float] = {}

    def agent_headers(self, i: int = 0) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.people.agent_keys[i % len(self.people.agent_keys)]}"}

    def reviewer_headers(self) -> dict[str, str]:
        return {"Cookie": self.people.decider_cookie, "X-CSRFToken": self.people.csrf, "Referer": self.url + "/queue/"}

    async def submit(self, action_type: str, n: int = 0, agent: int = 0) -> dict[str, Any]:
        response = await self.http.post(
            "/api/v1/actions/", json=body(action_type, n), headers=self.agent_headers(agent)
        )
        assert response.status_code == 201, response.text
        return response.json()

    async def decide(self, request_id: str) -> float:
        started = time.perf_counter()
        response = await self.http.post(
            f"/queue/requests/{request_id}/decide", json={"decision": "approve"}, headers=self.reviewer_headers()
        )
        assert response.status_code == 200, response.text
        return time.perf_counter() - started

    async def baseline_latency(self, n: int) -> list[float]:
        times = []
        for i in range(n):
            started = time.perf_counter()
            response = await self.http.post("/bench/baseline/", json=body(SUBMIT_AUTO, i))
            assert response.status_code == 201, response.text
            times.append(time.perf_counter() - started)
        return times

    async def throughput(
        self, path: str, *, agents: int, seconds: float, authenticated: bool, keys: list[str] | None = None
    ) -> float:
        """Requests per second from ``agents`` concurrent clients posting back to back for ``seconds``.

        With a CPU meter (the bench started the servers itself), ``last_cpu`` is then the CPU each
        request cost each process, in milliseconds.
        """
        done = 0
        stop_at = time.perf_counter() + seconds
        cpu_before = self.cpu.read() if self.cpu else None

        async def one(i: int) -> None:
            nonlocal done
            headers = self.agent_headers(i) if authenticated else {}
            if keys:
                headers = {"Authorization": f"Bearer {keys[i % len(keys)]}"}
            n = 0
            while time.perf_counter() < stop_at:
                response = await self.http.post(path, json=body(SUBMIT_AUTO, n), headers=headers)
                assert response.status_code == 201, response.text
                done += 1
                n += 1

        started = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(agents)))
        elapsed = time.perf_counter() - started
        if self.cpu and cpu_before:
            self.last_cpu = self.cpu.per_request(cpu_before, self.cpu.read(), done)
        return done / elapsed

    async def decide_to_wait(self, trials: int) -> tuple[list[float], list[float]]:
        """(click → /wait returns, the decide request alone) per trial, in seconds."""
        to_agent, decide_alone = [], []
        for i in range(trials):
            created = await self.submit(SUBMIT_APPROVE, i)
            returned: list[float] = []

            async def wait(request_id: str = created["id"], into: list[float] = returned) -> None:
                response = await self.http.get(
                    f"/api/v1/actions/{request_id}/wait", params={"timeout": 10}, headers=self.agent_headers()
                )
                into.append(time.perf_counter())
                assert response.json()["status"] == "approved", response.text

            waiter = asyncio.create_task(wait())
            await asyncio.sleep(0.15)  # the wait view has joined its group and read the row by now
            clicked = time.perf_counter()
            decide_alone.append(await self.decide(created["id"]))
            await waiter
            to_agent.append(returned[0] - clicked)
        return to_agent, decide_alone

    async def fan_out(self, trials: int) -> dict[str, list[float]]:
        """With N reviewer sockets open: per socket and for the last socket, submit → added, decide → removed."""
        import websockets

        ws_url = self.url.replace("http", "ws", 1) + "/ws/queue/"
        seen: dict[tuple[str, str], list[float]] = {}
        sockets = []
        for cookie in self.people.watcher_cookies:
            socket = await websockets.connect(
                ws_url, additional_headers={"Cookie": cookie}, origin=self.url, max_size=2**22
            )
            hello = await socket.recv()
            assert '"hello"' in hello, hello
            sockets.append(socket)

        import json

        async def listen(socket: Any) -> None:
            async for raw in socket:
                message = json.loads(raw)
                key = (
                    message.get("card", {}).get("id") if message["type"] in {"added", "updated"} else message.get("id")
                )
                seen.setdefault((message["type"], str(key)), []).append(time.perf_counter())

        listeners = [asyncio.create_task(listen(s)) for s in sockets]

        async def all_saw(kind: str, request_id: str) -> list[float]:
            deadline = time.perf_counter() + 10
            while len(seen.get((kind, request_id), ())) < len(sockets):
                if time.perf_counter() > deadline:
                    raise RuntimeError(f"only {len(seen.get((kind, request_id), ()))} sockets saw {kind}")
                await asyncio.sleep(0.002)
            return seen[(kind, request_id)]

        result: dict[str, list[float]] = {"added": [], "added_last": [], "removed": [], "removed_last": []}
        try:
            for i in range(trials):
                started = time.perf_counter()
                created = await self.submit(SUBMIT_APPROVE, 10_000 + i)
                arrivals = [t - started for t in await all_saw("added", created["id"])]
                result["added"] += arrivals
                result["added_last"].append(max(arrivals))
                await asyncio.sleep(0.05)
                started = time.perf_counter()
                await self.decide(created["id"])
                removals = [t - started for t in await all_saw("removed", created["id"])]
                result["removed"] += removals
                result["removed_last"].append(max(removals))
                await asyncio.sleep(0.05)
        finally:
            for task in listeners:
                task.cancel()
            for socket in sockets:
                await socket.close()
        return result

    async def many_waiters(self, count: int, *, idle_within: float = 0.02) -> dict[str, Any]:
        """``count`` agents wait at once; each request is then decided. How long after its decision each returns.

        Clicks start once ``/healthz`` answers within ``idle_within`` seconds three times in a row.
        """
        created = await asyncio.gather(*(self.submit(SUBMIT_APPROVE, 20_000 + i, agent=i) for i in range(count)))
        ids = [c["id"] for c in created]
        returned: dict[str, float] = {}
        refused: collections.Counter[str] = collections.Counter()
        polled_again = 0

        import httpx

        async def wait(i: int, request_id: str) -> None:
            nonlocal polled_again
            # As the client does: a long-poll that ends with the request still pending is sent again.
            status = "pending"
            while status == "pending":
                try:
                    response = await self.http.get(
                        f"/api/v1/actions/{request_id}/wait", params={"timeout": 55}, headers=self.agent_headers(i)
                    )
                except httpx.TransportError as exc:
                    refused[f"{type(exc).__name__}: {exc}"] += 1
                    return
                json_body = response.headers.get("content-type", "").startswith("application/json")
                body = response.json() if json_body else {}
                status = body.get("status") if response.status_code == 200 else None
                if status == "pending":
                    polled_again += 1
            if status != "approved":
                refused[f"HTTP {response.status_code} {body.get('error', {}).get('code', '')}".strip()] += 1
                return
            returned[request_id] = time.perf_counter()

        # The load generator's own collector stays off while it times: with a thousand requests in flight its
        # full collections would pause the loop that notes each return, and count as the server's delay.
        gc.collect()
        gc.disable()
        started = time.perf_counter()
        waiters = [asyncio.create_task(wait(i, rid)) for i, rid in enumerate(ids)]
        await asyncio.sleep(1)
        # Clicks start once the server has taken every waiter in (authenticated, subscribed, read its row):
        # while a burst of waiters arrives the server is busy and everything it answers is slow.
        admitted = await self.idle_again(quick=idle_within) - started
        # Decided one after another by a reviewer through the server, from this event loop: a thread here
        # deciding through the ORM held the GIL while the loop should have been timing the waiters' returns,
        # which put up to 2.7 s of the bench's own delay into "after its own decision".
        decided: dict[str, float] = {}
        decide_took: dict[str, float] = {}
        for request_id in ids:
            decided[request_id] = time.perf_counter()  # the click
            await self.decide(request_id)
            decide_took[request_id] = time.perf_counter() - decided[request_id]
        last_decision = max(decided.values())
        try:
            await asyncio.wait_for(asyncio.gather(*waiters), timeout=90)
        finally:
            gc.enable()
        first_click = min(decided.values())
        slowest = sorted((r for r in ids if r in returned), key=lambda r: decided[r] - returned[r])[:5]
        return {
            "returned": len(returned),
            "refused": dict(refused),
            "after_last_decision": max(returned.values(), default=last_decision) - last_decision,
            "after_own": [returned[r] - decided[r] for r in ids if r in returned],
            "admitted": admitted,
            "polled_again": polled_again,
            # Where the slowest were: when they were clicked, and how much of their time was the decide request.
            "slowest": [(returned[r] - decided[r], decided[r] - first_click, decide_took[r]) for r in slowest],
        }

    async def idle_again(self, quick: float = 0.02, seconds: float = 60) -> float:
        """When the server answers ``/healthz`` within ``quick`` three times in a row (it has caught up)."""
        deadline, in_a_row = time.perf_counter() + seconds, 0
        while in_a_row < 3 and time.perf_counter() < deadline:
            asked = time.perf_counter()
            await self.http.get("/healthz")
            in_a_row = in_a_row + 1 if time.perf_counter() - asked < quick else 0
            await asyncio.sleep(0.05)
        return time.perf_counter()
