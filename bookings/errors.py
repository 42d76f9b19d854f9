"""Bookings' error codes: `<APP>-<status>-<NAME>` with the BKG prefix
(docs/runbooks/integration-retry-and-replay.md)."""

from opsconsole.http.errors import (
    ApplicationError,
    Conflict,
    DependencyUnavailable,
    InvalidInput,
    NotFound,
)


class BookingInvalidPayload(InvalidInput):
    code = "BKG-400-INVALID-PAYLOAD"


class ResourceNotFound(NotFound):
    code = "BKG-404-RESOURCE-NOT-FOUND"
    default_message = "Resource not found."


class HoldNotFound(NotFound):
    code = "BKG-404-HOLD-NOT-FOUND"
    default_message = "Hold not found."


class BookingNotFound(NotFound):
    code = "BKG-404-BOOKING-NOT-FOUND"
    default_message = "Booking not found."


class BookingAlreadyPaid(Conflict):
    code = "BKG-409-BOOKING-ALREADY-PAID"
    default_message = "This booking is already paid; record nothing twice."


class TooManyActiveHolds(Conflict):
    code = "BKG-409-TOO-MANY-HOLDS"
    default_message = "You already hold the most slots allowed at once; confirm or wait."


class SlotUnavailable(Conflict):
    code = "BKG-409-SLOT-UNAVAILABLE"
    default_message = "Slot is no longer available."


class SlotNotOpen(Conflict):
    code = "BKG-409-SLOT-NOT-OPEN"
    default_message = "Slots of this resource are not open for booking that far ahead yet."


class BookingNotCancellable(Conflict):
    code = "BKG-409-BOOKING-NOT-CANCELLABLE"
    default_message = "This booking cannot be cancelled in its current state."


class CancellationWindowClosed(Conflict):
    code = "BKG-409-CANCELLATION-WINDOW-CLOSED"
    default_message = (
        "This booking can no longer be cancelled by its customer "
        "(BOOKING_CLIENT_CANCEL_CUTOFF_MINUTES before its start); ask staff."
    )


class HoldExpired(ApplicationError):
    status_code = 410
    code = "BKG-410-HOLD-EXPIRED"
    default_message = "Hold has expired. Please create a new booking."


class CancellationFailed(DependencyUnavailable):
    code = "BKG-503-CANCELLATION-FAILED"
    default_message = "Cancellation could not be completed. Our team has been notified."


class BookingNotCheckable(Conflict):
    code = "BKG-409-NOT-CHECKABLE"
    default_message = (
        "Only a confirmed booking can be checked in, from CHECK_IN_OPENS_MINUTES before its "
        "start until its end."
    )
