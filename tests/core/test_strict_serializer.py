"""core.serializers.StrictSerializer: a value must already be of the field's JSON type."""

from __future__ import annotations

import gc

import pytest
from rest_framework import serializers

from core.serializers import StrictSerializer
from tests.helpers import objects_alive


class Example(StrictSerializer):
    name = serializers.CharField(required=False)
    count = serializers.IntegerField(required=False, allow_null=True)
    ratio = serializers.FloatField(required=False)
    on = serializers.BooleanField(required=False)
    tags = serializers.ListField(child=serializers.CharField(), required=False)


@pytest.mark.parametrize(
    "data",
    [
        {"name": 0},
        {"count": "5"},
        {"count": True},
        {"count": 1.5},
        {"ratio": "0.5"},
        {"on": "true"},
        {"on": 1},
        {"tags": ["a", 2]},
    ],
)
def test_a_value_of_another_json_type_is_refused(data):
    serializer = Example(data=data)

    assert not serializer.is_valid()
    [name] = data
    assert serializer.errors[name][0].code == "invalid_type"


def test_values_of_the_right_json_type_are_accepted_and_an_integral_float_counts_as_an_integer():
    serializer = Example(data={"name": "x", "count": 5.0, "ratio": 1, "on": False, "tags": ["a"]})

    assert serializer.is_valid(), serializer.errors
    assert serializer.validated_data["count"] == 5


def test_null_is_left_to_the_field():
    assert Example(data={"count": None}).is_valid()
    assert not Example(data={"name": None}).is_valid()


class Item(StrictSerializer):
    title = serializers.CharField()


class Nested(StrictSerializer):
    name = serializers.CharField()
    items = Item(many=True)


@pytest.mark.parametrize("data", [{"name": "a", "items": [{"title": "t"}]}, {"name": 1, "items": [{}]}])
def test_a_validated_serializer_is_freed_at_once_not_left_in_a_reference_cycle(data):
    gc.collect()
    before = {id(obj) for obj in objects_alive(serializers.Field)}  # the fields declared on serializer classes
    gc.disable()
    try:
        serializer = Nested(data=data)
        valid = serializer.is_valid()
        result = dict(serializer.validated_data if valid else serializer.errors)  # errors keep their serializer
        del serializer
        left = [obj for obj in objects_alive(serializers.Field) if id(obj) not in before]
    finally:
        gc.enable()

    assert not left, left
    assert result == data if valid else "name" in result


def test_its_fields_are_still_there_to_read_after_validation():
    serializer = Nested(data={"name": "a", "items": [{"title": "t"}]})
    assert serializer.is_valid()

    assert list(serializer.fields) == ["name", "items"]
    assert serializer.fields["items"].child.fields["title"].parent is serializer.fields["items"].child
