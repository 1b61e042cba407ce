"""Talking to a worker's read-only API (``/api/v1``), for ``kestrel alerts``, ``explain``,
``tail`` and ``top``.

The worker is found from the config (``http://<worker.web_host>:<worker.web_port>``, the token in
``api.token``) unless ``--url`` and ``--token`` (or ``$KESTREL_API_TOKEN``) say otherwise.
"""

from __future__ import annotations

import argparse
import math
import os
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import orjson

from engine.cli.options import add_config, config_of

__all__ = ["ApiClient", "ApiError", "add_api", "client_of", "fmt_num", "fmt_time"]


class ApiError(Exception):
    """The worker could not be reached, or refused or failed a call (the message says which)."""


def add_api(p: argparse.ArgumentParser) -> None:
    """Add ``--config``, ``--url`` and ``--token``."""
    add_config(p)
    p.add_argument(
        "--url", metavar="URL", help="the worker's address (default: from the config's [worker])"
    )
    p.add_argument(
        "--token",
        metavar="TOKEN",
        help="the API's bearer token (default: $KESTREL_API_TOKEN, else the config's api.token)",
    )


def client_of(args: argparse.Namespace) -> ApiClient:
    """The client ``--url``/``--token``/``--config`` describe."""
    url, token = args.url, args.token or os.environ.get("KESTREL_API_TOKEN")
    if url is None or token is None:
        cfg = config_of(args)
        if url is None:
            host = cfg.worker.web_host
            host = "127.0.0.1" if host in ("0.0.0.0", "") else host
            url = f"http://{host}:{cfg.worker.web_port}"
        if token is None and cfg.api.token is not None:
            token = cfg.api.token.get_secret_value()
    return ApiClient(url, token)


class ApiClient:
    """A synchronous client of one worker's API.

    Parameters
    ----------
    url:
        The worker's base address, e.g. ``http://127.0.0.1:6066``.
    token:
        The bearer token (``api.token``), or ``None``.
    timeout_seconds:
        Per request.
    """

    def __init__(self, url: str, token: str | None, timeout_seconds: float = 10.0) -> None:
        self.url = url.rstrip("/")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(
            base_url=self.url, headers=headers, timeout=timeout_seconds, trust_env=False
        )

    def close(self) -> None:
        """Close the connections."""
        self._http.close()

    def get(self, path: str, **params: Any) -> Any:
        """``GET /api/v1/<path>`` as JSON; :class:`ApiError` on any failure."""
        query = {k: v for k, v in params.items() if v is not None}
        try:
            r = self._http.get(f"/api/v1/{path}", params=query)
        except httpx.HTTPError as exc:
            raise ApiError(f"worker at {self.url}: {type(exc).__name__}: {exc}") from exc
        return _decoded(r, self.url)

    def alerts(self, limit: int = 50) -> dict[str, Any]:
        """What is firing and the recent transitions."""
        doc: dict[str, Any] = self.get("alerts", limit=limit)
        return doc

    def stats(self) -> dict[str, Any]:
        """Throughput, lag and counters."""
        doc: dict[str, Any] = self.get("stats")
        return doc

    def series(self, match: str | None = None, limit: int = 100) -> dict[str, Any]:
        """The series the worker holds."""
        doc: dict[str, Any] = self.get("series", match=match, limit=limit)
        return doc

    def explain(self, sid: str) -> dict[str, Any]:
        """One series explained."""
        doc: dict[str, Any] = self.get("series/" + quote(sid, safe=""))
        return doc

    def tail(self, **filters: Any) -> Iterator[dict[str, Any]]:
        """The hot events the worker's tail endpoint streams, one at a time, until it ends."""
        query = {k: v for k, v in filters.items() if v is not None}
        try:
            with self._http.stream(
                "GET",
                "/api/v1/tail",
                params=query,
                timeout=httpx.Timeout(10.0, read=None),
            ) as r:
                if r.status_code != 200:
                    r.read()
                    _decoded(r, self.url)
                event = ""
                for line in r.iter_lines():
                    if line.startswith("event: "):
                        event = line[7:]
                    elif line.startswith("data: "):
                        doc = orjson.loads(line[6:])
                        if event == "error":
                            raise ApiError(f"worker at {self.url}: tail: {doc.get('error')}")
                        yield doc
        except httpx.HTTPError as exc:
            raise ApiError(f"worker at {self.url}: {type(exc).__name__}: {exc}") from exc


def _decoded(r: httpx.Response, url: str) -> Any:
    try:
        doc = orjson.loads(r.content)
    except orjson.JSONDecodeError:
        doc = None
    if r.status_code != 200:
        why = doc.get("error") if isinstance(doc, dict) else r.text[:200]
        raise ApiError(f"worker at {url}: HTTP {r.status_code}: {why}")
    if doc is None:
        raise ApiError(f"worker at {url}: the answer is not JSON")
    return doc


def fmt_num(x: Any, digits: int = 4) -> str:
    """A number for people (``-`` when unknown).

    >>> fmt_num(3.14159), fmt_num(None), fmt_num(1234567.0)
    ('3.142', '-', '1.235e+06')
    """
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "-"
    return f"{x:.{digits}g}"


def fmt_time(ts: Any) -> str:
    """Epoch seconds as UTC ``YYYY-MM-DD HH:MM:SS`` (``-`` when unknown).

    >>> fmt_time(0.0)
    '1970-01-01 00:00:00'
    """
    if ts is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(float(ts)))
