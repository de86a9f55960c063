"""NATS (with the local users) and auth, order, payment and gateway as real processes, wired
the way `make run` wires them."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from devkit.localstack.environment import service_environment
from devkit.localstack.nats import NatsServer
from devkit.localstack.process import ServiceProcess
from kit.layout import service_names

KID = "e2e-key"


class Platform:
    """NATS with the local users, and auth, order, payment and gateway wired as `make run` does."""

    def __init__(self, repo: Path, directory: Path, **env: str) -> None:
        self.key = Ed25519PrivateKey.generate()
        key_file = directory / "signing.pem"
        key_file.write_bytes(
            self.key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        self.nats = NatsServer(directory / "nats", config_file=repo / "platform/nats/local.conf")
        names = service_names(repo)
        self.services = {
            name: ServiceProcess(name, [sys.executable, "-m", f"{name}_service.main"], directory)
            for name in names
        }
        urls = {name: process.base_url for name, process in self.services.items()}
        for name, process in self.services.items():
            process.env.update(
                service_environment(
                    name,
                    nats_url=self.nats.url,
                    urls=urls,
                    database_url=f"sqlite+aiosqlite:///{directory / name}.db",
                )
            )
            process.env.update(
                {"AUTH_SIGNING_KEY_FILE": str(key_file), "AUTH_SIGNING_KEY_ID": KID, **env}
            )

    @property
    def gateway(self) -> str:
        return self.services["gateway"].base_url

    def start(self) -> None:
        self.nats.start()
        for process in self.services.values():
            process.start()
        for process in self.services.values():
            process.wait_until("/readyz", 200)

    def stop(self) -> None:
        for process in self.services.values():
            process.stop()
        self.nats.stop()

    def token(self, **claims: Any) -> str:
        """A token signed with auth's own key (for claims auth would never issue)."""
        now = int(time.time())
        payload = {"iss": "flotilla-auth", "aud": "flotilla-api", "sub": "u-1", "iat": now,
                   "exp": now + 300, **claims}  # fmt: skip
        return jwt.encode(payload, self.key, algorithm="EdDSA", headers={"kid": KID})
