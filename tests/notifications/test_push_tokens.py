from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from notifications.models import PushToken
from notifications.services import push_send, push_tokens_cleanup
from tests.opsconsole.factories import UserFactory


@pytest.fixture
def push(httpserver, settings):
    settings.NOTIFICATION_CHANNELS = {"push": {"url": httpserver.url_for("/push")}}
    return httpserver


@pytest.mark.django_db
def test_a_not_registered_answer_marks_the_token_invalid(push):
    user = UserFactory(username="phone-owner")
    good = PushToken.objects.create(user=user, token="tok-good")
    stale = PushToken.objects.create(user=user, token="tok-stale")

    def answer(request):
        from werkzeug import Response

        if request.json["to"] == "tok-stale":
            return Response(
                '{"error": {"code": "messaging/registration-token-not-registered"}}',
                status=404,
                content_type="application/json",
            )
        return Response('{"id": "p1"}', status=200, content_type="application/json")

    push.expect_request("/push").respond_with_handler(answer)
    counts = push_send(user_id=user.pk, title="Hi", body="Your court is ready")
    assert counts == {"sent": 1, "failed": 1, "invalidated": 1}
    stale.refresh_from_db()
    assert (stale.valid, stale.invalidated_at is not None) == (False, True)
    assert PushToken.objects.get(pk=good.pk).valid is True
    # The invalid token is not tried again.
    push_send(user_id=user.pk, title="Hi", body="again")
    assert [r.json["to"] for r, _ in push.log].count("tok-stale") == 1


@pytest.mark.django_db
def test_a_server_error_does_not_invalidate_the_token(push):
    user = UserFactory(username="unlucky")
    token = PushToken.objects.create(user=user, token="tok-1")
    push.expect_request("/push").respond_with_data("down", status=503)
    assert push_send(user_id=user.pk, title="t", body="b")["invalidated"] == 0
    assert PushToken.objects.get(pk=token.pk).valid is True


@pytest.mark.django_db
@pytest.mark.parametrize(("invalid", "deleted"), [(5, 0), (6, 4)])
def test_cleanup_deletes_old_invalid_tokens_only_past_the_threshold(invalid, deleted):
    user = UserFactory(username="many-phones")
    old = timezone.now() - timedelta(days=8)
    recent = timezone.now() - timedelta(days=1)
    for n in range(invalid):
        PushToken.objects.create(
            user=user, token=f"t{n}", valid=False, invalidated_at=old if n < 4 else recent
        )
    PushToken.objects.create(user=user, token="valid-one")
    assert push_tokens_cleanup(user_id=user.pk) == deleted
    assert PushToken.objects.filter(user=user, valid=True).count() == 1
