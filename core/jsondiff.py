"""The difference between two JSON documents as an RFC 6902 patch (a reviewer's edit, in records and on pages)."""

from __future__ import annotations

from typing import Any


def _pointer_token(key: Any) -> str:
    return str(key).replace("~", "~0").replace("/", "~1")


def json_diff(before: Any, after: Any, path: str = "") -> list[dict[str, Any]]:
    """An RFC 6902 JSON Patch turning ``before`` into ``after``.

    Objects are compared key by key; lists and scalars are replaced as a whole when they
    differ, which keeps the patch readable for reviewers' edits (a changed recipient, a
    rewritten body) and still exact when applied.
    """
    if isinstance(before, dict) and isinstance(after, dict):
        ops: list[dict[str, Any]] = []
        for key in sorted(before.keys() - after.keys(), key=str):
            ops.append({"op": "remove", "path": f"{path}/{_pointer_token(key)}"})
        for key in sorted(after.keys(), key=str):
            child = f"{path}/{_pointer_token(key)}"
            if key not in before:
                ops.append({"op": "add", "path": child, "value": after[key]})
            else:
                ops.extend(json_diff(before[key], after[key], child))
        return ops
    if before == after and type(before) is type(after):
        return []
    return [{"op": "replace", "path": path, "value": after}]
