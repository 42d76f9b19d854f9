"""Payments' error codes: `<APP>-<status>-<NAME>` with the PAY prefix
(docs/runbooks/integration-retry-and-replay.md)."""

from opsconsole.http.errors import Conflict, DependencyUnavailable, InvalidInput, NotFound


class PaymentsInvalidPayload(InvalidInput):
    code = "PAY-400-INVALID-PAYLOAD"


class HostedSessionNotFound(NotFound):
    code = "PAY-404-SESSION-NOT-FOUND"
    default_message = "Hosted checkout session not found."


class HostedSessionNotRegenerable(Conflict):
    code = "PAY-409-SESSION-NOT-REGENERABLE"
    default_message = "This session's checkout link cannot be regenerated in its current state."


class HostedSessionChanged(Conflict):
    """Someone else (the scheduler, another operator) changed the session first."""

    code = "PAY-409-SESSION-CHANGED"
    default_message = "The session changed while this request ran; read it again and retry."


class CheckoutProviderUnavailable(DependencyUnavailable):
    code = "PAY-503-DEPENDENCY-UNAVAILABLE"
    default_message = "The checkout provider is unavailable; nothing was changed."


class HostedSessionReferenceTaken(Conflict):
    code = "PAY-409-SESSION-REFERENCE-TAKEN"
    default_message = "A hosted checkout session has this reference already."
