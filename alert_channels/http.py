"""The one HTTP helper every HTTP channel uses: post, classify, parse ``Retry-After``, redact.

:class:`HttpSender` posts a JSON body with an injected :class:`httpx.AsyncClient` and a per-request
timeout, and turns the result into success or a delivery error (:func:`classify_status`):

==========================  ==================================
outcome                     error
==========================  ==================================
2xx                         none (channels may check more)
408, 429, 5xx               ``RetryableDeliveryError`` (with ``retry_after`` from ``Retry-After``)
other 1xx/3xx/4xx           ``PermanentDeliveryError`` (redirects are not followed)
timeout, connection error   ``RetryableDeliveryError``
invalid URL                 ``PermanentDeliveryError``
==========================  ==================================

Secrets (a webhook URL's path, query and user info, routing keys, signing secrets, auth headers)
never appear in an error message, a ``repr``, a traceback or a log line:

* URLs are held by :class:`SecretURL`, whose ``str`` and ``repr`` show only scheme, host and port.
* Every message passes through the sender's :meth:`HttpSender.redact`, which blanks each secret.
* httpx exceptions (whose text holds the URL) are translated at the boundary and the new error is
  raised *outside* the ``except`` block, so it has neither ``__cause__`` nor ``__context__``.
* httpx logs each request URL at INFO (logger ``httpx``); a filter installed on the ``httpx`` and
  ``httpcore`` loggers blanks every secret any sender has registered (:func:`register_secrets`).

Known limit: a traceback rendered with local variables (``capture_locals=True``) may show the
request body, which for PagerDuty holds the routing key.
"""

from __future__ import annotations

import email.utils
import logging
import math
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import parse_qsl

import httpx
import orjson

from alert_channels.errors import DeliveryError, PermanentDeliveryError, RetryableDeliveryError

__all__ = [
    "HttpResponse",
    "HttpSender",
    "SecretURL",
    "classify_status",
    "encode_json",
    "header_secrets",
    "parse_retry_after",
    "register_secrets",
    "secret_headers",
]

REDACTED = "<redacted>"
#: Secrets shorter than this are not blanked (they would blank unrelated text such as "1").
MIN_SECRET_LENGTH = 4
#: At most this many bytes of a response body are read (and at most 200 characters quoted).
MAX_RESPONSE_BYTES = 64 * 1024
_QUOTED_BODY_CHARS = 200

StatusClass = Literal["ok", "retryable", "permanent"]


def classify_status(status_code: int) -> StatusClass:
    """Alertmanager's rule: 2xx ok, 408/429/5xx worth retrying, anything else final.

    >>> [classify_status(s) for s in (204, 301, 404)]
    ['ok', 'permanent', 'permanent']
    >>> [classify_status(s) for s in (408, 429, 503)]
    ['retryable', 'retryable', 'retryable']
    """
    if 200 <= status_code < 300:
        return "ok"
    if status_code in (408, 429) or status_code >= 500:
        return "retryable"
    return "permanent"


def parse_retry_after(value: str | None, *, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP-date.

    Parameters
    ----------
    value
        The header's value, or ``None``.
    now
        The current wall-clock time (epoch seconds), for HTTP-dates.

    Returns
    -------
    float or None
        Seconds, never negative; ``None`` if absent or unparseable.

    >>> parse_retry_after("30", now=0.0)
    30.0
    >>> parse_retry_after("Thu, 01 Jan 1970 00:01:40 GMT", now=70.0)
    30.0
    >>> parse_retry_after("Thu, 01 Jan 1970 00:01:40 GMT", now=500.0)
    0.0
    >>> parse_retry_after("soon", now=0.0) is None
    True
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        try:
            moment = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if moment.tzinfo is None:  # "-0000" dates parse naive; HTTP-dates are always GMT
            return None
        seconds = moment.timestamp() - now
    if math.isnan(seconds):
        return None
    return max(0.0, seconds)


def encode_json(payload: Any) -> bytes:
    """Compact JSON bytes (NaN and infinities become ``null``)."""
    return orjson.dumps(payload)


class SecretURL:
    """A URL whose ``str`` and ``repr`` hide everything but scheme, host and port.

    Parameters
    ----------
    url
        An absolute ``http`` or ``https`` URL.
    secret_path
        Whether the path is secret (Slack and webhook URLs: yes; a plain API base URL: no). The
        query and any user info are always secret.

    Raises
    ------
    ValueError
        If ``url`` is not an absolute http(s) URL; the message does not quote it.

    >>> u = SecretURL("https://hooks.slack.com/services/T000/B000/XXXXXXXX")
    >>> u
    SecretURL('https://hooks.slack.com/<redacted>')
    >>> SecretURL("http://am:9093/api/v2/alerts?token=abcdef", secret_path=False).redacted
    'http://am:9093/api/v2/alerts?<redacted>'
    """

    __slots__ = ("_parsed", "_raw", "_redacted", "_secret_path", "_secrets")

    def __init__(self, url: str, *, secret_path: bool = True) -> None:
        parsed = _parse_url(url)
        if parsed is None:
            raise ValueError("url: not an absolute http(s) URL (value not shown: it may be secret)")
        self._raw = url
        self._parsed = parsed
        self._secret_path = secret_path
        secrets = {url, str(parsed)}
        path = parsed.path
        path_is_secret = secret_path and path not in ("", "/")
        if path_is_secret:
            secrets.add(path)
            secrets.add(parsed.raw_path.split(b"?", 1)[0].decode("ascii"))
        query = parsed.query.decode("ascii")
        if query:
            secrets.add(query)
            for _key, value in parse_qsl(query, keep_blank_values=True):
                secrets.add(value)
            for part in query.split("&"):
                secrets.add(part.split("=", 1)[-1])
        userinfo = parsed.userinfo.decode("ascii")
        if userinfo:  # the user name alone is not secret; the password is
            secrets.update({userinfo, parsed.password or ""})
            secrets.add(userinfo.partition(":")[2])
        self._secrets = frozenset(s for s in secrets if len(s) >= MIN_SECRET_LENGTH)
        netloc = parsed.netloc.decode("ascii")
        shown = f"{parsed.scheme}://{netloc}"
        if path_is_secret:
            shown += "/" + REDACTED
        else:
            shown += path
        if query:
            shown += "?" + REDACTED
        self._redacted = shown

    @property
    def redacted(self) -> str:
        """The URL with its secret parts blanked."""
        return self._redacted

    @property
    def secrets(self) -> frozenset[str]:
        """The substrings that must never be shown (the URL in its spellings, path, query, ...)."""
        return self._secrets

    def get_secret_value(self) -> str:
        """The real URL, for the request only."""
        return self._raw

    def join(self, path: str) -> SecretURL:
        """This URL with ``path`` appended to its path (query kept), same secrecy.

        >>> SecretURL("http://am:9093/prefix", secret_path=False).join("/api/v2/alerts").redacted
        'http://am:9093/prefix/api/v2/alerts'
        """
        base = self._parsed.copy_with(path=self._parsed.path.rstrip("/") + path)
        return SecretURL(str(base), secret_path=self._secret_path)

    def __str__(self) -> str:
        return self._redacted

    def __repr__(self) -> str:
        return f"SecretURL({self._redacted!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SecretURL) and other._raw == self._raw

    def __hash__(self) -> int:
        return hash(self._raw)


def _parse_url(url: str) -> httpx.URL | None:
    """Parse an absolute http(s) URL; ``None`` when invalid (httpx's message quotes the URL)."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError):
        return None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        return None
    return parsed


class Redactor:
    """Blanks a fixed set of secret substrings, longest first.

    >>> Redactor(["s3cr3t-token"])("bad token s3cr3t-token")
    'bad token <redacted>'
    """

    __slots__ = ("_secrets",)

    def __init__(self, secrets: Iterable[str]) -> None:
        unique = {s for s in secrets if len(s) >= MIN_SECRET_LENGTH}
        self._secrets = tuple(sorted(unique, key=len, reverse=True))

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        return text

    def __repr__(self) -> str:
        return f"Redactor(<{len(self._secrets)} secrets>)"


class _RedactingLogFilter(logging.Filter):
    """Blanks registered secrets in records of the HTTP libraries' loggers."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._secrets: set[str] = set()
        self._redactor = Redactor(())

    def add(self, secrets: Iterable[str]) -> None:
        with self._lock:
            before = len(self._secrets)
            self._secrets.update(s for s in secrets if len(s) >= MIN_SECRET_LENGTH)
            if len(self._secrets) != before:
                self._redactor = Redactor(self._secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        redactor = self._redactor
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: drop its arguments rather than risk a leak
            message = str(record.msg)
        cleaned = redactor(message)
        if cleaned != message or record.args:
            record.msg = cleaned
            record.args = ()
        return True


_LOG_FILTER = _RedactingLogFilter()
#: httpx logs request URLs at INFO; httpcore logs connection details at DEBUG (child loggers do not
#: pass through their parent's filters, so each one gets the filter).
_HTTP_LOGGERS = (
    "httpx",
    "httpcore",
    "httpcore.connection",
    "httpcore.http11",
    "httpcore.http2",
    "httpcore.proxy",
    "httpcore.socks",
)


def register_secrets(secrets: Iterable[str]) -> None:
    """Blank ``secrets`` in every record the ``httpx``/``httpcore`` loggers emit from now on.

    Senders call it for their secrets; call it for any other secret that may reach those loggers.
    """
    _LOG_FILTER.add(secrets)
    for name in _HTTP_LOGGERS:
        http_logger = logging.getLogger(name)
        if _LOG_FILTER not in http_logger.filters:
            http_logger.addFilter(_LOG_FILTER)


@dataclass(frozen=True, slots=True)
class HttpResponse:
    """A successful (2xx) response.

    Attributes
    ----------
    status_code
        The HTTP status.
    text
        The start of the body (at most ``MAX_RESPONSE_BYTES`` bytes, decoded leniently).
    """

    status_code: int
    text: str


class HttpSender:
    """Posts JSON bodies to one URL for one channel; see the module docstring for the rules.

    Parameters
    ----------
    kind
        Channel kind for messages (``"slack"``, ``"webhook"``, ...).
    name
        The channel's name.
    url
        Where to post.
    client
        The shared client; the sender does not close it.
    timeout_seconds
        Per-request timeout (connect, read, write and pool wait each).
    secrets
        More values to blank (routing keys, signing secrets, auth header values).
    clock
        Wall-clock epoch seconds, to turn a ``Retry-After`` HTTP-date into seconds.
    """

    def __init__(
        self,
        *,
        kind: str,
        name: str,
        url: SecretURL,
        client: httpx.AsyncClient,
        timeout_seconds: float = 10.0,
        secrets: Iterable[str] = (),
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not timeout_seconds > 0:
            raise ValueError(f"timeout_seconds must be > 0, got {timeout_seconds}")
        self.kind = kind
        self.name = name
        self.url = url
        self.timeout_seconds = float(timeout_seconds)
        self._client = client
        self._clock = clock
        all_secrets = set(url.secrets) | {s for s in secrets if s}
        self.redact = Redactor(all_secrets)
        register_secrets(all_secrets)

    def __repr__(self) -> str:
        return f"HttpSender(kind={self.kind!r}, name={self.name!r}, url={self.url.redacted!r})"

    @property
    def prefix(self) -> str:
        """How messages start: ``slack channel 'ops': POST https://hooks.slack.com/<redacted>``."""
        return f"{self.kind} channel {self.name!r}: POST {self.url.redacted}"

    async def post(self, body: bytes, *, headers: Mapping[str, str] | None = None) -> HttpResponse:
        """Post ``body`` as ``application/json``; return the 2xx response or raise.

        Raises
        ------
        RetryableDeliveryError
            Timeout, connection or protocol error, or HTTP 408/429/5xx (with ``retry_after``).
        PermanentDeliveryError
            Invalid URL or any other non-2xx status.
        """
        request_headers = {"content-type": "application/json", **(headers or {})}
        error: DeliveryError | None = None
        status_code = 0
        retry_after_header: str | None = None
        chunks: list[bytes] = []
        try:
            async with self._client.stream(
                "POST",
                self.url.get_secret_value(),
                content=body,
                headers=request_headers,
                timeout=self.timeout_seconds,
                follow_redirects=False,  # a redirect would carry the payload elsewhere
            ) as response:
                status_code = response.status_code
                retry_after_header = response.headers.get("retry-after")
                size = 0
                async for chunk in response.aiter_bytes():
                    chunks.append(chunk)
                    size += len(chunk)
                    if size >= MAX_RESPONSE_BYTES:
                        break
        except httpx.TimeoutException as exc:
            error = RetryableDeliveryError(
                f"{self.prefix}: timed out after {self.timeout_seconds:g}s ({type(exc).__name__})"
            )
        except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
            error = PermanentDeliveryError(f"{self.prefix}: invalid URL ({type(exc).__name__})")
        except httpx.HTTPError as exc:  # connection refused/reset, protocol errors, ...
            detail = self.redact(str(exc))[:_QUOTED_BODY_CHARS]
            error = RetryableDeliveryError(f"{self.prefix}: {type(exc).__name__}: {detail}")
        # Raised here, outside the ``except`` blocks: the httpx exception (whose text and request
        # hold the URL) must not travel along as ``__context__``.
        if error is not None:
            raise error

        text = b"".join(chunks)[:MAX_RESPONSE_BYTES].decode("utf-8", errors="replace")
        verdict = classify_status(status_code)
        if verdict == "ok":
            return HttpResponse(status_code=status_code, text=text)
        message = f"{self.prefix}: HTTP {status_code}"
        quoted = self.redact(" ".join(text.split()))[:_QUOTED_BODY_CHARS]
        if quoted:
            message += f": {quoted}"
        if verdict == "retryable":
            retry_after = parse_retry_after(retry_after_header, now=self._clock())
            if retry_after is not None:
                message += f" (retry after {retry_after:g}s)"
            raise RetryableDeliveryError(message, retry_after=retry_after, status_code=status_code)
        raise PermanentDeliveryError(message, status_code=status_code)


_HEADER_NAME = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")


def secret_headers(headers: Mapping[str, str] | None) -> dict[str, str]:
    """Validate extra request headers (e.g. ``Authorization``); their values are secrets.

    Raises
    ------
    ValueError
        If a header name is not a valid token; the message names the header, never its value.
    """
    out: dict[str, str] = {}
    for key, value in (headers or {}).items():
        if not _HEADER_NAME.match(key):
            raise ValueError(f"headers: invalid header name {key!r}")
        out[key] = value
    return out


def header_secrets(headers: Mapping[str, str]) -> list[str]:
    """The secret parts of header values: each value and its last word (``Bearer <token>``)."""
    out: list[str] = []
    for value in headers.values():
        out.append(value)
        words = value.split()
        if words:
            out.append(words[-1])
    return out
