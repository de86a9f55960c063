"""Domain errors mapped to problem details, once for the whole service."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from auth_service.domain.errors import (
    EmailTakenError,
    InvalidCredentialsError,
    UserNotFoundError,
)
from kit.problems import problem_response

STATUS_OF: dict[type[Exception], int] = {
    EmailTakenError: 409,
    InvalidCredentialsError: 401,
    UserNotFoundError: 404,
}
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="flotilla"'}


def install_error_handlers(app: FastAPI) -> None:
    """Register one handler per domain error (a 401 carries its WWW-Authenticate challenge)."""

    async def handle(_: Request, exc: Exception) -> JSONResponse:
        status = STATUS_OF[type(exc)]
        return problem_response(status, str(exc), headers=CHALLENGE if status == 401 else None)

    for error in STATUS_OF:
        app.add_exception_handler(error, handle)
