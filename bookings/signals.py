"""Bookings' events, sent only after the transaction that caused them has committed."""

from django.dispatch import Signal

# `booking.hold.expired`: kwargs hold_id, resource_id, start_time, end_time.
booking_hold_expired = Signal()
# `booking.cancelled`: kwargs booking_id, resource_id, start_time, end_time.
booking_cancelled = Signal()
