"""Every write to integrations and their recovery queue, by concern; this face keeps
`from recovery import services` and `services.<name>` working for every caller."""

from recovery.services.claims import (  # noqa: F401
    ClaimedDelivery,
    due_items_filter,
    recovery_items_claim_due,
)
from recovery.services.delivery import (  # noqa: F401
    EVENT_ENQUEUED,
    EVENT_PREFIX,
    EVENT_REPLAYED,
    EVENT_REPROCESS_FAILED,
    EVENT_REPROCESS_SUCCEEDED,
    EVENT_RETRY_EXHAUSTED,
    EVENT_RETRY_SCHEDULED,
    OUTCOME_FIELDS,
    WORKER_ACTOR,
    Classified,
    announce_deliveries,
    classify,
    delivery_request,
    delivery_retry_policy,
    delivery_start,
    recovery_item_enqueue,
    recovery_item_record_outcome,
    recovery_item_release_lease,
)
from recovery.services.integrations import (  # noqa: F401
    INTEGRATION_EDITABLE_FIELDS,
    integration_check_fields,
    integration_create,
    integration_delete,
    integration_rotate_secret,
    integration_set_paused,
    integration_state_full,
    integration_update,
)
from recovery.services.replay import (  # noqa: F401
    PayloadInvalid,
    payload_diff,
    payload_schema_for,
    recovery_item_edit_and_replay,
    recovery_item_get,
    recovery_item_replay,
)
