"""Authentication and permission checks cost what the API's budget allows: the token and
its user in one query, a user's permissions (own and groups') in one, and the answers are
the same as Django's model backend gives."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext

from opsconsole.auth_backends import PermissionsInOneQueryBackend
from tests.helpers import token_client
from tests.opsconsole.factories import UserFactory


@pytest.mark.django_db
def test_one_query_reads_own_and_group_permissions_as_django_does():
    from django.contrib.auth.backends import ModelBackend

    user = UserFactory(username="mixed", groups=["Support viewer"])
    user.user_permissions.add(Permission.objects.get(codename="events.ingest"))
    fresh = type(user).objects.get(pk=user.pk)
    with CaptureQueriesContext(connection) as queries:
        ours = PermissionsInOneQueryBackend().get_all_permissions(fresh)
        again = fresh.has_perm("platform.events.ingest")
    assert len(queries) == 1 and again
    reference = ModelBackend().get_all_permissions(type(user).objects.get(pk=user.pk))
    assert ours == reference == {"platform.member_admin.view", "platform.events.ingest"}
    fresh.is_active = False
    assert PermissionsInOneQueryBackend().get_all_permissions(fresh) == set()


@pytest.mark.django_db
def test_a_token_request_reads_the_token_with_its_user(viewer):
    client = token_client(viewer)
    with CaptureQueriesContext(connection) as queries:
        assert client.get("/api/v1/incidents").status_code == 200
    tables = [q["sql"].split(" FROM ")[1].split()[0] for q in queries if " FROM " in q["sql"]]
    assert '"auth_user"' not in tables  # joined to the token, not fetched again
    assert sum(t == '"knox_authtoken"' for t in tables) == 1
