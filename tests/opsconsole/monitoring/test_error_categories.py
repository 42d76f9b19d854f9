"""The specification's error categories drive alert severity: every shipped rule names its
category and carries the severity the table gives it; AI help failing is low and silent (no
rule, a log line at info); the identity provider's outage pages as high; the break-glass
sign-in raises a critical alert in the console."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from opsconsole.access import identity
from opsconsole.models import Alert
from opsconsole.monitoring.error_categories import ERROR_CATEGORIES, severity_of
from tests.opsconsole.monitoring.test_alert_rules import rules

SPECIFICATION = {
    "payment_failure": "critical",
    "booking_conflict": "high",
    "notification_failure": "medium",
    "ai_enhancement_failure": "low",
    "analytics_failure": "low",
}


def test_the_table_keeps_the_specification_s_severities():
    assert {name: ERROR_CATEGORIES[name].severity for name in SPECIFICATION} == SPECIFICATION
    assert not ERROR_CATEGORIES["ai_enhancement_failure"].alerts
    assert not ERROR_CATEGORIES["analytics_failure"].alerts


def test_every_rule_carries_its_category_s_severity():
    for name, rule in rules().items():
        category = rule["labels"]["category"]
        assert ERROR_CATEGORIES[category].alerts, (name, category)
        assert rule["labels"]["severity"] == severity_of(category), name


def test_ai_help_failing_pages_no_one_and_the_identity_provider_outage_pages_as_high():
    by_category = {rule["labels"]["category"]: rule for rule in rules().values()}
    assert "ai_enhancement_failure" not in by_category
    outage = by_category["identity_provider_outage"]
    assert outage["labels"]["severity"] == "high"
    assert 'component="identity_provider"' in outage["expr"]


@pytest.mark.django_db
def test_the_break_glass_sign_in_raises_a_critical_alert(settings):
    settings.OIDC_RP_CLIENT_ID = "ops-console"
    settings.OIDC_OP_AUTHORIZATION_ENDPOINT = "http://127.0.0.1:9/authorize/"
    settings.OIDC_OP_TOKEN_ENDPOINT = "http://127.0.0.1:9/token/"
    settings.OIDC_OP_USER_ENDPOINT = "http://127.0.0.1:9/userinfo/"
    settings.OIDC_OP_JWKS_ENDPOINT = "http://127.0.0.1:9/jwks.json"  # nothing listens: down
    settings.BREAK_GLASS_USERNAME = "breakglass"
    account = User.objects.create_user("breakglass", is_staff=True)
    identity.check_password_sign_in(None, account)
    alert = Alert.objects.get(kind="break-glass-sign-in")
    assert alert.severity == severity_of("break_glass_sign_in") == "critical"
