"""Entry point of the auth service."""

from pathlib import Path

from auth_service.api.dependencies import install_auth_state
from auth_service.api.errors import install_error_handlers
from auth_service.api.routes import router
from kit.app import ServiceSpec
from kit.events.streams import AUTH
from kit.serve import serve

SPEC = ServiceSpec(
    name="auth",
    description="Users, password hashing and JWT access tokens (asymmetric keys with kid, JWKS).",
    routers=[router],
    streams=[AUTH],
    migrations=Path(__file__).with_name("migrations"),
    outbox=True,
    app_hooks=[install_error_handlers, install_auth_state],
)


def main() -> None:
    """Run the auth service (configured from the environment; exits 2 on a bad configuration)."""
    serve(SPEC)


if __name__ == "__main__":
    main()
