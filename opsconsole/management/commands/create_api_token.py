from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from opsconsole.access.api_tokens import api_token_issue


class Command(BaseCommand):
    help = "Issue an API token for a user and print it (it is stored only as a hash)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--days", type=int, default=None, help="Lifetime (default 90).")
        parser.add_argument("--reason", default="issued from the command line")

    def handle(self, *args: Any, **options: Any) -> None:
        user = get_user_model().objects.filter(username=options["username"]).first()
        if user is None:
            raise CommandError(f"No user named {options['username']!r}.")
        token, key = api_token_issue(
            user=user,
            actor="manage.py create_api_token",
            reason=options["reason"],
            days=options["days"],
        )
        self.stdout.write(f"Token for {user.get_username()} (expires {token.expiry:%Y-%m-%d}):")
        self.stdout.write(key)
