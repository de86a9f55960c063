"""Entry point of the gateway service."""

from gateway_service.api.routes import document_routes, install_gateway_settings, router
from kit.app import ServiceSpec
from kit.serve import serve

SPEC = ServiceSpec(
    name="gateway",
    description=(
        "The edge: routes /api/auth, /api/orders and /api/payments to their services, verifies "
        "bearer tokens through auth's JWKS, vouches for the user to upstreams, rate-limits "
        "per client, propagates request ids and trace context."
    ),
    routers=[router],
    uses_nats=False,
    app_hooks=[install_gateway_settings, document_routes],
)


def main() -> None:
    """Run the gateway (configured from the environment; exits 2 on a bad configuration)."""
    serve(SPEC)


if __name__ == "__main__":
    main()
