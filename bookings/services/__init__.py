"""Every write to resources, holds, bookings and their payments, by concern; this face
keeps `from bookings import services` and `services.<name>` working for every caller."""

from bookings.services.cancellation import (  # noqa: F401
    CancellationResult,
    SagaStepFailed,
    _booking_cancellation_stuck,
    _booking_complete_cancellation,
    _booking_mark_cancelling,
    _refund_failure_open,
    booking_cancel,
    booking_cancellation_resolve,
    booking_get_for,
)
from bookings.services.checkin import booking_check_in  # noqa: F401
from bookings.services.events import (  # noqa: F401
    _emit_booking_cancelled,
    _emit_on_commit,
)
from bookings.services.hold_statement import (  # noqa: F401
    EXCLUSION_VIOLATION,
    _is_exclusion_violation,
)
from bookings.services.holds import (  # noqa: F401
    HOLD_CAP_LOCK_NAMESPACE,
    WORKER_ACTOR,
    Confirmation,
    _lock_and_check_hold,
    booking_hold_confirm,
    booking_hold_create,
    booking_hold_expire,
    hold_confirm_deadline,
)
from bookings.services.offline_payments import (  # noqa: F401
    OFFLINE_DUPLICATE_WINDOW,
    OfflinePaymentResult,
    _key_digest,
    booking_attach_payment,
    booking_offline_payment_record,
)
from bookings.services.resources import (  # noqa: F401
    RESOURCE_EDITABLE_FIELDS,
    _resource_state,
    resource_check_fields,
    resource_create,
    resource_update,
)
