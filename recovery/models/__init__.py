"""The recovery app's models, by concern."""

from recovery.models.events import DeliveryRollup, IngestedEvent  # noqa: F401
from recovery.models.operations import (  # noqa: F401
    BulkAction,
    BulkActionItem,
    FailureResolution,
    FailureResolutionRequest,
    ManualReviewItem,
    ProviderPacer,
    SweepRetry,
)
from recovery.models.queue import (  # noqa: F401
    DeliveryAttempt,
    Integration,
    PayloadEdit,
    ProviderCircuit,
    RecoveryItem,
    default_max_attempts,
)
from recovery.models.reports import WeeklyDigest  # noqa: F401
