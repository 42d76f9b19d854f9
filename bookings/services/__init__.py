"""Every write to resources, holds, bookings and their payments, by concern; this face
keeps `from bookings import services` and `services.<name>` working for every caller."""

from bookings.services.cancellation import (  # noqa: F401
    CancellationResult,
    SagaStepFailed,
    booking_cancel,
    booking_cancellation_resolve,
    booking_get_for,
)
from bookings.services.checkin import booking_check_in  # noqa: F401
from bookings.services.hold_statement import (  # noqa: F401
    EXCLUSION_VIOLATION,
)
from bookings.services.holds import (  # noqa: F401
    HOLD_CAP_LOCK_NAMESPACE,
    WORKER_ACTOR,
    Confirmation,
    booking_hold_confirm,
    booking_hold_create,
    booking_hold_expire,
    hold_confirm_deadline,
)
from bookings.services.offline_payments import (  # noqa: F401
    OFFLINE_DUPLICATE_WINDOW,
    OfflinePaymentResult,
    booking_attach_payment,
    booking_offline_payment_record,
)
from bookings.services.resources import (  # noqa: F401
    RESOURCE_EDITABLE_FIELDS,
    resource_check_fields,
    resource_create,
    resource_update,
)
