"""Serializers every JSON door builds on: strict about what they accept, and the error shape they document."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers


def json_type_expected(field: serializers.Field, value: Any) -> str | None:
    """The JSON type ``field`` needs when ``value`` is not of it, else None.

    DRF converts across types (``0`` into ``"0"`` for a CharField, ``"5"`` into 5 for an
    IntegerField, ``"yes"`` into True); the schema we publish promises the JSON type, so a
    value of another type is refused rather than guessed at. ``null`` is left to the field.
    """
    if value is None:
        return None
    if isinstance(field, serializers.BooleanField):
        return None if isinstance(value, bool) else "a boolean"
    if isinstance(field, serializers.IntegerField):
        integral = isinstance(value, int) or (isinstance(value, float) and value.is_integer())
        return None if integral and not isinstance(value, bool) else "an integer"
    if isinstance(field, serializers.FloatField | serializers.DecimalField):
        return None if isinstance(value, int | float) and not isinstance(value, bool) else "a number"
    if isinstance(field, serializers.CharField):
        return None if isinstance(value, str) else "a string"
    if isinstance(field, serializers.ListField) and isinstance(value, list):
        wrong = (json_type_expected(field.child, item) for item in value)
        return next((f"a list whose items are each {expected}" for expected in wrong if expected), None)
    return None


def parent_references_drop(serializer: serializers.BaseSerializer) -> None:
    """Let go of ``serializer``'s bound fields, and of each field's reference to its parent.

    Each field points back at the serializer that binds it (and a list's child at the list), so
    a serializer is a reference cycle: left as it is, it waits for a full garbage collection,
    which pauses every request in flight. Its ``fields`` are rebuilt if read again.
    """
    fields = vars(serializer).pop("fields", None)
    children = list(fields.values()) if fields is not None else []
    if isinstance(serializer, serializers.ListSerializer):
        children.append(serializer.child)
    for child in children:
        vars(child).pop("parent", None)
        if isinstance(child, serializers.BaseSerializer):
            parent_references_drop(child)


class StrictSerializer(serializers.Serializer):
    """Refuses fields it does not know, so a typo is an error, not silently dropped data, and
    values of another JSON type than the field's (see ``json_type_expected``)."""

    def is_valid(self, *, raise_exception: bool = False) -> bool:
        try:
            return super().is_valid(raise_exception=raise_exception)
        finally:
            # Validated: what callers read next (validated_data, errors) is kept apart from the fields.
            parent_references_drop(self)

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, dict):
            errors = {
                name: [serializers.ErrorDetail("Unknown field.", code="unknown_field")]
                for name in sorted(set(data) - set(self.fields))
            }
            for name, field in self.fields.items():
                expected = None if field.read_only or name not in data else json_type_expected(field, data[name])
                if expected:
                    errors[name] = [serializers.ErrorDetail(f"Must be {expected}.", code="invalid_type")]
            if errors:
                raise serializers.ValidationError(errors)
        return super().to_internal_value(data)


class StrictCharField(serializers.CharField):
    """A string field that refuses numbers and booleans instead of converting them."""

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictFloatField(serializers.FloatField):
    def to_internal_value(self, data: Any) -> float:
        if isinstance(data, bool) or not isinstance(data, int | float):
            self.fail("invalid")
        return super().to_internal_value(data)


class JSONObjectField(serializers.JSONField):
    default_error_messages = {"not_an_object": "Must be a JSON object."}

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        if not isinstance(data, dict):
            self.fail("not_an_object")
        return super().to_internal_value(data)


class ErrorInnerSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="Stable machine-readable code.")
    message = serializers.CharField(help_text="What went wrong and what to do about it.")
    details = serializers.DictField()


class ErrorSerializer(serializers.Serializer):
    error = ErrorInnerSerializer()


def error_doc(description: str) -> OpenApiResponse:
    """An error response in the OpenAPI schema: the one error shape, with what this status means here."""
    return OpenApiResponse(ErrorSerializer, description=description)
