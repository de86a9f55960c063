"""The caller's identity, as the gateway vouches for it to the services behind it.

The gateway verifies the user's JWT, then forwards the user id in ``X-Flotilla-User`` with an
HMAC over it (``X-Flotilla-Identity``) made with a secret that only the gateway and the services
share. A client that sends these headers itself cannot forge the HMAC, so upstreams accept the
user id only from the gateway.

The two headers are the services' security schemes in their OpenAPI documents (both required,
together), so a document says which operations need a caller and how a direct call gives one.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Annotated

from fastapi import Depends, HTTPException, Request, Security
from fastapi.security import APIKeyHeader

# As the OpenAPI documents name them (header names are case-insensitive on the wire).
USER_HEADER = "X-Flotilla-User"
IDENTITY_HEADER = "X-Flotilla-Identity"
MAX_AGE_SECONDS = 60

# The security schemes of the two headers in the services' OpenAPI documents (both required).
IDENTITY_SCHEMES = ("gatewayUser", "gatewayIdentity")
# auto_error=False: current_user answers a missing header itself, with the same 401 as a bad one.
_USER_SCHEME = APIKeyHeader(
    name=USER_HEADER,
    scheme_name=IDENTITY_SCHEMES[0],
    description="The caller's user id, as the gateway vouches for it (with X-Flotilla-Identity).",
    auto_error=False,
)
_IDENTITY_SCHEME = APIKeyHeader(
    name=IDENTITY_HEADER,
    scheme_name=IDENTITY_SCHEMES[1],
    description=(
        "'<issued-at>.<HMAC-SHA256 of user id and issued-at>' made with the secret only the "
        "gateway and the services share; valid for a minute."
    ),
    auto_error=False,
)


def _mac(secret: bytes, user_id: str, issued_at: int) -> str:
    message = f"{user_id}\n{issued_at}".encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def sign_identity(secret: bytes, user_id: str, now: float | None = None) -> dict[str, str]:
    """The headers the gateway adds to a request it forwards for ``user_id``."""
    issued_at = int(now if now is not None else time.time())
    return {
        USER_HEADER: user_id,
        IDENTITY_HEADER: f"{issued_at}.{_mac(secret, user_id, issued_at)}",
    }


def verify_identity(secret: bytes, user_id: str, signature: str, now: float | None = None) -> bool:
    """True when ``signature`` was made by the gateway for ``user_id`` in the last minute."""
    issued, _, mac = signature.partition(".")
    # isascii: "²".isdigit() is true too, and int() refuses it.
    if not (issued.isascii() and issued.isdigit()) or not mac:
        return False
    age = (now if now is not None else time.time()) - int(issued)
    if not -5 <= age <= MAX_AGE_SECONDS:
        return False
    return hmac.compare_digest(mac, _mac(secret, user_id, int(issued)))


async def current_user(
    request: Request,
    user_id: Annotated[str | None, Security(_USER_SCHEME)],
    signature: Annotated[str | None, Security(_IDENTITY_SCHEME)],
) -> str:
    """Dependency: the user id the gateway vouched for; 401 when missing or not from the gateway.

    ``async`` although it never awaits: FastAPI runs plain ``def`` dependencies in a thread pool,
    a hop that costs more than the check.
    """
    if not user_id or not signature:
        raise HTTPException(
            401,
            "No authenticated user: call this API through the gateway with a bearer token.",
            headers={"WWW-Authenticate": "Bearer"},
        )
    secret = request.app.state.runtime.settings.identity.shared_secret.get_secret_value()
    if not verify_identity(secret.encode(), user_id, signature):
        raise HTTPException(
            401,
            "The identity headers were not issued by the gateway (or have expired): call this "
            "API through the gateway with a bearer token.",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return user_id


CurrentUser = Annotated[str, Depends(current_user)]
