"""The platform's admin: its pages (platform.py: audit events, workers and their switches,
alerts, the banner, API tokens; incidents.py), and what every app's admin builds on: the
confirmed actions (actions.py), the base classes (mixins.py) and the list filters that stay
fast on big tables (scale.py). The platform app registers its pages when it is ready."""
