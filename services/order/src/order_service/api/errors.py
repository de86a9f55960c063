"""Domain errors mapped to problem details, once for the whole service."""

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from kit.problems import problem_response
from order_service.domain.errors import IdempotencyConflictError, OrderNotFoundError

STATUS_OF: dict[type[Exception], int] = {
    OrderNotFoundError: 404,
    IdempotencyConflictError: 409,
}


def install_error_handlers(app: FastAPI) -> None:
    """Register one handler per domain error."""

    async def handle(_: Request, exc: Exception) -> JSONResponse:
        return problem_response(STATUS_OF[type(exc)], str(exc))

    for error in STATUS_OF:
        app.add_exception_handler(error, handle)
