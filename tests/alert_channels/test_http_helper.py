"""The shared HTTP helper: URL redaction, Retry-After, status classes and the log filter."""

from __future__ import annotations

import email.utils
import logging
from collections.abc import Awaitable, Callable

import httpx
import pytest

from alert_channels.errors import PermanentDeliveryError, RetryableDeliveryError
from alert_channels.http import (
    MAX_RESPONSE_BYTES,
    HttpSender,
    Redactor,
    SecretURL,
    classify_status,
    header_secrets,
    parse_retry_after,
    register_secrets,
    secret_headers,
)
from tests.alert_channel_fakes import FakeService, Reply

SECRET = "T0k3n-abcdef-123456"


@pytest.mark.parametrize(
    ("url", "secret_path", "shown"),
    [
        (
            f"https://hooks.slack.com/services/T0/B0/{SECRET}",
            True,
            "https://hooks.slack.com/<redacted>",
        ),
        (
            f"http://127.0.0.1:8080/hook?token={SECRET}",
            False,
            "http://127.0.0.1:8080/hook?<redacted>",
        ),
        (f"http://user:{SECRET}@am.local:9093", False, "http://am.local:9093/"),
        (
            f"https://example.com/a/{SECRET}/b?x=1",
            True,
            "https://example.com/<redacted>?<redacted>",
        ),
        ("https://example.com/", True, "https://example.com/"),
    ],
)
def test_secret_url_shows_only_what_is_not_secret(url: str, secret_path: bool, shown: str) -> None:
    secret_url = SecretURL(url, secret_path=secret_path)
    assert secret_url.redacted == shown
    assert str(secret_url) == shown
    assert repr(secret_url) == f"SecretURL({shown!r})"
    assert SECRET not in f"{secret_url} {secret_url!r} {secret_url!s}"
    assert secret_url.get_secret_value() == url
    assert url in secret_url.secrets or url == "https://example.com/"


def test_secret_url_knows_every_spelling_of_its_secrets() -> None:
    secret_url = SecretURL("https://example.com/p/a%20b-secret?k=v%2Fsecret-value")
    redact = Redactor(secret_url.secrets)
    for spelling in ("/p/a b-secret", "/p/a%20b-secret", "v/secret-value", "v%2Fsecret-value"):
        assert spelling in secret_url.secrets
        assert "secret" not in redact(f"x {spelling} y")


@pytest.mark.parametrize(
    "bad",
    [
        f"ftp://host/{SECRET}",
        f"/relative/{SECRET}",
        f"http://host:{SECRET}/x",
        "http:///nohost",
        "",
    ],
)
def test_invalid_url_error_does_not_quote_it(bad: str) -> None:
    with pytest.raises(ValueError, match="url: not an absolute http") as excinfo:
        SecretURL(bad)
    assert SECRET not in str(excinfo.value)
    assert excinfo.value.__context__ is None


def test_secret_url_join_keeps_secrecy() -> None:
    base = SecretURL(f"http://am:9093/prefix?token={SECRET}", secret_path=False)
    joined = base.join("/api/v2/alerts")
    assert joined.get_secret_value() == f"http://am:9093/prefix/api/v2/alerts?token={SECRET}"
    assert joined.redacted == "http://am:9093/prefix/api/v2/alerts?<redacted>"


def test_redactor_blanks_longest_first_and_ignores_tiny_values() -> None:
    redact = Redactor(["abcd", "abcdefgh", "1", ""])
    assert redact("x abcdefgh y abcd z 1") == "x <redacted> y <redacted> z 1"
    assert "abcd" not in repr(redact)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("30", 30.0),
        (" 2 ", 2.0),
        ("1.5", 1.5),
        ("-5", 0.0),
        ("0", 0.0),
        (email.utils.formatdate(1_000_045, usegmt=True), 45.0),
        (email.utils.formatdate(999_000, usegmt=True), 0.0),
        ("Thu, 01 Dec 1994 16:00:00 -0000", None),  # not GMT: not an HTTP-date
        ("soon", None),
        ("", None),
        ("nan", None),
        (None, None),
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, now=1_000_000.0) == expected


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        *[(s, "ok") for s in (200, 201, 202, 204, 299)],
        *[(s, "retryable") for s in (408, 429, 500, 502, 503, 504, 599)],
        *[(s, "permanent") for s in (100, 301, 302, 304, 400, 401, 403, 404, 409, 410, 422)],
    ],
)
def test_classify_status(status: int, expected: str) -> None:
    assert classify_status(status) == expected


def test_header_secrets_and_validation() -> None:
    assert header_secrets({"Authorization": f"Bearer {SECRET}"}) == [f"Bearer {SECRET}", SECRET]
    with pytest.raises(ValueError, match="headers: invalid header name 'bad name'") as excinfo:
        secret_headers({"bad name": SECRET})
    assert SECRET not in str(excinfo.value)


async def test_sender_quotes_at_most_a_little_of_the_body(
    fake_service: Callable[..., Awaitable[FakeService]], client: httpx.AsyncClient
) -> None:
    service = await fake_service(Reply(500, "E" * (2 * MAX_RESPONSE_BYTES)))
    sender = HttpSender(kind="webhook", name="t", url=SecretURL(service.url + "/x"), client=client)
    with pytest.raises(RetryableDeliveryError) as excinfo:
        await sender.post(b"{}")
    assert len(str(excinfo.value)) < 400
    assert "HTTP 500" in str(excinfo.value)


async def test_redirects_are_never_followed(
    fake_service: Callable[..., Awaitable[FakeService]],
) -> None:
    service = await fake_service(Reply(302, headers={"Location": "/elsewhere"}))
    async with httpx.AsyncClient(trust_env=False, follow_redirects=True) as following:
        sender = HttpSender(
            kind="webhook", name="t", url=SecretURL(service.url + "/x"), client=following
        )
        with pytest.raises(PermanentDeliveryError, match="HTTP 302") as excinfo:
            await sender.post(b"{}")
    assert excinfo.value.status_code == 302
    assert [r.path for r in service.received] == ["/x"]


def test_sender_repr_is_redacted(client: httpx.AsyncClient) -> None:
    sender = HttpSender(
        kind="webhook", name="t", url=SecretURL(f"http://127.0.0.1:1/{SECRET}"), client=client
    )
    assert (
        repr(sender) == "HttpSender(kind='webhook', name='t', url='http://127.0.0.1:1/<redacted>')"
    )
    assert sender.prefix == "webhook channel 't': POST http://127.0.0.1:1/<redacted>"


def test_sender_rejects_bad_timeout(client: httpx.AsyncClient) -> None:
    with pytest.raises(ValueError, match="timeout_seconds must be > 0"):
        HttpSender(
            kind="w", name="t", url=SecretURL("http://h/x"), client=client, timeout_seconds=0
        )


async def test_httpx_logs_urls_so_the_filter_is_needed(
    fake_service: Callable[..., Awaitable[FakeService]],
    client: httpx.AsyncClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Without our filter httpx's INFO line holds the secret; with it, the secret is blanked."""
    caplog.set_level(logging.DEBUG)
    service = await fake_service(Reply(200))
    unregistered = f"{service.url}/hook/never-registered-{SECRET}-x"
    registered = f"{service.url}/hook/registered-{SECRET}-y"
    register_secrets(SecretURL(registered).secrets)

    await client.post(unregistered, content=b"{}")
    await client.post(registered, content=b"{}")

    lines = [r.getMessage() for r in caplog.records if r.name == "httpx"]
    assert any(f"never-registered-{SECRET}-x" in line for line in lines), lines
    assert not any(f"registered-{SECRET}-y" in line for line in lines if "never" not in line)
    assert any("<redacted>" in line for line in lines)
    filters = logging.getLogger("httpx").filters + logging.getLogger("httpcore.http11").filters
    assert len(filters) >= 2
