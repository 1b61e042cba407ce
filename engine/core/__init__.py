"""The pure decisions: events in, series updates, verdicts and alert transitions out.

- :mod:`engine.core.batch`: one consumed batch through the decoders and the pipeline;
- :mod:`engine.core.pipeline`: per-series state and detectors, checkpointed state;
- :mod:`engine.core.windows`: event-time tumbling windows over log events;
- :mod:`engine.core.tracking`: one incident per (series, detector), repeats and resolution.

No Kafka, Faust, Redis, HTTP or clocks: the runtime feeds it and does the I/O.
"""
