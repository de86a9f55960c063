"""Entry point of the gateway service."""

from kit.app import ServiceSpec
from kit.serve import serve

SPEC = ServiceSpec(name="gateway", description="The gateway service.")


def main() -> None:
    """Run the gateway service (configured from the environment)."""
    serve(SPEC)


if __name__ == "__main__":
    main()
