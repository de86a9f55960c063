import pytest
from pydantic import SecretStr

from kit.settings import (
    ConfigurationError,
    DatabaseSettings,
    Environment,
    NatsSettings,
    ServiceSettings,
    load_settings,
    refuse_placeholder_secrets,
)


def test_env_prefix_per_concern(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SERVICE_PORT", "9100")
    monkeypatch.setenv("NATS_URL", "nats://127.0.0.1:4999")
    assert load_settings(ServiceSettings, name="order").port == 9100
    assert load_settings(NatsSettings).url == "nats://127.0.0.1:4999"


def test_invalid_values_name_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SERVICE_PORT", "not-a-port")
    with pytest.raises(ConfigurationError, match="SERVICE_PORT") as info:
        load_settings(ServiceSettings, name="order")
    assert "Set these environment variables" in str(info.value)


@pytest.mark.parametrize("value", ["changeme", "", "  Secret ", "password"])
def test_placeholder_secrets_are_refused_outside_development(value: str) -> None:
    nats = NatsSettings(user="order", password=SecretStr(value))
    with pytest.raises(ConfigurationError, match="NATS_PASSWORD"):
        refuse_placeholder_secrets(Environment.PRODUCTION, nats)
    refuse_placeholder_secrets(Environment.DEVELOPMENT, nats)


def test_real_secrets_are_accepted_in_production() -> None:
    nats = NatsSettings(user="order", password=SecretStr("s3-Kq9!long-random"))
    database = DatabaseSettings(url=SecretStr("postgresql://order:x7Yq@db/order"))
    refuse_placeholder_secrets(Environment.PRODUCTION, nats, database)


def test_the_edge_limits_come_from_service_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    from kit.edge_limits import EdgeLimits

    defaults = EdgeLimits.from_settings(load_settings(ServiceSettings, name="order"))
    assert defaults == EdgeLimits(
        max_header_bytes=32768,
        max_headers=100,
        header_timeout=10.0,
        body_timeout=30.0,
        keepalive_timeout=5.0,
    )
    monkeypatch.setenv("SERVICE_MAX_HEADER_BYTES", "16384")
    monkeypatch.setenv("SERVICE_MAX_HEADERS", "50")
    monkeypatch.setenv("SERVICE_HEADER_TIMEOUT_SECONDS", "2.5")
    monkeypatch.setenv("SERVICE_BODY_TIMEOUT_SECONDS", "60")
    monkeypatch.setenv("SERVICE_KEEPALIVE_TIMEOUT_SECONDS", "7")
    assert EdgeLimits.from_settings(load_settings(ServiceSettings, name="order")) == EdgeLimits(
        16384, 50, 2.5, 60.0, 7.0
    )
    monkeypatch.setenv("SERVICE_MAX_HEADERS", "0")
    with pytest.raises(ConfigurationError, match="SERVICE_MAX_HEADERS"):
        load_settings(ServiceSettings, name="order")


def test_nats_url_may_list_every_member_of_a_cluster(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NATS_URL", raising=False)
    monkeypatch.delenv("NATS_STREAM_REPLICAS", raising=False)
    assert NatsSettings().servers == ["nats://127.0.0.1:4222"]
    assert NatsSettings().stream_replicas == 1, "a local process: one server, one copy"
    members = "nats://nats-0.n:4222, nats://nats-1.n:4222,tls://nats-2.n:4222"
    monkeypatch.setenv("NATS_URL", members)
    monkeypatch.setenv("NATS_STREAM_REPLICAS", "3")
    settings = load_settings(NatsSettings)
    assert settings.servers == [
        "nats://nats-0.n:4222",
        "nats://nats-1.n:4222",
        "tls://nats-2.n:4222",
    ]
    assert settings.stream_replicas == 3


@pytest.mark.parametrize(
    "url", ["http://nats:4222", "nats://a:4222,,nats://b:4222", "nats-0:4222", "nats://a:4222 x"]
)
def test_a_nats_url_that_is_not_a_server_list_is_refused(
    monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    monkeypatch.setenv("NATS_URL", url)
    with pytest.raises(ConfigurationError, match=r"NATS_URL: .* is not a NATS server URL") as info:
        load_settings(NatsSettings)
    assert "nats://host:port (tls://host:port for TLS)" in str(info.value)


@pytest.mark.parametrize(
    ("replicas", "message"),
    [("2", "use 1, 3 or 5"), ("4", "use 1, 3 or 5"), ("0", "greater than or equal to 1"),
     ("7", "less than or equal to 5")],
)  # fmt: skip
def test_stream_replicas_must_be_an_odd_count_jetstream_can_keep(
    monkeypatch: pytest.MonkeyPatch, replicas: str, message: str
) -> None:
    monkeypatch.setenv("NATS_STREAM_REPLICAS", replicas)
    with pytest.raises(ConfigurationError, match=f"NATS_STREAM_REPLICAS: .*{message}"):
        load_settings(NatsSettings)
