"""Kestrel's anomaly view in Prometheus terms: gauges of the series chosen in ``[metrics]``.

For each series that ``[metrics] export_series`` chooses (see :mod:`engine.core.series_export`),
read from the pipeline's live state when Prometheus scrapes:

- ``kestrel_series_value{series}``: the last observed value, in the series' units;
- ``kestrel_series_expected{series,detector}``: what the detector expects;
- ``kestrel_series_band_low{series,detector}``, ``kestrel_series_band_high{series,detector}``:
  its band (see each detector's ``expected_band``); absent when the detector has none;
- ``kestrel_series_anomaly_score{series,detector}``: the score of the last value (higher = more
  anomalous);
- ``kestrel_series_exported``: how many series this worker exports (at most
  ``export_max_series``).

Kestrel's rule is that a series id is never a label. This collector is the one exception, and
only because the label set is bounded by config: the globs choose the series and
``[metrics] export_max_series`` caps their number per worker (1000 by default), so the exported
time series number at most ``export_max_series x (1 + 4 x detectors)``. Without
``export_series`` nothing is exported. A ``nan`` (no value or verdict yet) is left out.

>>> from prometheus_client import CollectorRegistry
>>> from engine.core.series_export import DetectorView, SeriesView
>>> view = SeriesView("cpu{host=a}", 97.0, (DetectorView("zscore", 8.2, 20.0, 11.0, 29.0),))
>>> registry = CollectorRegistry()
>>> registry.register(SeriesCollector(lambda: [view]))
>>> registry.get_sample_value("kestrel_series_band_high", {"series": "cpu{host=a}",
...                                                         "detector": "zscore"})
29.0
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from engine.core.series_export import SeriesView

__all__ = ["SERIES_METRICS", "SeriesCollector"]

#: The names this collector exports (for dashboards and their tests).
SERIES_METRICS = (
    "kestrel_series_value",
    "kestrel_series_expected",
    "kestrel_series_band_low",
    "kestrel_series_band_high",
    "kestrel_series_anomaly_score",
    "kestrel_series_exported",
)


class SeriesCollector(Collector):
    """Gauges of the exported series' anomaly view, read at scrape time.

    Parameters
    ----------
    views
        Returns the exported series' views now (the pipeline's
        :meth:`~engine.core.pipeline.Pipeline.exported_views`); called once per scrape, on the
        worker's event loop like the pipeline itself.
    """

    def __init__(self, views: Callable[[], Sequence[SeriesView]]) -> None:
        self._views = views

    def describe(self) -> Iterator[Metric]:
        """The metric families without samples (so registering does not read live state)."""
        yield from self._families()

    def collect(self) -> Iterator[Metric]:
        """The current gauges."""
        views = self._views()
        value, expected, low, high, score, count = self._families()
        for view in views:
            if not math.isnan(view.value):
                value.add_metric([view.series], view.value)
            for d in view.detectors:
                labels = [view.series, d.detector]
                for family, number in (
                    (expected, d.expected),
                    (low, d.low),
                    (high, d.high),
                    (score, d.score),
                ):
                    if not math.isnan(number):
                        family.add_metric(labels, number)
        count.add_metric([], len(views))
        yield from (value, expected, low, high, score, count)

    @staticmethod
    def _families() -> tuple[GaugeMetricFamily, ...]:
        by_detector = ["series", "detector"]
        return (
            GaugeMetricFamily(
                "kestrel_series_value",
                "Last observed value of an exported series ([metrics] export_series), its units.",
                labels=["series"],
            ),
            GaugeMetricFamily(
                "kestrel_series_expected",
                "The value the detector expects for an exported series, its units.",
                labels=by_detector,
            ),
            GaugeMetricFamily(
                "kestrel_series_band_low",
                "Low edge of the detector's expected band for an exported series, its units.",
                labels=by_detector,
            ),
            GaugeMetricFamily(
                "kestrel_series_band_high",
                "High edge of the detector's expected band for an exported series, its units.",
                labels=by_detector,
            ),
            GaugeMetricFamily(
                "kestrel_series_anomaly_score",
                "The detector's anomaly score of the series' last value (higher = more anomalous).",
                labels=by_detector,
            ),
            GaugeMetricFamily(
                "kestrel_series_exported",
                "Series this worker exports the anomaly view of (at most "
                "[metrics] export_max_series).",
                labels=[],
            ),
        )
