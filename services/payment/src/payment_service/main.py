"""Entry point of the payment service."""

from pathlib import Path

from kit.app import ServiceSpec
from kit.events.streams import ORDERS, PAYMENTS
from kit.serve import serve
from kit.settings import load_settings
from payment_service.api.errors import install_error_handlers
from payment_service.api.routes import router
from payment_service.domain.models import PaymentSettings
from payment_service.infra.card_processor import FakeCardProcessor
from payment_service.infra.charging import charging_subscription


def build_spec() -> ServiceSpec:
    """The payment service, with the card processor configured from PAYMENT_* variables."""
    processor = FakeCardProcessor(load_settings(PaymentSettings))
    return ServiceSpec(
        name="payment",
        description="Payments: charges each order exactly once and publishes the result.",
        routers=[router],
        subscriptions=[charging_subscription(processor)],
        streams=[PAYMENTS, ORDERS],
        migrations=Path(__file__).with_name("migrations"),
        outbox=True,
        app_hooks=[install_error_handlers],
    )


def main() -> None:
    """Run the payment service (configured from the environment)."""
    serve(build_spec)


if __name__ == "__main__":
    main()
