"""The failure inbox: every app's open failures grouped by fingerprint and sorted by impact
(groups.py), their resolution and replay, the one bulk engine, the DLQ sweeper, the failure
alerts and the inbox's admin pages."""
