"""The payments app's models, by concern."""

from payments.models.checkout import (  # noqa: F401
    HostedCheckoutSession,
    Payment,
    Refund,
    default_hosted_session_max_retries,
    default_refund_max_attempts,
)
from payments.models.vouchers import (  # noqa: F401
    StationCredential,
    Voucher,
    VoucherRedemption,
    VoucherRedemptionFailure,
)
from payments.models.webhooks import (  # noqa: F401
    StripeEvent,
    WebhookFailure,
)
