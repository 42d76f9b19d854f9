"""What payments tells the apps that sell things, without importing them."""

from django.dispatch import Signal

# Sent inside the webhook's transaction when a card payment arrives, with `payment` and the
# provider's `metadata`. A receiver applies the payment to what it paid for and returns ""
# (applied, or not its business), or why it could not (the payment is then kept for a
# refund decision). A receiver that raises fails the event, which is kept for manual work.
payment_received = Signal()
