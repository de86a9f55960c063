"""Entry point of the order service."""

from kit.app import ServiceSpec
from kit.serve import serve

SPEC = ServiceSpec(name="order", description="The order service.")


def main() -> None:
    """Run the order service (configured from the environment)."""
    serve(SPEC)


if __name__ == "__main__":
    main()
