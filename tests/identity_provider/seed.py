"""Migrate the provider's database and register its people and the console as a client:
`python -m tests.identity_provider.seed REDIRECT_URI` in the provider's environment."""

from __future__ import annotations

import os
import sys

import django

CLIENT_ID = "ops-console"
CLIENT_SECRET = "ops-console-secret-for-tests"
PASSWORD = "idp-password-123"
# username -> (email, the provider's groups)
PEOPLE = {
    "alice": ("alice@example.test", ["console-operators"]),
    "vera": ("vera@example.test", ["console-viewers"]),
    "mallory": ("mallory@example.test", ["marketing"]),
}


def main(redirect_uri: str) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.identity_provider.settings")
    django.setup()
    from django.contrib.auth.models import Group, User
    from django.core.management import call_command
    from oauth2_provider.models import Application

    call_command("migrate", verbosity=0)
    for username, (email, groups) in PEOPLE.items():
        user = User.objects.create_user(username, email=email, password=PASSWORD)
        for name in groups:
            user.groups.add(Group.objects.get_or_create(name=name)[0])
    Application.objects.create(
        name="Ops Console",
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        client_type=Application.CLIENT_CONFIDENTIAL,
        authorization_grant_type=Application.GRANT_AUTHORIZATION_CODE,
        redirect_uris=redirect_uri,
        algorithm=Application.RS256_ALGORITHM,
        skip_authorization=True,
    )


if __name__ == "__main__":
    main(sys.argv[1])
