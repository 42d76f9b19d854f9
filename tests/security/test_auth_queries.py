"""Authentication and permission checks cost what the API's budget allows: the token and
its user in one query, a user's permissions (own and groups') in one, and the answers are
the same as Django's model backend gives."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext

from opsconsole.access.auth_backends import PermissionsInOneQueryBackend
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
def test_a_token_request_reads_token_user_permissions_and_lockout_in_one_query(viewer):
    client = token_client(viewer)
    with CaptureQueriesContext(connection) as queries:
        assert client.get("/api/v1/incidents").status_code == 200
    reads = [q["sql"] for q in queries if q["sql"].startswith("SELECT")]
    (token_read,) = [sql for sql in reads if '"knox_authtoken"' in sql.split(" FROM ")[-1]]
    assert '"auth_user"' in token_read and "axes_accessattempt" in token_read
    assert "auth_permission" in token_read
    others = [sql for sql in reads if sql is not token_read]
    for table in ("auth_user", "auth_permission", "axes_accessattempt", "knox_authtoken"):
        assert not any(table in sql for sql in others), table


@pytest.mark.django_db
def test_permissions_read_with_the_token_are_the_users_own_and_groups(viewer):
    from django.contrib.auth.backends import ModelBackend
    from knox.models import AuthToken

    from opsconsole.access.authentication import ApiTokenAuthentication

    viewer.user_permissions.add(Permission.objects.get(codename="events.ingest"))
    _, key = AuthToken.objects.create(user=viewer)
    user, _ = ApiTokenAuthentication().authenticate_credentials(key.encode())
    with CaptureQueriesContext(connection) as queries:
        assert user.has_perm("platform.events.ingest") and user.has_perm(
            "platform.member_admin.view"
        )
    assert len(queries) == 0  # answered from what the token's query read
    reference = ModelBackend().get_all_permissions(type(viewer).objects.get(pk=viewer.pk))
    assert user._perm_cache == reference and "platform.events.ingest" in reference
