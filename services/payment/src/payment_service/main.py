"""Entry point of the payment service."""

from kit.app import ServiceSpec
from kit.serve import serve

SPEC = ServiceSpec(name="payment", description="The payment service.")


def main() -> None:
    """Run the payment service (configured from the environment)."""
    serve(SPEC)


if __name__ == "__main__":
    main()
