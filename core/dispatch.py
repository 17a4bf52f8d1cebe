"""Queue Celery tasks by name, after commit, surviving a broker outage.

Writers (services, outbox producers) name the task instead of importing it: tasks import
the services they call, so importing tasks back from a service would close a circle. A
task queued here is looked up in the Celery app's registry, which honours
CELERY_TASK_ALWAYS_EAGER like ``task.delay`` does.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from importlib import import_module
from typing import Any

from celery import current_app
from django.db import transaction


def _task(task_name: str) -> Any:
    if task_name not in current_app.tasks:
        # A web process imports no tasks module by itself. Import just the task's module: the
        # loader's import_default_modules() would re-run django.setup() (and reset logging).
        import_module(task_name.rpartition(".")[0])
    return current_app.tasks[task_name]


def enqueue(task_name: str, *args: Any) -> bool:
    """Queue one task now; False (logged) when the broker cannot take it.

    Only for work that is also kept in the database (an outbox row, a due deadline), so a
    periodic sweep finds it once the broker is back: a broker outage delays it, never loses it.
    """
    try:
        _task(task_name).delay(*args)
    except Exception:
        # Logged as the task's own app (approvals.tasks, evaluation.tasks): that is whose work waits.
        logging.getLogger(task_name.rpartition(".")[0] or __name__).warning(
            "task %s%r not queued: broker unavailable; the row is left in the outbox for the sweep", task_name, args
        )
        return False
    return True


def enqueue_each_on_commit(task_name: str, ids: Iterable[Any]) -> None:
    """After the current transaction commits, queue ``task_name(id)`` for each id (as a string)."""
    ids = [str(i) for i in ids]
    if ids:
        transaction.on_commit(lambda: [enqueue(task_name, i) for i in ids])
