"""Users of every role, built the way the console's own groups make them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import factory
from django.contrib.auth.models import Group, Permission, User
from django.contrib.contenttypes.models import ContentType
from factory.django import DjangoModelFactory

from opsconsole.access.roles import ensure_support_groups

PASSWORD = "pw-123456"


class UserFactory(DjangoModelFactory):
    """`UserFactory(username="ana", groups=["Support operator"])`; `superuser=True` for an
    administrator. Every user's password is PASSWORD."""

    class Meta:
        model = User
        # The groups hook saves what it changes (the user's groups).
        skip_postgeneration_save = True

    class Params:
        superuser = factory.Trait(is_superuser=True, is_staff=True)

    username = factory.Sequence(lambda n: f"user-{n}")
    email = factory.LazyAttribute(lambda user: f"{user.username}@example.test")
    password = factory.django.Password(PASSWORD)

    @factory.post_generation
    def groups(user: User, create: bool, names: Sequence[str] | None, **kwargs: Any) -> None:
        if not create or not names:
            return
        # Transactional tests flush the tables, the data migration's groups included.
        ensure_support_groups(ContentType, Permission, Group)
        user.groups.add(*Group.objects.filter(name__in=names))
        missing = set(names) - set(user.groups.values_list("name", flat=True))
        if missing:
            raise ValueError(f"no such group: {sorted(missing)}")
