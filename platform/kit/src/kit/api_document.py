"""What the chassis makes true in every service's OpenAPI document, once FastAPI has written it.

- Errors are problem details: each documented problem response (``kit.problems``) refers to the
  ``Problem`` schema, which the document holds; a 422 is one too, never FastAPI's own
  ``HTTPValidationError`` shape (the chassis answers every validation error as a problem).
- A caller is two headers together: FastAPI writes one security requirement per scheme, which
  OpenAPI reads as "either"; the gateway's identity needs both (``kit.identity``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from fastapi import FastAPI

from kit.identity import IDENTITY_SCHEMES
from kit.problems import PROBLEM_MEDIA_TYPE, PROBLEM_REF, Problem

Document = dict[str, Any]
_FASTAPI_VALIDATION_SCHEMAS = ("HTTPValidationError", "ValidationError")


def install_document_rules(app: FastAPI) -> None:
    """Make ``app.openapi()`` return its document with the chassis's rules applied."""
    generate: Callable[[], Document] = app.openapi

    def openapi() -> Document:
        if app.openapi_schema is None:
            document = generate()
            apply_document_rules(document)
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def apply_document_rules(document: Document) -> None:
    """Apply the chassis's rules to ``document`` in place."""
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas["Problem"] = Problem.model_json_schema()
    for path_item in document.get("paths", {}).values():
        for operation in path_item.values():
            _validation_error_is_a_problem(operation.get("responses", {}))
            _identity_is_one_requirement(operation)
    # HTTPValidationError first: it is what refers to ValidationError.
    for name in _FASTAPI_VALIDATION_SCHEMAS:
        if f"#/components/schemas/{name}" not in set(_references(document)):
            schemas.pop(name, None)


def _references(node: object) -> Iterator[str]:
    """Every ``$ref`` in ``node``, at any depth."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from _references(value)
    elif isinstance(node, list):
        for item in node:
            yield from _references(item)


def _validation_error_is_a_problem(responses: Document) -> None:
    unprocessable = responses.get("422")
    if unprocessable is None:
        return
    content = unprocessable.get("content", {})
    if PROBLEM_MEDIA_TYPE not in content:
        responses["422"] = {
            "description": "Unprocessable Content: the request is not valid; see errors",
            "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": PROBLEM_REF}}},
        }


def _identity_is_one_requirement(operation: Document) -> None:
    requirements: list[dict[str, list[str]]] = operation.get("security", [])
    names = {name for requirement in requirements for name in requirement}
    if not set(IDENTITY_SCHEMES) <= names:
        return
    kept = [r for r in requirements if not set(r) <= set(IDENTITY_SCHEMES)]
    operation["security"] = [*kept, {name: [] for name in IDENTITY_SCHEMES}]
