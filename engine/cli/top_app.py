"""The Textual app behind ``kestrel top`` (imported only when the command runs)."""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

from textual.app import App, ComposeResult
from textual.binding import BindingType
from textual.widgets import DataTable, Footer, Header, Static

from engine.cli.api_client import ApiClient, ApiError, fmt_num, fmt_time

__all__ = ["TopApp", "stats_line"]


def stats_line(s: dict[str, Any]) -> str:
    """The essentials of ``GET /api/v1/stats`` on two lines.

    >>> print(stats_line({"events_per_second": 12.5, "events_total": 100.0, "lag_seconds": 0.2,
    ...     "invalid_total": 3.0, "late_total": 0.0, "deliveries": {"ok": 4.0},
    ...     "alerts": {"firing": 2.0}, "series": {"metric": 5}, "redis_up": True}))
    events/s 12.5   events 100   lag 0.2 s   input dead letters 3   late 0
    alerts fired 2   delivered 4   retried 0   dead-lettered 0   series 5   redis up
    """
    d = s.get("deliveries") or {}
    redis = "off" if s.get("redis_up") is None else ("up" if s["redis_up"] else "DOWN")
    return (
        f"events/s {fmt_num(s.get('events_per_second'), 3)}   "
        f"events {int(s.get('events_total') or 0)}   lag {fmt_num(s.get('lag_seconds'), 3)} s   "
        f"input dead letters {int(s.get('invalid_total') or 0)}   "
        f"late {int(s.get('late_total') or 0)}\n"
        f"alerts fired {int((s.get('alerts') or {}).get('firing', 0))}   "
        f"delivered {int(d.get('ok', 0))}   retried {int(d.get('retried', 0))}   "
        f"dead-lettered {int(d.get('dead_lettered', 0))}   "
        f"series {sum((s.get('series') or {}).values())}   redis {redis}"
    )


class TopApp(App[None]):
    """Firing alerts, recent transitions and the worker's counters, refreshed every
    ``interval_seconds`` from ``client``."""

    TITLE = "kestrel top"
    CSS = """
    #stats { height: 3; padding: 0 1; background: $boost; }
    #status { height: 1; padding: 0 1; color: $text-muted; }
    DataTable { height: 1fr; }
    .label { height: 1; padding: 0 1; text-style: bold; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [("q", "quit", "quit"), ("r", "refresh", "refresh")]

    def __init__(self, client: ApiClient, interval_seconds: float = 2.0) -> None:
        super().__init__()
        self.client = client
        self.interval_seconds = interval_seconds
        #: Refreshes done, and the last error (for tests and the status line).
        self.refreshes = 0
        self.error: str | None = None

    def compose(self) -> ComposeResult:
        """The widgets."""
        yield Header()
        yield Static("", id="status")
        yield Static("connecting...", id="stats")
        yield Static("FIRING NOW", classes="label")
        yield DataTable(id="firing", zebra_stripes=True, cursor_type="row")
        yield Static("RECENT TRANSITIONS", classes="label")
        yield DataTable(id="recent", zebra_stripes=True, cursor_type="row")
        yield Footer()

    def on_mount(self) -> None:
        """Set up the tables and the refresh timer."""
        self.query_one("#firing", DataTable).add_columns(
            "severity", "series", "detector", "value", "expected", "score", "since", "reason"
        )
        self.query_one("#recent", DataTable).add_columns(
            "at", "status", "series", "detector", "value", "score"
        )
        self.set_interval(self.interval_seconds, self.action_refresh)
        self.call_later(self.action_refresh)

    async def action_refresh(self) -> None:
        """Fetch stats and alerts (in a thread: the client blocks) and redraw."""
        try:
            stats, alerts = await asyncio.to_thread(
                lambda: (self.client.stats(), self.client.alerts(limit=30))
            )
        except ApiError as exc:
            self.error = str(exc)
            self.query_one("#status", Static).update(f"[red]{exc}[/]")
            return
        self.error = None
        self.refreshes += 1
        self.sub_title = f"{stats.get('app_id', '')} at {self.client.url}"
        self.query_one("#status", Static).update(f"live, refreshed {self.refreshes} times")
        self.query_one("#stats", Static).update(stats_line(stats))
        firing = self.query_one("#firing", DataTable)
        firing.clear()
        for a in alerts["firing"]:
            firing.add_row(
                a["severity"].upper(),
                a["series_id"],
                a["detector"],
                fmt_num(a["value"]),
                fmt_num(a["expected"]),
                fmt_num(a["score"], 3),
                fmt_time(a["started_at"]),
                a.get("reason", ""),
            )
        recent = self.query_one("#recent", DataTable)
        recent.clear()
        for a in alerts["recent"]:
            at = a["ended_at"] if a.get("ended_at") is not None else a["started_at"]
            recent.add_row(
                fmt_time(at),
                a["status"] + (" (repeat)" if a.get("repeat") else ""),
                a["series_id"],
                a["detector"],
                fmt_num(a["value"]),
                fmt_num(a["score"], 3),
            )
