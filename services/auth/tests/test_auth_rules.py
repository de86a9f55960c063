"""The register schema the API publishes and the service's own checks agree on every value.

A client that validates against the OpenAPI document (here jsonschema_rs, the validator
schemathesis uses) finds exactly the emails and passwords the service accepts, but one rule no
schema can state: the password must not be the email address or its local part.
"""

from __future__ import annotations

import jsonschema_rs
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from auth_service.domain.models import RegisterRequest
from auth_service.domain.rules import (
    COMMON_PASSWORDS,
    EMAIL_PATTERN,
    PASSWORD_PATTERN,
)

SCHEMA = jsonschema_rs.validator_for(RegisterRequest.model_json_schema())
EMAIL = "ada@example.com"
PASSWORD = "correct horse battery staple"


def service_accepts(email: str, password: str) -> bool:
    """Whether the service's own validation accepts this registration."""
    try:
        RegisterRequest.model_validate({"email": email, "password": password})
    except ValidationError:
        return False
    return True


def mixed_case(word: str) -> st.SearchStrategy[str]:
    """``word`` with any of its letters in upper case."""
    return st.lists(st.booleans(), min_size=len(word), max_size=len(word)).map(
        lambda upper: "".join(c.upper() if u else c for c, u in zip(word, upper, strict=True))
    )


passwords = st.one_of(
    st.text(min_size=8, max_size=40),
    st.text(alphabet="aAbB1 \n", min_size=8, max_size=14),
    st.from_regex(PASSWORD_PATTERN),
    st.sampled_from(sorted(COMMON_PASSWORDS)).flatmap(mixed_case),
)
emails = st.one_of(
    st.emails(),
    st.from_regex(EMAIL_PATTERN),
    st.text(max_size=80),
    st.tuples(
        st.sampled_from(["", " ", "\t", "\n", " \t"]),
        st.emails(),
        st.sampled_from(["", " ", "\n", "\r\n"]),
    ).map("".join),
    st.integers(60, 70).map(lambda n: "x" * n + "@example.com"),
    st.integers(240, 260).map(lambda n: "a@" + "b" * (n - 6) + ".com"),
)


@settings(max_examples=400, deadline=None)
@given(password=passwords)
def test_the_schema_accepts_exactly_the_passwords_the_service_does(password: str) -> None:
    assume(password.lower() not in (EMAIL, EMAIL.partition("@")[0]))
    assert SCHEMA.is_valid({"email": EMAIL, "password": password}) == service_accepts(
        EMAIL, password
    )


@settings(max_examples=400, deadline=None)
@given(email=emails)
def test_the_schema_accepts_exactly_the_emails_the_service_does(email: str) -> None:
    assume(PASSWORD.lower() != email.strip().lower())
    assert SCHEMA.is_valid({"email": email, "password": PASSWORD}) == service_accepts(
        email, PASSWORD
    )


def test_the_one_rule_no_schema_states_is_in_the_description() -> None:
    password = RegisterRequest.model_json_schema()["properties"]["password"]
    assert "not the email address" in password["description"]
    assert SCHEMA.is_valid({"email": "Ada.Lovelace@example.com", "password": "ada.lovelace"})
    assert not service_accepts("Ada.Lovelace@example.com", "ada.lovelace")
