"""The bearer-token rule every API of the worker shares (silences, Alertmanager's v2, /api/v1).

A call needs ``Authorization: Bearer <api.token>``: without a configured token the APIs are off
(403), and a missing or wrong token is refused (401). The comparison takes constant time.
"""

from __future__ import annotations

import hmac

from faust.web import Request

__all__ = ["refusal"]


def refusal(token: str | None, request: Request) -> tuple[dict[str, str], int] | None:
    """``(error body, HTTP status)`` when ``request`` may not call the API, else ``None``."""
    if token is None:
        return {"error": "the API is off: set api.token"}, 403
    given = request.headers.get("Authorization", "")
    if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
        return {"error": "missing or wrong bearer token"}, 401
    return None
