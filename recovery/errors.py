"""The integration queue's error codes (docs/runbooks/integration-retry-and-replay.md)."""

from opsconsole.http.errors import (
    ApplicationError,
    Conflict,
    InvalidInput,
    NotFound,
)


class IntegrationInvalidPayload(InvalidInput):
    code = "INT-400-INVALID-PAYLOAD"


class IntegrationNotFound(NotFound):
    code = "INT-404-NOT-FOUND"
    default_message = "Integration not found."


class RecoveryNotFound(NotFound):
    code = "INT-404-RECOVERY-NOT-FOUND"
    default_message = "Recovery entry not found."


class RecoveryReplayConflict(Conflict):
    code = "INT-409-RECOVERY-REPLAY-CONFLICT"
    default_message = "This recovery entry cannot be replayed in its current state."


class EventIdConflict(Conflict):
    code = "INT-409-EVENT-ID-CONFLICT"
    default_message = (
        "This event id was already used by you for a different event; a retry must carry the "
        "same event_type and payload, a new event a new id."
    )


class LeaseLost(ApplicationError):
    """The worker's lease expired and another worker owns the item now; drop this outcome."""

    status_code = 409
    code = "INT-409-LEASE-LOST"


class IntegrationHasItems(Conflict):
    code = "INT-409-INTEGRATION-HAS-ITEMS"
    default_message = (
        "The integration still has open deliveries (pending, retrying, failed or dead-lettered); "
        "resolve or replay them first."
    )
