"""The shipped Prometheus rules cover the alerts of docs/runbooks/incident-response.md and
read metrics /metrics exports."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from django.conf import settings

RULES = Path(settings.BASE_DIR) / "deploy" / "prometheus" / "alerts.yml"
METRIC = re.compile(r"\b(smplat_[a-z_]+|opsconsole_[a-z_]+)\b")


def rules() -> dict[str, dict]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return {rule["alert"]: rule for group in groups for rule in group["rules"]}


def test_the_seed_s_alerts_are_there_with_their_thresholds():
    found = rules()
    failing = found["SchedulerFailing"]
    assert "consecutive_failures" in failing["expr"] and failing["expr"].endswith("> 0")
    assert failing["for"] == "5m"
    assert "opsconsole_readiness" in found["ReadinessDegraded"]["expr"]
    assert found["LockoutSpike"]["expr"].endswith("> 3")


@pytest.mark.django_db
def test_every_rule_reads_a_metric_the_console_exports(client, settings):
    from opsconsole.models import WorkerStatus

    # A worker with outcomes, as any worker has after its first run with work.
    WorkerStatus.objects.create(name="loyalty_nudge_dispatch", outcome_totals={"sent": 1})
    settings.METRICS_BEARER_TOKEN = "scrape-token"
    body = client.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-token").content.decode()
    exported = {line.split("{")[0].split(" ")[0] for line in body.splitlines() if line[:1] != "#"}
    for name, rule in rules().items():
        for metric in METRIC.findall(rule["expr"]):
            assert metric in exported, (name, metric)
    assert "opsconsole_readiness 0.0" in body or "opsconsole_readiness 1.0" in body
