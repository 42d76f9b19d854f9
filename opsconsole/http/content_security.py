"""The Content-Security-Policy every page is served with (django-csp).

Scripts run only from this origin, or inline with the response's nonce (the console's
pages load theirs from static files, so none needs one); nothing is framed, posted or loaded
from elsewhere. Inline style attributes stay allowed: the admin's and the SVG charts'
styling uses them, and a style runs no code.
"""

from csp.constants import NONCE, NONE, SELF

POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, NONCE],
        "style-src": [SELF, "'unsafe-inline'"],
        "img-src": [SELF, "data:"],
        "font-src": [SELF, "data:"],
        "connect-src": [SELF],
        # Redoc (the API reference) searches in a worker it builds from a blob of its own.
        "worker-src": [SELF, "blob:"],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    },
}
