"""Celery tasks: an interface only."""

from __future__ import annotations

from celery import shared_task

from .drift import drift_detect


@shared_task(ignore_result=True)
def detect_drift() -> int:
    run = drift_detect()
    return len(run.opened)
