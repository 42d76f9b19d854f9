from django.urls import path

from bookings.api.resources import BundleListApi, ResourceListApi
from bookings.api.views import (
    BookingCancelApi,
    BookingCheckInApi,
    BookingHoldConfirmApi,
    BookingHoldCreateApi,
    OfflinePaymentRecordApi,
)

urlpatterns = [
    path("bookings/holds", BookingHoldCreateApi.as_view(), name="booking-hold-create"),
    path("bookings/resources", ResourceListApi.as_view(), name="booking-resources"),
    path("bookings/bundles", BundleListApi.as_view(), name="booking-bundles"),
    path(
        "bookings/holds/<str:hold_id>/confirm",
        BookingHoldConfirmApi.as_view(),
        name="booking-hold-confirm",
    ),
    path("bookings/<str:booking_id>/cancel", BookingCancelApi.as_view(), name="booking-cancel"),
    path(
        "bookings/<str:booking_id>/check-in", BookingCheckInApi.as_view(), name="booking-check-in"
    ),
    # Offline payments (docs/runbooks/bookings-payments-notifications.md); the view lives here
    # because it marks the booking PAID in the same transaction, and payments may not import
    # bookings.
    path("payments/offline", OfflinePaymentRecordApi.as_view(), name="payment-offline"),
]
