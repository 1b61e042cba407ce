// Command make_telegraf_samples writes the Telegraf samples of tests/engine/data/formats with
// Telegraf's own metric type and serializers (github.com/influxdata/telegraf), exactly as its
// Kafka output does: one Kafka message per metric, each the output of the configured
// serializer's Serialize (influx, the default data_format, or json); and the json serializer's
// batch form (json with use_batch_format, e.g. the file output).
//
// Run from this folder: go run . ..  (it writes telegraf_serializers*.{lp,json} into the folder given).
// Not run by the tests; the samples are committed.
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/influxdata/telegraf"
	"github.com/influxdata/telegraf/config"
	"github.com/influxdata/telegraf/metric"
	"github.com/influxdata/telegraf/plugins/serializers/influx"
	"github.com/influxdata/telegraf/plugins/serializers/json"
)

func metrics() []telegraf.Metric {
	// 2024-05-14T09:21:03Z plus 250 ms, so the precision of each form shows.
	t := time.Unix(1715678463, 250_000_000).UTC()
	host := map[string]string{"host": "web-1"}
	return []telegraf.Metric{
		metric.New("cpu",
			map[string]string{"host": "web-1", "cpu": "cpu-total"},
			map[string]interface{}{"usage_idle": 87.5, "usage_user": 9.25, "usage_system": 3.25},
			t, telegraf.Gauge),
		metric.New("mem", host,
			map[string]interface{}{
				"used_percent": 41.5, "available": int64(4294967296), "total": uint64(8589934592),
			},
			t, telegraf.Gauge),
		metric.New("disk",
			map[string]string{"host": "web-1", "path": "/var/log", "device": "sda1", "fstype": "ext4", "mode": "rw"},
			map[string]interface{}{"used_percent": 63.0, "inodes_used": int64(120000), "free": int64(1073741824)},
			t, telegraf.Gauge),
		// A bool field and a string field: Kestrel keeps the bool (as 1/0), skips the text.
		metric.New("net_response",
			map[string]string{"host": "web-1", "server": "db 1", "port": "5432", "protocol": "tcp"},
			map[string]interface{}{"result_type": "success", "response_time": 0.0021, "ok": true, "result_code": int64(0)},
			t),
	}
}

func must(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
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
	ms := metrics()

	// data_format = "influx" (the Kafka output's default): one message per metric; the sample
	// holds the messages one after another (each ends with a newline).
	lp := &influx.Serializer{SortFields: true}
	must(lp.Init())
	var lines []byte
	for _, m := range ms {
		b, err := lp.Serialize(m)
		must(err)
		lines = append(lines, b...)
	}
	write(dir, "telegraf_serializers_influx.lp", lines)

	// data_format = "json" with json_timestamp_units = "1ms": one message per metric; the
	// sample holds the first one (cpu).
	js := &json.Serializer{TimestampUnits: config.Duration(time.Millisecond)}
	must(js.Init())
	one, err := js.Serialize(ms[0])
	must(err)
	write(dir, "telegraf_serializers.json", one)

	// The batch form (use_batch_format = true) with the default units (1s).
	jsb := &json.Serializer{}
	must(jsb.Init())
	batch, err := jsb.SerializeBatch(ms)
	must(err)
	write(dir, "telegraf_serializers_batch.json", batch)
}
