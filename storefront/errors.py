"""Storefront's error codes: `<APP>-<status>-<NAME>` with the STF prefix
(docs/runbooks/integration-retry-and-replay.md)."""

from opsconsole.http.errors import Conflict, InvalidInput, NotFound


class StorefrontInvalidPayload(InvalidInput):
    code = "STF-400-INVALID-PAYLOAD"


class SurfaceNotFound(NotFound):
    code = "STF-404-SURFACE-NOT-FOUND"
    default_message = "No storefront surface has this switch."


class SurfaceAlreadySwitched(Conflict):
    """Someone else suspended (or resumed) the surface first."""

    code = "STF-409-SURFACE-ALREADY-SWITCHED"
    default_message = "The surface is already in that state; nothing was changed."


class BannerNotFound(NotFound):
    code = "STF-404-BANNER-NOT-FOUND"
    default_message = "Promotional banner not found."
