"""Who is calling the API: the scoped token from ``Authorization: Bearer <token>`` (or HTTP Basic
with the token as password, so a browser can open the dashboard), and what it may do."""

from __future__ import annotations

import base64
import binascii

from fastapi import HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials

from deployer.web.tokens import ApiToken, Scope, TokenBook

CHALLENGE = 'Bearer, Basic realm="deployer"'
# Browsers answer a Basic challenge only when it is the header's first (Chromium ignores the
# API's combined "Bearer, Basic ..." and shows the 401 without asking): the pages send their own.
BASIC_CHALLENGE = 'Basic realm="deployer", charset="UTF-8"'


def authenticate(
    tokens: TokenBook, request: Request, credentials: HTTPAuthorizationCredentials | None
) -> ApiToken:
    """The token a request presents (Bearer, or Basic with the token as password); 401 when it
    presents none, or one that is not known."""
    presented = (
        credentials.credentials
        if credentials is not None
        else _basic_password(request.headers.get("authorization"))
    )
    if not presented:
        raise HTTPException(
            401,
            "Send Authorization: Bearer <token>, a deployer API token (DEPLOYER_API_TOKENS).",
            headers={"WWW-Authenticate": CHALLENGE},
        )
    token = tokens.find(presented)
    if token is None:
        raise HTTPException(
            401,
            "The bearer token is not one of the deployer's API tokens.",
            headers={"WWW-Authenticate": CHALLENGE},
        )
    return token


def require(token: ApiToken, scope: Scope, service: str | None = None) -> None:
    """Refuse (403) a call ``token`` may not make, naming the scope it lacks."""
    if token.allows(scope, service):
        return
    target = f" for {service}" if service else ""
    raise HTTPException(
        403,
        f"This call needs the {scope.value} scope{target}; {token.describe()}.",
    )


def _basic_password(header: str | None) -> str | None:
    if not header or not header.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    return decoded.partition(":")[2] or None
