"""Hysteresis: turn a stream of per-point anomalous/normal flags into an alert state.

An alert fires after ``fire_after`` consecutive anomalous points and resolves after
``resolve_after`` consecutive normal ones, so one noisy point neither pages nor ends an incident.

>>> h = Hysteresis(fire_after=2, resolve_after=2)
>>> [h.step(flag) for flag in (True, False, True, True, True, False, False)]
[None, None, None, <Transition.FIRED: 'fired'>, None, None, <Transition.RESOLVED: 'resolved'>]
>>> h.firing
False
"""

from __future__ import annotations

from typing import Any

from detectors.base import Transition

__all__ = ["Hysteresis"]


class Hysteresis:
    """Consecutive-count state machine behind every detector's ``firing`` flag.

    Parameters
    ----------
    fire_after:
        Consecutive anomalous points needed to fire (>= 1).
    resolve_after:
        Consecutive normal points needed to resolve (>= 1).
    """

    __slots__ = ("_run", "fire_after", "firing", "resolve_after")

    def __init__(self, fire_after: int, resolve_after: int) -> None:
        if fire_after < 1:
            raise ValueError(f"fire_after: must be >= 1, got {fire_after}")
        if resolve_after < 1:
            raise ValueError(f"resolve_after: must be >= 1, got {resolve_after}")
        self.fire_after = fire_after
        self.resolve_after = resolve_after
        self.firing = False
        self._run = 0  # consecutive points that argue for leaving the current state

    def step(self, anomalous: bool) -> Transition | None:
        """Feed one point's flag; return the transition it causes, if any."""
        if anomalous != self.firing:
            self._run += 1
            needed = self.resolve_after if self.firing else self.fire_after
            if self._run >= needed:
                self.firing = anomalous
                self._run = 0
                return Transition.FIRED if anomalous else Transition.RESOLVED
        else:
            self._run = 0
        return None

    def to_state(self) -> dict[str, Any]:
        """The mutable state as a JSON-serialisable dict."""
        return {"firing": self.firing, "run": self._run}

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`to_state` returned."""
        self.firing = bool(state["firing"])
        self._run = int(state["run"])
