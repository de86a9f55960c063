"""Scoped API tokens: loading, lookup, scopes per service, clear refusals of bad configuration."""

import json

import pytest

from deployer.main import api_tokens, deploy_policy
from deployer.settings import DeployerSettings
from deployer.web.tokens import Scope, TokenBook, TokenError
from kit.settings import ConfigurationError, Environment

TOKENS = [
    {"name": "viewer", "token": "r" * 20, "scopes": ["read"]},
    {"name": "ci-order", "token": "d" * 20, "scopes": ["read", "deploy"], "services": ["order"]},
    {"name": "lead", "token": "a" * 20, "scopes": ["approve"]},
]


def test_the_presented_token_is_found_with_its_scopes() -> None:
    book = TokenBook.load(json.dumps(TOKENS), None)
    viewer, ci = book.find("r" * 20), book.find("d" * 20)
    assert viewer is not None
    assert ci is not None
    assert viewer.allows(Scope.READ, "payment")
    assert not viewer.allows(Scope.DEPLOY, "order")
    assert ci.allows(Scope.DEPLOY, "order")
    assert not ci.allows(Scope.DEPLOY, "payment")
    assert ci.sees("order")
    assert not ci.sees("payment")
    assert ci.describe() == "token 'ci-order' has read, deploy for order"
    assert book.find("d" * 19) is None
    assert book.find("") is None


def test_the_admin_token_has_every_scope() -> None:
    book = TokenBook.load(None, "dev")
    admin = book.find("dev")
    assert admin is not None
    assert admin.name == "admin"
    assert all(admin.allows(scope, "anything") for scope in Scope)


@pytest.mark.parametrize(
    ("tokens", "message"),
    [
        ([{**TOKENS[0], "token": "short"}], "at least 16 characters"),
        ([{**TOKENS[0], "scopes": ["root"]}], "scopes.0"),
        ([{**TOKENS[0], "scopes": []}], "scopes"),
        ([TOKENS[0], {**TOKENS[1], "name": "viewer"}], "names must be unique: viewer"),
        ([TOKENS[0], {**TOKENS[1], "token": "r" * 20}], "the same secret"),
        ([{**TOKENS[1], "services": ["Order!"]}], "'Order!' is not a service"),
    ],
)
def test_bad_token_configuration_is_refused_saying_what(
    tokens: list[dict[str, object]], message: str
) -> None:
    with pytest.raises(TokenError) as refused:
        TokenBook.load(json.dumps(tokens), None)
    assert message in str(refused.value)
    assert "r" * 20 not in str(refused.value)  # no secret in the message


def test_tokens_that_are_not_yaml_are_refused() -> None:
    with pytest.raises(TokenError, match="not YAML"):
        TokenBook.load("- [", None)


def test_the_deployer_refuses_to_start_without_tokens_outside_development(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("DEPLOYER_API_TOKEN", "DEPLOYER_API_TOKENS", "DEPLOYER_POLICY"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ConfigurationError, match="no API token in production: set"):
        api_tokens(DeployerSettings(), Environment.PRODUCTION)
    development = api_tokens(DeployerSettings(), Environment.DEVELOPMENT).find("dev")
    assert development is not None
    monkeypatch.setenv("DEPLOYER_POLICY", '{"default": {"allow": {"image": {}}}}')
    with pytest.raises(ConfigurationError, match="the image is always allowed"):
        deploy_policy(DeployerSettings())
