#!/usr/bin/env python3
"""Print a Grafana dashboard's Prometheus queries as recording rules, so `promtool check
rules` parses each one as Prometheus would (make test runs it on deploy/grafana/)."""

from __future__ import annotations

import json
import sys


def main(path: str) -> None:
    dashboard = json.load(open(path))  # noqa: SIM115
    print("groups:\n  - name: dashboard_queries\n    rules:")
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            record = f"dashboard:panel_{panel['id']}_{target['refId'].lower()}"
            print(f"      - record: {record}\n        expr: {json.dumps(target['expr'])}")


if __name__ == "__main__":
    main(sys.argv[1])
