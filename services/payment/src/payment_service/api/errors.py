"""Domain errors mapped to problem details, once for the whole service."""

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from kit.problems import problem_response
from payment_service.domain.errors import PaymentNotFoundError


def install_error_handlers(app: FastAPI) -> None:
    """Register the handler of each domain error."""

    async def not_found(_: Request, exc: Exception) -> JSONResponse:
        return problem_response(404, str(exc))

    app.add_exception_handler(PaymentNotFoundError, not_found)
