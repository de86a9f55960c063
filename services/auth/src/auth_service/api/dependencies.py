"""Dependencies of the auth routes, as ``Annotated`` aliases, and the state they share."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated
from urllib.parse import parse_qsl

from argon2 import PasswordHasher
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from auth_service.domain.keys import KeyRing
from auth_service.domain.models import TokenForm
from auth_service.infra.keys import load_key_ring
from auth_service.infra.passwords import Passwords
from auth_service.settings import AuthSettings
from kit.app import Runtime
from kit.settings import load_settings

FORM_MEDIA_TYPE = "application/x-www-form-urlencoded"
MAX_FORM_BYTES = 8 * 1024


@dataclass(frozen=True)
class AuthState:
    """What the auth routes share for the life of the process."""

    settings: AuthSettings
    keys: KeyRing
    passwords: Passwords


def install_auth_state(app: FastAPI) -> None:
    """Load AUTH_* and the signing keys when the app is built.

    A ConfigurationError here stops the service before it serves anything, with a message
    naming what to fix.
    """
    runtime: Runtime = app.state.runtime
    settings = load_settings(AuthSettings)
    keys = load_key_ring(settings, runtime.settings.service.environment)
    hasher = PasswordHasher(
        time_cost=settings.argon2_time_cost,
        memory_cost=settings.argon2_memory_kib,
        parallelism=settings.argon2_parallelism,
    )
    app.state.auth = AuthState(settings, keys, Passwords(hasher))


async def get_auth(request: Request) -> AuthState:
    """Dependency: the process-wide auth state (async: FastAPI runs plain functions in a thread)."""
    state: AuthState = request.app.state.auth
    return state


async def token_form(request: Request) -> TokenForm:
    """Dependency: the OAuth2 password-grant form fields, parsed and validated."""
    media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media_type != FORM_MEDIA_TYPE:
        raise HTTPException(
            415,
            f"send the token request as {FORM_MEDIA_TYPE} form fields: grant_type=password, "
            "username=<email>, password=<password>",
        )
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise HTTPException(
                413, f"the token request is larger than {MAX_FORM_BYTES} bytes: send only the form"
            )
    try:
        fields = dict(parse_qsl(body.decode(), keep_blank_values=True, max_num_fields=20))
    except (UnicodeDecodeError, ValueError):
        raise HTTPException(
            400, f"the token request is not a valid UTF-8 {FORM_MEDIA_TYPE} form"
        ) from None
    try:
        return TokenForm.model_validate(fields)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_context=False, include_input=False)
        raise RequestValidationError(
            [{**error, "loc": ("body", *error["loc"])} for error in errors]
        ) from None


AuthDep = Annotated[AuthState, Depends(get_auth)]
TokenFormDep = Annotated[TokenForm, Depends(token_form)]
