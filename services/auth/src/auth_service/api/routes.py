"""The auth API: registration, the OAuth2 token endpoint, the JWKS and the current user."""

from __future__ import annotations

import time

from fastapi import APIRouter, Response

from auth_service.api.dependencies import FORM_MEDIA_TYPE, AuthDep, TokenFormDep
from auth_service.domain.errors import EmailTakenError, InvalidCredentialsError, UserNotFoundError
from auth_service.domain.models import Jwk, Jwks, RegisterRequest, TokenForm, TokenResponse, User
from auth_service.domain.tokens import issue_access_token
from auth_service.infra import users
from kit.app import RuntimeDep
from kit.identity import CurrentUser
from kit.problems import problem_responses

router = APIRouter(prefix="/auth", tags=["auth"])


@router.post(
    "/register",
    status_code=201,
    summary="Create an account",
    responses=problem_responses(400, 409, 422),
)
async def register(body: RegisterRequest, auth: AuthDep, runtime: RuntimeDep) -> User:
    """Create an account and publish ``auth.user.registered`` in the same transaction."""
    if await users.find_by_email(runtime.database, body.email) is not None:
        raise EmailTakenError(body.email)
    password_hash = await auth.passwords.hash(body.password)
    user = await users.register(runtime.database, runtime.events_outbox, body.email, password_hash)
    return User(id=user.id, email=user.email)


@router.post(
    "/token",
    summary="Get an access token (OAuth2 password grant)",
    responses=problem_responses(400, 401, 413, 415, 422),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {FORM_MEDIA_TYPE: {"schema": TokenForm.model_json_schema()}},
        }
    },
)
async def token(
    form: TokenFormDep, auth: AuthDep, runtime: RuntimeDep, response: Response
) -> TokenResponse:
    """Exchange an email (``username``) and password for a short-lived bearer token."""
    user = await users.find_by_email(runtime.database, form.username.strip())
    valid = await auth.passwords.verify(user.password_hash if user else None, form.password)
    if user is None or not valid:
        raise InvalidCredentialsError()
    if auth.passwords.needs_rehash(user.password_hash):
        rehashed = await auth.passwords.hash(form.password)
        await users.replace_password_hash(runtime.database, user.id, rehashed)
    access_token = issue_access_token(
        auth.keys.signing,
        issuer=auth.settings.issuer,
        audience=auth.settings.audience,
        subject=user.id,
        ttl_seconds=auth.settings.access_token_ttl_seconds,
        now=int(time.time()),
    )
    response.headers["Cache-Control"] = "no-store"
    return TokenResponse(
        access_token=access_token, expires_in=auth.settings.access_token_ttl_seconds
    )


@router.get(
    "/jwks.json",
    summary="The public keys that verify access tokens",
    response_model_exclude_none=True,
)
async def jwks(auth: AuthDep, response: Response) -> Jwks:
    """The current signing key and, during a rotation, the previous one (RFC 7517)."""
    response.headers["Cache-Control"] = "public, max-age=300"
    return Jwks(keys=[Jwk.model_validate(key.jwk()) for key in auth.keys.published()])


@router.get("/me", summary="The signed-in user", responses=problem_responses(401, 404))
async def me(user_id: CurrentUser, runtime: RuntimeDep) -> User:
    """The account the gateway vouches for (call it through the gateway with a bearer token)."""
    user = await users.find_by_id(runtime.database, user_id)
    if user is None:
        raise UserNotFoundError(user_id)
    return User(id=user.id, email=user.email)
