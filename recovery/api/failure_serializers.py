"""The failure inbox's answers, typed for the schema (and the clients generated from it)."""

from __future__ import annotations

from rest_framework import serializers


class FailureItemSerializer(serializers.Serializer):
    source = serializers.CharField()  # type: ignore[assignment]  # the API's field name; DRF collects it
    source_id = serializers.IntegerField()
    provider = serializers.CharField()
    failure_code = serializers.CharField()
    error = serializers.CharField()
    first_seen = serializers.DateTimeField()
    last_seen = serializers.DateTimeField()
    impact = serializers.IntegerField()
    impact_reason = serializers.CharField()
    admin_url = serializers.CharField(allow_null=True)


class FailureGroupSerializer(serializers.Serializer):
    fingerprint = serializers.CharField()
    app = serializers.CharField()
    source = serializers.CharField()  # type: ignore[assignment]  # the API's field name; DRF collects it
    provider = serializers.CharField()
    failure_code = serializers.CharField()
    normalised_error = serializers.CharField()
    example_error = serializers.CharField(
        help_text="The most impactful item's error as the partner wrote it."
    )
    count = serializers.IntegerField()
    count_estimated = serializers.BooleanField()
    first_seen = serializers.DateTimeField()
    last_seen = serializers.DateTimeField()
    impact = serializers.IntegerField()
    impact_reason = serializers.CharField()
    sample_ids = serializers.ListField(child=serializers.IntegerField())
    items = FailureItemSerializer(many=True, required=False, help_text="With `fingerprint`.")


class FailureGroupsSerializer(serializers.Serializer):
    groups = FailureGroupSerializer(many=True)
    total_groups = serializers.IntegerField()
    total_items = serializers.IntegerField()


class ResolvedSerializer(serializers.Serializer):
    source = serializers.CharField()  # type: ignore[assignment]  # the API's field name; DRF collects it
    source_id = serializers.IntegerField()
    resolved = serializers.BooleanField()
    awaiting_second_operator = serializers.BooleanField()
    requested_by = serializers.CharField()
