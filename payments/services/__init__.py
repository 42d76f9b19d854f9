"""Hosted checkout sessions, by concern; this face keeps `from payments import services`
and `services.<name>` working for every caller."""

from payments.services.opening import hosted_session_open  # noqa: F401
from payments.services.regeneration import (  # noqa: F401
    hosted_session_contact,
    hosted_session_notify_customer,
    hosted_session_regenerate,
)
from payments.services.sessions import (  # noqa: F401
    ATTEMPT_EVENTS,
    EVENT_CUSTOMER_NOTIFIED,
    EVENT_PREFIX,
    EVENT_RECOVERY_ATTEMPTED,
    EVENT_RECOVERY_EXHAUSTED,
    EVENT_REGENERATED,
    RecoveryAttemptResult,
    Session,
    due_sessions_filter,
    hosted_recovery_policy,
    hosted_session_claim,
    hosted_session_create,
    hosted_session_get,
    hosted_session_record_recovery_attempt,
    hosted_session_transition,
    logger,
)
