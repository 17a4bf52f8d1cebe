"""``countersign``: the client's command line. One command for now, for CI pipelines:

    countersign release-gate --agent support-bot --baseline v1.4.0 --candidate v1.5.0; echo $?

Asks the gateway's release gate (GET /api/v1/release-gate/) whether the candidate version
behaves as well as the baseline on its real decisions, prints each check, and exits

    0  pass
    1  fail: the candidate is significantly worse on at least one check
    2  not enough data yet (the candidate has too few human decisions)
    3  the question could not be asked (bad arguments, no such agent or version, the gateway
       unreachable or refusing the key)

The gateway URL and the key come from --url / COUNTERSIGN_URL and the environment variable named
by --api-key-env (COUNTERSIGN_API_KEY): a staff token, or an agent key with the evaluation:read scope.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any, TextIO

import httpx

EXIT_PASS, EXIT_FAIL, EXIT_INSUFFICIENT, EXIT_ERROR = 0, 1, 2, 3
EXIT_BY_VERDICT = {"pass": EXIT_PASS, "fail": EXIT_FAIL, "insufficient_data": EXIT_INSUFFICIENT}


def _number(value: Any, *, rate: bool) -> str:
    if value is None:
        return "-"
    return f"{value:.1%}" if rate else f"{value:.1f}s"


def report_text(report: dict[str, Any]) -> str:
    lines = [
        f"release gate for {report['agent']}: {report['candidate']} against {report['baseline']}",
        f"  decisions: {report['candidate_decisions']} (candidate), {report['baseline_decisions']} (baseline); "
        f"the gate needs {report['min_decisions']}",
        "",
        f"  {'check':<24} {'baseline':>10} {'candidate':>10} {'n':>11} {'z':>7}  verdict",
    ]
    for check in report["checks"]:
        rate = check["name"] != "time_to_decide"
        z = "-" if check["z"] is None else f"{check['z']:.2f}"
        n = f"{check['baseline_n']}/{check['candidate_n']}"
        lines.append(
            f"  {check['name']:<24} {_number(check['baseline'], rate=rate):>10} "
            f"{_number(check['candidate'], rate=rate):>10} {n:>11} {z:>7}  {check['verdict']}"
        )
    lines += ["", f"{report['verdict'].upper()}: {report['reason']}"]
    return "\n".join(lines)


def release_gate(args: argparse.Namespace, *, out: TextIO, err: TextIO) -> int:
    key = os.environ.get(args.api_key_env, "")
    if not args.url or not key:
        print(f"Give --url (or COUNTERSIGN_URL) and the key in ${args.api_key_env}.", file=err)
        return EXIT_ERROR
    try:
        response = httpx.get(
            args.url.rstrip("/") + "/api/v1/release-gate/",
            params={"agent": args.agent, "baseline": args.baseline, "candidate": args.candidate},
            headers={"Authorization": f"Bearer {key}", "User-Agent": "countersign-client/0.1"},
            timeout=args.timeout,
        )
    except httpx.HTTPError as exc:
        print(f"Could not reach the gateway at {args.url}: {exc}", file=err)
        return EXIT_ERROR
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.status_code != 200 or not isinstance(body, dict) or body.get("verdict") not in EXIT_BY_VERDICT:
        error = (body or {}).get("error", {}) if isinstance(body, dict) else {}
        print(
            f"The gateway answered {response.status_code}: {error.get('message') or response.text[:300]}",
            file=err,
        )
        return EXIT_ERROR
    print(report_text(body), file=out)
    return EXIT_BY_VERDICT[body["verdict"]]


def main(argv: list[str] | None = None, *, out: TextIO | None = None, err: TextIO | None = None) -> int:
    parser = argparse.ArgumentParser(prog="countersign", description="The Countersign client's command line.")
    commands = parser.add_subparsers(dest="command", required=True)
    gate = commands.add_parser("release-gate", help="pass or fail a new agent version on its real decisions")
    gate.add_argument("--agent", required=True, help="the agent's name")
    gate.add_argument("--baseline", required=True, help="the version in production (context.agent_version)")
    gate.add_argument("--candidate", required=True, help="the version to release")
    gate.add_argument("--url", default=os.environ.get("COUNTERSIGN_URL"), help="gateway URL (env COUNTERSIGN_URL)")
    gate.add_argument(
        "--api-key-env", default="COUNTERSIGN_API_KEY", help="variable holding the key (default COUNTERSIGN_API_KEY)"
    )
    gate.add_argument("--timeout", type=float, default=30.0)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return EXIT_ERROR if exit_.code else EXIT_PASS
    return release_gate(args, out=out or sys.stdout, err=err or sys.stderr)


if __name__ == "__main__":
    raise SystemExit(main())
