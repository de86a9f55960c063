"""Entry point of the order service."""

from pathlib import Path

from kit.app import ServiceSpec
from kit.events.streams import ORDERS, PAYMENTS
from kit.serve import serve
from order_service.api.errors import install_error_handlers
from order_service.api.routes import router
from order_service.infra.payment_results import PAYMENT_RESULTS

SPEC = ServiceSpec(
    name="order",
    description="Orders: created pending, published through an outbox, settled by payment.",
    routers=[router],
    subscriptions=[PAYMENT_RESULTS],
    streams=[ORDERS, PAYMENTS],
    migrations=Path(__file__).with_name("migrations"),
    outbox=True,
    app_hooks=[install_error_handlers],
)


def main() -> None:
    """Run the order service (configured from the environment)."""
    serve(SPEC)


if __name__ == "__main__":
    main()
