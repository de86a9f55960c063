"""The shapes of the auth API: what callers send and what they get back."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, Field, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from auth_service.domain.errors import InvalidInputError
from auth_service.domain.rules import (
    EMAIL_LENGTH_PATTERNS,
    EMAIL_PATTERN,
    EMAIL_RULE,
    MAX_PASSWORD_LENGTH,
    MIN_PASSWORD_LENGTH,
    PASSWORD_PATTERN,
    PASSWORD_RULE,
    check_password,
    normalise_email,
)


def _an_email(value: str) -> str:
    try:
        return normalise_email(value)
    except InvalidInputError as exc:
        raise PydanticCustomError("invalid_email", str(exc)) from None


def _email_schema() -> dict[str, Any]:
    # In json_schema_extra, not as constraints: the validator checks the rules and says why.
    return {
        "pattern": EMAIL_PATTERN,
        "allOf": [{"pattern": pattern} for pattern in EMAIL_LENGTH_PATTERNS],
    }


# An email address as the service's rules (domain/rules.py) want it, normalised; a value that
# breaks a rule is a 422 naming the field and the fix.
Email = Annotated[str, AfterValidator(_an_email)]


class RegisterRequest(BaseModel):
    """A new account: an email address and a password of the user's choosing.

    The schema's patterns are the service's own rules (``domain/rules.py``), checked by the
    validators below; a value that breaks one is a 422 naming the field and the fix.
    """

    email: Email = Field(
        description=EMAIL_RULE, json_schema_extra=_email_schema(), examples=["ada@example.com"]
    )
    # In json_schema_extra, not as constraints: the validator checks the rule and says why.
    password: str = Field(
        description=PASSWORD_RULE,
        json_schema_extra={
            "minLength": MIN_PASSWORD_LENGTH,
            "maxLength": MAX_PASSWORD_LENGTH,
            "pattern": PASSWORD_PATTERN,
        },
        examples=["correct horse battery staple"],
    )

    @field_validator("password")
    @classmethod
    def _strong_password(cls, value: str, info: ValidationInfo) -> str:
        try:
            check_password(value, info.data.get("email"))
        except InvalidInputError as exc:
            raise PydanticCustomError("weak_password", str(exc)) from None
        return value


class TokenForm(BaseModel):
    """The OAuth2 password grant (RFC 6749 section 4.3), sent as form fields: at most 8 KB and
    20 fields (a 413 or a 400 otherwise)."""

    grant_type: str = Field(json_schema_extra={"enum": ["password"]})
    username: Email = Field(
        description=f"The account's email address. {EMAIL_RULE}",
        json_schema_extra=_email_schema(),
    )
    password: str = Field(min_length=1, max_length=MAX_PASSWORD_LENGTH)
    scope: str = ""

    @field_validator("grant_type")
    @classmethod
    def _password_grant(cls, value: str) -> str:
        if value != "password":
            raise PydanticCustomError(
                "unsupported_grant_type",
                "grant_type must be 'password' (the OAuth2 password grant); no other grant "
                "is supported",
            )
        return value


class User(BaseModel):
    """An account as the API shows it (never with its password hash)."""

    id: str = Field(examples=["0b5f6f0e-8c5e-4bb4-9a43-0f7f3a1b9c1d"])
    email: str = Field(examples=["ada@example.com"])


class TokenResponse(BaseModel):
    """A bearer access token (RFC 6749 section 5.1)."""

    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 (a type, not a secret)
    expires_in: int = Field(description="Seconds until the token expires.")


class Jwk(BaseModel):
    """One public key of the JWKS (RFC 7517), pinned to one algorithm."""

    kty: Literal["OKP", "RSA"]
    kid: str
    alg: Literal["EdDSA", "RS256"]
    use: Literal["sig"] = "sig"
    crv: str | None = None
    x: str | None = None
    n: str | None = None
    e: str | None = None


class Jwks(BaseModel):
    """The public keys that verify access tokens: the current one and, while keys rotate,
    the previous one."""

    keys: list[Jwk]
