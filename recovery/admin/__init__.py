"""The recovery app's admin pages; importing this package registers them."""

from recovery.admin.integrations import IntegrationAdmin  # noqa: F401
from recovery.admin.operations import (  # noqa: F401
    BulkActionAdmin,
    BulkActionItemInline,
    ManualReviewItemAdmin,
)
from recovery.admin.queue import (  # noqa: F401
    INLINE_REPLAY_LIMIT,
    AgeFilter,
    DeliveryAttemptInline,
    ProviderCircuitAdmin,
    RecoveryItemAdmin,
    pretty_json,
)
