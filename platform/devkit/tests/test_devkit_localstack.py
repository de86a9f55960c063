"""The local stack's wiring, without starting anything: `make run`'s services and ports, and the
environment each process reads."""

from __future__ import annotations

from pathlib import Path

from devkit.devrun import local_services
from devkit.localstack.environment import local_password, nats_command, service_environment
from kit import layout


def test_make_run_puts_the_gateway_on_the_base_port_and_the_others_after_it_by_name() -> None:
    services = local_services()
    names = [s.name for s in services]
    assert names == ["gateway", *sorted(set(layout.service_names()) - {"gateway"})]
    assert [s.port_offset for s in services] == list(range(len(services)))


def test_a_service_gets_its_nats_user_and_the_gateway_its_upstreams() -> None:
    urls = {"auth": "http://127.0.0.1:8001", "order": "http://127.0.0.1:8002"}
    order = service_environment("order", nats_url="nats://n", urls=urls, database_url="sqlite://")
    assert order["NATS_USER"] == "order"
    assert order["NATS_PASSWORD"] == local_password("order")
    assert order["SERVICE_HOST"] == "127.0.0.1"
    assert order["GATEWAY_JWKS_URL"] == "http://127.0.0.1:8001/auth/jwks.json"
    assert "GATEWAY_PAYMENT_URL" not in order  # no payment in urls: nothing to point at


def test_nats_listens_on_loopback_with_jetstream_and_the_config_when_given(tmp_path: Path) -> None:
    command = nats_command("nats-server", 4222, tmp_path / "store", None)
    assert command[:5] == ["nats-server", "--addr", "127.0.0.1", "--port", "4222"]
    assert command[5:] == ["--jetstream", "--store_dir", str(tmp_path / "store")]
    configured = nats_command("nats-server", 4222, tmp_path / "store", tmp_path / "local.conf")
    assert configured[-2:] == ["--config", str(tmp_path / "local.conf")]
