from django.urls import path

from bookings.api.views import BookingCancelApi, BookingHoldConfirmApi, BookingHoldCreateApi

urlpatterns = [
    path("bookings/holds", BookingHoldCreateApi.as_view(), name="booking-hold-create"),
    path(
        "bookings/holds/<str:hold_id>/confirm",
        BookingHoldConfirmApi.as_view(),
        name="booking-hold-confirm",
    ),
    path("bookings/<str:booking_id>/cancel", BookingCancelApi.as_view(), name="booking-cancel"),
]
