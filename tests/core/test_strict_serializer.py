"""core.serializers.StrictSerializer: a value must already be of the field's JSON type."""

from __future__ import annotations

import pytest
from rest_framework import serializers

from core.serializers import StrictSerializer


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
