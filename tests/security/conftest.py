from __future__ import annotations

import pytest

from recovery import services
from recovery.models import Integration


@pytest.fixture
def integration(db: None, httpserver) -> Integration:
    return services.integration_create(
        name="crm", endpoint_url=httpserver.url_for("/hooks/crm"), actor="test"
    )
