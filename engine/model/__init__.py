"""Kestrel's domain model: pure types shared by every layer, importing nothing else of Kestrel.

- :mod:`engine.model.alert`: an alert transition, its severity, fingerprint and labels;
- :mod:`engine.model.durations`: config durations, seconds or Go-style text (``"5m"``);
- :mod:`engine.model.events`: decoded log events, metric samples and rejected inputs;
- :mod:`engine.model.levels`: log level names and numbers;
- :mod:`engine.model.notification`: a notification to one receiver and its dead-letter records;
- :mod:`engine.model.times`: times formatted for people and peers (RFC 3339).
"""
