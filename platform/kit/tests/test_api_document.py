"""The chassis's rules for every OpenAPI document (kit.api_document), on documents FastAPI wrote."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Query

from kit.api_document import install_document_rules
from kit.identity import CurrentUser
from kit.problems import PROBLEM_MEDIA_TYPE, PROBLEM_REF, problem_responses


def document_of(router: APIRouter) -> dict[str, Any]:
    """The document of an app of ``router`` with the chassis's rules."""
    app = FastAPI()
    app.include_router(router)
    install_document_rules(app)
    return app.openapi()


def test_the_gateway_identity_is_one_requirement_of_both_headers() -> None:
    router = APIRouter()

    @router.get("/mine")
    async def mine(user: CurrentUser) -> str:
        return user

    document = document_of(router)
    assert document["paths"]["/mine"]["get"]["security"] == [
        {"gatewayUser": [], "gatewayIdentity": []}
    ]
    schemes = document["components"]["securitySchemes"]
    assert {scheme["name"] for scheme in schemes.values()} == {
        "X-Flotilla-User",
        "X-Flotilla-Identity",
    }


def test_a_validation_error_is_documented_as_the_problem_it_is() -> None:
    router = APIRouter()

    @router.get("/things")
    async def things(limit: Annotated[int, Query(ge=1)] = 1) -> int:
        return limit

    @router.get("/documented", responses=problem_responses(404, 422))
    async def documented(limit: int = 1) -> int:
        return limit

    document = document_of(router)
    problem = {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": PROBLEM_REF}}}
    for path in ("/things", "/documented"):
        assert document["paths"][path]["get"]["responses"]["422"]["content"] == problem
    assert document["paths"]["/documented"]["get"]["responses"]["404"]["content"] == problem
    schemas = document["components"]["schemas"]
    assert "Problem" in schemas
    assert "HTTPValidationError" not in schemas
    assert "ValidationError" not in schemas
