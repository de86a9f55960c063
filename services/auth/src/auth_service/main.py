"""Entry point of the auth service."""

from kit.app import ServiceSpec
from kit.serve import serve

SPEC = ServiceSpec(name="auth", description="The auth service.")


def main() -> None:
    """Run the auth service (configured from the environment)."""
    serve(SPEC)


if __name__ == "__main__":
    main()
