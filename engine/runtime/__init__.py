"""The runtime: the only package that imports Faust.

- :mod:`engine.runtime.app`: builds the Faust app and a :class:`~engine.runtime.worker.Worker`;
- :mod:`engine.runtime.worker`: what one worker holds (topics, table, pipeline, sinks, notifier);
- :mod:`engine.runtime.ingest`: the detection handler, its timers and state checkpoints;
- :mod:`engine.runtime.delivery`: the notification handler and the silences view;
- :mod:`engine.runtime.notifier`: the active notifier (dispatcher + channels + retries + DLQ);
- :mod:`engine.runtime.channels`: channels with their retry policies, from the config;
- :mod:`engine.runtime.web`: ``/metrics``, ``/health`` and the silences API;
- :mod:`engine.runtime.metrics`: Prometheus metrics and the live collector;
- :mod:`engine.runtime.transport`: Faust's transport with a bounded fetch wait;
- :mod:`engine.runtime.topic_view`: reading compacted topics with a plain consumer;
- :mod:`engine.runtime.alerts_dlq`: replaying the alerts dead-letter topic;
- :mod:`engine.runtime.process`: running a worker process.
"""
