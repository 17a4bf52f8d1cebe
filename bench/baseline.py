"""The baseline the submit path is compared with: parse the same body, insert one row, answer.

No authentication, no policy, no audit: what any write endpoint on this stack costs at
the least. The row goes to a table of its own (created by ``baseline_table_create``).
"""

from __future__ import annotations

import json

from django.db import connection
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from approvals.api.serializers import ActionSubmitInputSerializer

TABLE = "bench_baseline_row"


def baseline_table_create() -> None:
    key = "integer PRIMARY KEY AUTOINCREMENT" if connection.vendor == "sqlite" else "bigserial PRIMARY KEY"
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE TABLE IF NOT EXISTS {TABLE} (id {key}, body text NOT NULL)")


class BaselineInsertView(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]

    def post(self, request):
        serializer = ActionSubmitInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        with connection.cursor() as cursor:
            cursor.execute(f"INSERT INTO {TABLE} (body) VALUES (%s)", [json.dumps(serializer.validated_data)])
        return Response({"ok": True}, status=201)
