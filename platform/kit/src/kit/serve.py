"""Run a service under uvicorn with the chassis's logging, limits and graceful shutdown."""

from __future__ import annotations

import sys
from collections.abc import Callable

import uvicorn

from kit.app import ServiceSpec, Settings, create_app
from kit.edge_limits import EdgeLimits, limited_http_protocol
from kit.settings import ConfigurationError


def serve(spec: ServiceSpec | Callable[[], ServiceSpec]) -> None:
    """Start the service described by ``spec`` (or built by it, reading its own settings).

    Exits with status 2 and a message naming the variables to fix when the configuration is bad.
    """
    try:
        if callable(spec):
            spec = spec()
        settings = Settings.load(spec.name)
        app = create_app(spec, settings)
    except ConfigurationError as exc:
        print(f"{sys.argv[0]}: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    uvicorn.run(
        app,
        host=settings.service.host,
        port=settings.service.port,
        log_config=None,
        access_log=False,
        lifespan="on",
        # uvicorn's httptools protocol with the limits of kit.edge_limits (SERVICE_MAX_HEADER_*,
        # SERVICE_*_TIMEOUT_SECONDS) enforced while it reads a request.
        http=limited_http_protocol(EdgeLimits.from_settings(settings.service)),
        timeout_graceful_shutdown=int(settings.service.shutdown_timeout_seconds),
    )
