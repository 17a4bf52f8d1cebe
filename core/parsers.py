"""The JSON parser every DRF door uses: the body is parsed within ``core.jsonlimits``."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

from core.jsonlimits import loads_limited


class LimitedJSONParser(JSONParser):
    """DRF's JSONParser, but depth, size, characters and numbers are checked before anything
    reads the data (a refusal is a 422 ``JsonLimitError``; text that is not JSON stays a 400)."""

    def parse(self, stream, media_type=None, parser_context=None) -> Any:
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            text = stream.read().decode(encoding)
            return loads_limited(text)
        except ValueError as exc:  # json.JSONDecodeError, UnicodeDecodeError
            raise ParseError(f"JSON parse error - {exc}") from None
