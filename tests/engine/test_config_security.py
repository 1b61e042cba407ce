"""engine.config: the security keys of [kafka] and [redis], checked together; secrets unshown."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from engine.config import ConfigError, RedisSettings, load_config, parse_config, redact_url

PASSWORD = "Kafka-pw-7d1e"
REDIS_PASSWORD = "Redis-pw-42ab"


def problems_of(data: dict[str, Any], env: dict[str, str] | None = None) -> list[str]:
    """The problem lines of an invalid document (fails the test if it is valid)."""
    with pytest.raises(ConfigError) as info:
        parse_config(data, "cfg.toml", env or {})
    return info.value.problems


def sasl(**kafka: Any) -> dict[str, Any]:
    base = {
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_username": "kestrel",
        "sasl_password": PASSWORD,
    }
    return {"kafka": {**base, **kafka}}


def test_a_complete_sasl_ssl_section_is_valid(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("not checked here: only that the file exists")
    path = tmp_path / "kestrel.toml"
    path.write_text(
        f"""
[kafka]
broker = "kafka://k1:9093;kafka://k2:9093"
security_protocol = "SASL_SSL"
sasl_mechanism = "SCRAM-SHA-256"
sasl_username = "kestrel"
sasl_password = "${{KAFKA_PASSWORD}}"
ssl_cafile = "{ca}"
ssl_check_hostname = false
"""
    )
    cfg = load_config(path, env={"KAFKA_PASSWORD": PASSWORD})
    kafka = cfg.kafka
    assert (kafka.security_protocol, kafka.sasl_mechanism, kafka.sasl_username) == (
        "SASL_SSL",
        "SCRAM-SHA-256",
        "kestrel",
    )
    assert kafka.sasl_password is not None
    assert kafka.sasl_password.get_secret_value() == PASSWORD
    assert kafka.uses_sasl and kafka.uses_tls and not kafka.ssl_check_hostname
    assert kafka.bootstrap_servers == "k1:9093,k2:9093"


def test_the_defaults_are_plaintext_without_credentials() -> None:
    kafka = parse_config({}, "cfg.toml", {}).kafka
    assert kafka.security_protocol == "PLAINTEXT"
    assert not kafka.uses_sasl and not kafka.uses_tls
    assert kafka.security_problems() == []


@pytest.mark.parametrize(
    ("kafka", "expected"),
    [
        (
            {"security_protocol": "SASL_SSL"},
            [
                'kafka.sasl_mechanism: required with security_protocol = "SASL_SSL" '
                "(PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)",
                'kafka.sasl_username: required with security_protocol = "SASL_SSL"',
                'kafka.sasl_password: required with security_protocol = "SASL_SSL"',
            ],
        ),
        (
            {"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "PLAIN"},
            [
                'kafka.sasl_username: required with security_protocol = "SASL_PLAINTEXT"',
                'kafka.sasl_password: required with security_protocol = "SASL_PLAINTEXT"',
            ],
        ),
        (
            {"sasl_mechanism": "PLAIN", "sasl_password": PASSWORD},
            [
                'kafka.sasl_mechanism: set, but security_protocol = "PLAINTEXT" uses no SASL '
                "(use SASL_PLAINTEXT or SASL_SSL)",
                'kafka.sasl_password: set, but security_protocol = "PLAINTEXT" uses no SASL '
                "(use SASL_PLAINTEXT or SASL_SSL)",
            ],
        ),
        (
            {
                "security_protocol": "SASL_PLAINTEXT",
                "ssl_cafile": "/nowhere/ca.pem",
                **{"sasl_mechanism": "PLAIN", "sasl_username": "u", "sasl_password": PASSWORD},
            },
            [
                'kafka.ssl_cafile: set, but security_protocol = "SASL_PLAINTEXT" uses no TLS '
                "(use SSL or SASL_SSL)"
            ],
        ),
        (
            {"security_protocol": "SSL", "ssl_cafile": "/nowhere/ca.pem"},
            ["kafka.ssl_cafile: no such file: /nowhere/ca.pem"],
        ),
        (
            {"security_protocol": "SSL", "ssl_keyfile": "/nowhere/key.pem"},
            [
                "kafka.ssl_keyfile: no such file: /nowhere/key.pem",
                "kafka.ssl_keyfile: needs ssl_certfile (the certificate it is the key of)",
            ],
        ),
        (
            {"security_protocol": "SSL", "ssl_key_password": PASSWORD},
            ["kafka.ssl_key_password: set, but there is no ssl_certfile"],
        ),
    ],
)
def test_the_security_keys_are_checked_together(kafka: dict[str, Any], expected: list[str]) -> None:
    problems = problems_of({"kafka": kafka})
    assert problems == expected
    assert PASSWORD not in "\n".join(problems)


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        (
            "security_protocol",
            "SASL_TLS",
            "kafka.security_protocol: Input should be 'PLAINTEXT', 'SSL', 'SASL_PLAINTEXT' or "
            "'SASL_SSL', got 'SASL_TLS'",
        ),
        (
            "sasl_mechanism",
            "GSSAPI",
            "kafka.sasl_mechanism: Input should be 'PLAIN', 'SCRAM-SHA-256' or 'SCRAM-SHA-512', "
            "got 'GSSAPI'",
        ),
        ("ssl_check_hostname", "maybe", None),
    ],
)
def test_a_bad_value_names_its_key(key: str, value: str, expected: str | None) -> None:
    problems = problems_of(sasl(**{key: value}))
    assert [p.split(": ")[0] for p in problems] == [f"kafka.{key}"]
    if expected is not None:
        assert problems == [expected]


def test_a_password_of_the_wrong_type_is_not_shown() -> None:
    problems = problems_of(sasl(sasl_password=[PASSWORD]))
    assert [p.split(": ")[0] for p in problems] == ["kafka.sasl_password"]
    assert "<redacted>" in problems[0]
    assert PASSWORD not in problems[0]


def test_a_missing_password_variable_is_reported_once_by_key() -> None:
    problems = problems_of(sasl(sasl_password="${KAFKA_PASSWORD}"))
    assert problems == ["kafka.sasl_password: environment variable KAFKA_PASSWORD is not set"]


def test_an_empty_password_from_the_environment_is_a_problem() -> None:
    problems = problems_of(sasl(sasl_password="${KAFKA_PASSWORD}"), {"KAFKA_PASSWORD": ""})
    assert problems == ['kafka.sasl_password: empty with security_protocol = "SASL_SSL"']


def test_security_problems_are_reported_with_every_other_problem() -> None:
    problems = problems_of(
        {
            "kafka": {"security_protocol": "SASL_SSL", "sasl_mechanism": "PLAIN"},
            "worker": {"web_port": -1},
        }
    )
    assert [p.split(": ")[0] for p in problems] == [
        "worker.web_port",
        "kafka.sasl_username",
        "kafka.sasl_password",
    ]


def test_kafka_and_redis_secrets_are_never_shown(tmp_path: Path) -> None:
    cert = tmp_path / "client.pem"
    cert.write_text("x")
    cfg = parse_config(
        {
            **sasl(ssl_certfile=str(cert), ssl_key_password="${KEY_PASSWORD}"),
            "redis": {"url": "rediss://:${REDIS_PASSWORD}@redis:6380/0"},
        },
        "cfg.toml",
        {"KEY_PASSWORD": PASSWORD + "-key", "REDIS_PASSWORD": REDIS_PASSWORD},
    )
    assert cfg.kafka.ssl_key_password is not None
    for text in (str(cfg), repr(cfg), cfg.model_dump_json(), str(cfg.model_dump())):
        assert PASSWORD not in text
        assert REDIS_PASSWORD not in text
    assert cfg.redis.shown_url == "rediss://:<redacted>@redis:6380/0"


# -- [redis] ----------------------------------------------------------------------------------


def test_a_rediss_url_with_a_password_and_a_ca_is_valid(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    cfg = parse_config(
        {"redis": {"url": f"rediss://app:{REDIS_PASSWORD}@redis:6380/0", "ssl_cafile": str(ca)}},
        "cfg.toml",
        {},
    )
    assert cfg.redis.uses_tls
    assert cfg.redis.shown_url == "rediss://app:<redacted>@redis:6380/0"


@pytest.mark.parametrize(
    ("redis", "expected"),
    [
        (
            {"url": f"http://:{REDIS_PASSWORD}@redis:6379"},
            ["redis.url: must start with redis://, rediss:// or unix://"],
        ),
        ({"url": REDIS_PASSWORD}, ["redis.url: must start with redis://, rediss:// or unix://"]),
        (
            {"url": "redis://redis:6379/0", "ssl_cafile": "/nowhere/ca.pem"},
            ["redis.ssl_cafile: set, but the url is not rediss:// (TLS)"],
        ),
        (
            {"url": "rediss://redis:6380/0", "ssl_cafile": "/nowhere/ca.pem"},
            ["redis.ssl_cafile: no such file: /nowhere/ca.pem"],
        ),
    ],
)
def test_the_redis_url_and_tls_keys_are_checked(redis: dict[str, Any], expected: list[str]) -> None:
    problems = problems_of({"redis": redis})
    assert problems == expected
    assert REDIS_PASSWORD not in "\n".join(problems)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
        (f"redis://:{REDIS_PASSWORD}@h:1/0", "redis://:<redacted>@h:1/0"),
        (f"rediss://user:{REDIS_PASSWORD}@h:1", "rediss://user:<redacted>@h:1"),
        (f"redis://{REDIS_PASSWORD}@h", "redis://<redacted>@h"),  # a bare password
        (f"redis://u:p%40{REDIS_PASSWORD}@h/0", "redis://u:<redacted>@h/0"),
        (
            f"unix:///run/redis.sock?db=0&password={REDIS_PASSWORD}",
            "unix:///run/redis.sock?db=0&password=<redacted>",
        ),
        ("not a url", "not a url"),
    ],
)
def test_redact_url_hides_every_password(url: str, shown: str) -> None:
    assert redact_url(url) == shown
    assert RedisSettings(url=url).shown_url == shown
