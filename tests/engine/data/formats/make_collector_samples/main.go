// Command make_collector_samples writes the OpenTelemetry Collector samples of
// tests/engine/data/formats with the Collector's own data library,
// go.opentelemetry.io/collector/pdata: its ProtoMarshaler and JSONMarshaler are what the
// Collector's Kafka exporter writes for encoding otlp_proto and otlp_json (one message per
// exported batch).
//
// It writes two kinds of samples:
//
//   - collector_{logs,traces,metrics_1,metrics_2}.{pb,json}: data built here with fixed
//     times and ids (logs with severities, spans with a parent and an error, metrics with
//     gauges, cumulative and delta sums and histograms, two exports 10 s apart);
//   - collector_from_sdk_*.json: the OpenTelemetry Python SDK's protobuf samples
//     (otlp_*.pb, written by make_otlp_samples.py) read with pdata's ProtoUnmarshaler and
//     written again with its JSONMarshaler: what a Collector receiving the SDK's export
//     writes to Kafka with encoding otlp_json.
//
// Run from this folder: go run . ..   Not run by the tests; the samples are committed.
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// t0 is 2024-05-14T09:21:03Z, the time of every sample.
var t0 = time.Unix(1715678463, 0).UTC()

func ts(offset time.Duration) pcommon.Timestamp { return pcommon.NewTimestampFromTime(t0.Add(offset)) }

var (
	traceID  = pcommon.TraceID([16]byte{0x5b, 0x8e, 0xff, 0xf7, 0x98, 0x03, 0x81, 0x03, 0xd2, 0x69, 0xb6, 0x33, 0x81, 0x3f, 0xc6, 0x0c})
	rootID   = pcommon.SpanID([8]byte{0xee, 0xe1, 0x9b, 0x7e, 0xc3, 0xc1, 0xb1, 0x74})
	childID  = pcommon.SpanID([8]byte{0xee, 0xe1, 0x9b, 0x7e, 0xc3, 0xc1, 0xb1, 0x75})
	traceID2 = pcommon.TraceID([16]byte{0x0a, 0xf7, 0x65, 0x19, 0x16, 0xcd, 0x43, 0xdd, 0x84, 0x48, 0xeb, 0x21, 0x1c, 0x80, 0x31, 0x9c})
	rootID2  = pcommon.SpanID([8]byte{0xb7, 0xad, 0x6b, 0x71, 0x69, 0x20, 0x33, 0x31})
)

func resource(r pcommon.Resource) {
	r.Attributes().PutStr("service.name", "checkout")
	r.Attributes().PutStr("service.version", "2.1.0")
	r.Attributes().PutStr("host.name", "web-1")
}

func logs() plog.Logs {
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	resource(rl.Resource())
	sl := rl.ScopeLogs().AppendEmpty()
	sl.Scope().SetName("checkout.http")
	add := func(at time.Duration, sev plog.SeverityNumber, text, body string) plog.LogRecord {
		lr := sl.LogRecords().AppendEmpty()
		lr.SetTimestamp(ts(at))
		lr.SetObservedTimestamp(ts(at + 3*time.Millisecond))
		lr.SetSeverityNumber(sev)
		lr.SetSeverityText(text)
		lr.Body().SetStr(body)
		return lr
	}
	placed := add(0, plog.SeverityNumberInfo, "Information", "order placed")
	placed.Attributes().PutStr("order.id", "o-1001")
	placed.Attributes().PutInt("order.items", 3)
	bad := add(250*time.Millisecond, plog.SeverityNumberError, "", "payment declined: card expired")
	bad.Attributes().PutStr("order.id", "o-1002")
	bad.Attributes().PutBool("retryable", false)
	bad.SetTraceID(traceID)
	bad.SetSpanID(rootID)
	// No time set: the observed time is the event's time.
	warn := sl.LogRecords().AppendEmpty()
	warn.SetObservedTimestamp(ts(500 * time.Millisecond))
	warn.SetSeverityNumber(plog.SeverityNumberWarn2)
	warn.Body().SetStr("slow payment provider")
	dbg := add(750*time.Millisecond, plog.SeverityNumberTrace, "", "cache probe")
	dbg.Attributes().PutDouble("cache.fill", 0.5)
	return ld
}

func traces() ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	resource(rs.Resource())
	ss := rs.ScopeSpans().AppendEmpty()
	ss.Scope().SetName("checkout.http")
	span := func(name string, kind ptrace.SpanKind, trace pcommon.TraceID, id, parent pcommon.SpanID,
		start, end time.Duration) ptrace.Span {
		s := ss.Spans().AppendEmpty()
		s.SetName(name)
		s.SetKind(kind)
		s.SetTraceID(trace)
		s.SetSpanID(id)
		s.SetParentSpanID(parent)
		s.SetStartTimestamp(ts(start))
		s.SetEndTimestamp(ts(end))
		return s
	}
	db := span("SELECT orders", ptrace.SpanKindClient, traceID, childID, rootID, 10*time.Millisecond, 30*time.Millisecond)
	db.Attributes().PutStr("db.system", "postgresql")
	root := span("POST /checkout", ptrace.SpanKindServer, traceID, rootID, pcommon.NewSpanIDEmpty(), 0, 120*time.Millisecond)
	root.Attributes().PutStr("http.request.method", "POST")
	root.Attributes().PutInt("http.response.status_code", 500)
	root.Status().SetCode(ptrace.StatusCodeError)
	root.Status().SetMessage("payment declined")
	fine := span("POST /checkout", ptrace.SpanKindServer, traceID2, rootID2, pcommon.NewSpanIDEmpty(), time.Second, time.Second+45500*time.Microsecond)
	fine.Status().SetCode(ptrace.StatusCodeOk)
	return td
}

// metrics is one export: at the time t0+at, the counters and histograms having reached step.
func metrics(at time.Duration, step int) pmetric.Metrics {
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	resource(rm.Resource())
	sm := rm.ScopeMetrics().AppendEmpty()
	sm.Scope().SetName("checkout.metrics")
	start := ts(-time.Minute)

	g := sm.Metrics().AppendEmpty()
	g.SetName("system.memory.usage")
	g.SetUnit("By")
	gp := g.SetEmptyGauge().DataPoints().AppendEmpty()
	gp.SetTimestamp(ts(at))
	gp.SetIntValue(int64(536870912 + step*1048576))
	gp.Attributes().PutStr("state", "used")

	u := sm.Metrics().AppendEmpty()
	u.SetName("system.cpu.utilization")
	u.SetUnit("1")
	up := u.SetEmptyGauge().DataPoints().AppendEmpty()
	up.SetTimestamp(ts(at))
	up.SetDoubleValue(0.25 + 0.5*float64(step))

	c := sm.Metrics().AppendEmpty()
	c.SetName("http.server.request.count")
	cs := c.SetEmptySum()
	cs.SetIsMonotonic(true)
	cs.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	cp := cs.DataPoints().AppendEmpty()
	cp.SetStartTimestamp(start)
	cp.SetTimestamp(ts(at))
	cp.SetIntValue(int64(100 + 30*step)) // 3 per second between the exports
	cp.Attributes().PutStr("http.route", "/checkout")

	a := sm.Metrics().AppendEmpty()
	a.SetName("http.server.active_requests")
	as := a.SetEmptySum()
	as.SetIsMonotonic(false)
	as.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	ap := as.DataPoints().AppendEmpty()
	ap.SetStartTimestamp(start)
	ap.SetTimestamp(ts(at))
	ap.SetIntValue(int64(4 - step))

	d := sm.Metrics().AppendEmpty()
	d.SetName("queue.messages.processed")
	ds := d.SetEmptySum()
	ds.SetIsMonotonic(true)
	ds.SetAggregationTemporality(pmetric.AggregationTemporalityDelta)
	dp := ds.DataPoints().AppendEmpty()
	dp.SetStartTimestamp(ts(at - 10*time.Second))
	dp.SetTimestamp(ts(at))
	dp.SetDoubleValue(25.0 + 25.0*float64(step)) // 2.5 then 5 per second
	dp.Attributes().PutStr("queue", "orders")

	h := sm.Metrics().AppendEmpty()
	h.SetName("http.server.request.duration")
	h.SetUnit("ms")
	hh := h.SetEmptyHistogram()
	hh.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	hp := hh.DataPoints().AppendEmpty()
	hp.SetStartTimestamp(start)
	hp.SetTimestamp(ts(at))
	hp.Attributes().PutStr("http.route", "/checkout")
	hp.ExplicitBounds().FromRaw([]float64{10, 25, 50, 100, 250})
	if step == 0 {
		hp.SetCount(4)
		hp.SetSum(60)
		hp.BucketCounts().FromRaw([]uint64{1, 2, 1, 0, 0, 0})
	} else { // the interval since: 4 observations, sum 340 (two in 25-50, two in 100-250)
		hp.SetCount(8)
		hp.SetSum(400)
		hp.BucketCounts().FromRaw([]uint64{1, 2, 3, 0, 2, 0})
	}

	q := sm.Metrics().AppendEmpty()
	q.SetName("db.query.duration")
	q.SetUnit("ms")
	qh := q.SetEmptyHistogram()
	qh.SetAggregationTemporality(pmetric.AggregationTemporalityDelta)
	qp := qh.DataPoints().AppendEmpty()
	qp.SetStartTimestamp(ts(at - 10*time.Second))
	qp.SetTimestamp(ts(at))
	qp.SetCount(10)
	qp.SetSum(50)
	qp.SetMin(1)
	qp.SetMax(9)
	qp.ExplicitBounds().FromRaw([]float64{2, 5, 10})
	qp.BucketCounts().FromRaw([]uint64{2, 4, 4, 0})

	e := sm.Metrics().AppendEmpty()
	e.SetName("rpc.server.payload.size")
	e.SetUnit("By")
	eh := e.SetEmptyExponentialHistogram()
	eh.SetAggregationTemporality(pmetric.AggregationTemporalityDelta)
	ep := eh.DataPoints().AppendEmpty()
	ep.SetStartTimestamp(ts(at - 10*time.Second))
	ep.SetTimestamp(ts(at))
	ep.SetScale(0)
	ep.SetCount(6)
	ep.SetSum(90)
	ep.SetZeroCount(0)
	ep.Positive().SetOffset(3)
	ep.Positive().BucketCounts().FromRaw([]uint64{1, 3, 2})

	s := sm.Metrics().AppendEmpty()
	s.SetName("gc.pause")
	s.SetUnit("ms")
	sp := s.SetEmptySummary().DataPoints().AppendEmpty()
	sp.SetStartTimestamp(start)
	sp.SetTimestamp(ts(at))
	sp.SetCount(uint64(20 + 10*step))
	sp.SetSum(float64(300 + 150*step))
	for _, q := range [][2]float64{{0.5, 12}, {0.99, 48}} {
		qv := sp.QuantileValues().AppendEmpty()
		qv.SetQuantile(q[0])
		qv.SetValue(q[1] + float64(step))
	}
	return md
}

func must(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// ok is the data of a marshaler's result, stopping on its error.
func ok(data []byte, err error) []byte {
	must(err)
	return data
}

func write(dir, name string, data []byte) {
	must(os.WriteFile(filepath.Join(dir, name), data, 0o644))
	fmt.Printf("%s: %d bytes\n", name, len(data))
}

func main() {
	dir := "."
	if len(os.Args) > 1 {
		dir = os.Args[1]
	}
	ld, td := logs(), traces()
	write(dir, "collector_logs.pb", ok((&plog.ProtoMarshaler{}).MarshalLogs(ld)))
	write(dir, "collector_logs.json", ok((&plog.JSONMarshaler{}).MarshalLogs(ld)))
	write(dir, "collector_traces.pb", ok((&ptrace.ProtoMarshaler{}).MarshalTraces(td)))
	write(dir, "collector_traces.json", ok((&ptrace.JSONMarshaler{}).MarshalTraces(td)))
	for i, at := range []time.Duration{0, 10 * time.Second} {
		md := metrics(at, i)
		write(dir, fmt.Sprintf("collector_metrics_%d.pb", i+1), ok((&pmetric.ProtoMarshaler{}).MarshalMetrics(md)))
		write(dir, fmt.Sprintf("collector_metrics_%d.json", i+1), ok((&pmetric.JSONMarshaler{}).MarshalMetrics(md)))
	}

	// The Python SDK's exports as a Collector passes them on with encoding otlp_json.
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(dir, name))
		must(err)
		return b
	}
	sdkLogs, err := (&plog.ProtoUnmarshaler{}).UnmarshalLogs(read("otlp_logs.pb"))
	must(err)
	write(dir, "collector_from_sdk_logs.json", ok((&plog.JSONMarshaler{}).MarshalLogs(sdkLogs)))
	sdkTraces, err := (&ptrace.ProtoUnmarshaler{}).UnmarshalTraces(read("otlp_traces.pb"))
	must(err)
	write(dir, "collector_from_sdk_traces.json", ok((&ptrace.JSONMarshaler{}).MarshalTraces(sdkTraces)))
	for _, name := range []string{"cumulative_1", "cumulative_2", "delta_1", "delta_2"} {
		md, err := (&pmetric.ProtoUnmarshaler{}).UnmarshalMetrics(read("otlp_metrics_" + name + ".pb"))
		must(err)
		write(dir, "collector_from_sdk_metrics_"+name+".json", ok((&pmetric.JSONMarshaler{}).MarshalMetrics(md)))
	}
}
