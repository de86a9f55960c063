"""The OpenAPI documents the services serve, read from the apps their entry points build."""

from __future__ import annotations

import importlib
import tempfile
from pathlib import Path
from typing import Any

from kit.app import ServiceSpec, Settings, create_app
from kit.settings import (
    DatabaseSettings,
    Environment,
    IdentitySettings,
    NatsSettings,
    ServiceSettings,
    TelemetrySettings,
)

Document = dict[str, Any]


def spec_of(service: str) -> ServiceSpec:
    """The spec ``<service>_service.main`` serves: its SPEC, or what its build_spec() makes."""
    main = importlib.import_module(f"{service}_service.main")
    spec = getattr(main, "SPEC", None)
    if spec is None:
        spec = main.build_spec()
    if not isinstance(spec, ServiceSpec):
        raise TypeError(f"{service}_service.main has no SPEC or build_spec() of a ServiceSpec")
    return spec


def offline_settings(service: str, directory: Path) -> Settings:
    """Development settings that connect nowhere, with the database named in ``directory`` (an
    engine connects on first use only); only errors are logged."""
    return Settings(
        service=ServiceSettings(
            name=service, environment=Environment.DEVELOPMENT, log_level="ERROR"
        ),
        nats=NatsSettings(),
        database=DatabaseSettings(url=f"sqlite+aiosqlite:///{directory / service}.db"),
        identity=IdentitySettings(),
        telemetry=TelemetrySettings(),
    )


def service_document(service: str) -> Document:
    """The OpenAPI document ``service`` serves (its app is built, never started)."""
    with tempfile.TemporaryDirectory(prefix=f"openapigen-{service}-") as directory:
        settings = offline_settings(service, Path(directory))
        document: Document = create_app(spec_of(service), settings).openapi()
    return document
