"""Tools for trying, testing and measuring Kestrel: not needed by a production worker.

- :mod:`engine.devtools.broker`: the embedded Kafka-compatible broker (Tansu);
- :mod:`engine.devtools.apache_kafka`: Apache Kafka (KRaft) from Maven Central's jars, one node
  or a three-node cluster, optionally with a SASL_SSL listener;
- :mod:`engine.devtools.certificates`: a throwaway CA and a certificate for loopback (TLS tests);
- :mod:`engine.devtools.scenarios`: synthetic LLM-platform traffic with injected anomalies;
- :mod:`engine.devtools.produce`: publishing files and scenarios to topics, keyed by series;
- :mod:`engine.devtools.demo`: the demo (broker, worker, webhook receiver, traffic);
- :mod:`engine.devtools.offline`: running detectors over CSV series (replay, evaluate);
- :mod:`engine.devtools.nab_scoring`: the NAB scorer.
"""
