"""The recovery app's admin pages; importing this package registers them."""

from recovery.admin.operations import (  # noqa: F401
    BulkActionAdmin,
    BulkActionItemInline,
    ManualReviewItemAdmin,
)
from recovery.admin.queue import (  # noqa: F401
    INLINE_REPLAY_LIMIT,
    AgeFilter,
    DeliveryAttemptInline,
    IntegrationAdmin,
    ProviderCircuitAdmin,
    RecoveryItemAdmin,
    pretty_json,
)
