"""config.urls plus the benchmark's baseline endpoint (mounted only by bench.settings)."""

from __future__ import annotations

from django.urls import path

from config.urls import handler404, handler500  # noqa: F401
from config.urls import urlpatterns as production_urls

from .baseline import BaselineInsertView

urlpatterns = [path("bench/baseline/", BaselineInsertView.as_view()), *production_urls]
