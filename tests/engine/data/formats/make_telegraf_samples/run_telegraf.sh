#!/bin/sh
# Build the real Telegraf binary (v1.37.2, from the Go module proxy, only the plugins used) and
# run it once with telegraf.conf, writing telegraf_binary_*.{lp,json} into the samples folder.
# Not run by the tests; the samples are committed. Needs Go (1.25 or later); about 4 minutes
# of building on a 2-core machine.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
WORK=${WORK:-/tmp/kestrel-telegraf}
export GOPATH="$WORK/gopath" GOMODCACHE="$WORK/modcache" GOCACHE="$WORK/gocache" GOFLAGS=-buildvcs=false
VERSION=v1.37.2
if [ ! -x "$WORK/telegraf" ]; then
    mkdir -p "$WORK"
    SRC=$(cd "$WORK" && go mod download -json "github.com/influxdata/telegraf@$VERSION" |
        sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
    rm -rf "$WORK/src" && cp -r "$SRC" "$WORK/src" && chmod -R u+w "$WORK/src"
    (cd "$WORK/src" && go build -o "$WORK/telegraf" \
        -tags "custom,inputs.cpu,inputs.mem,inputs.disk,inputs.system,outputs.file,serializers.influx,serializers.json" \
        ./cmd/telegraf)
fi
SAMPLES=$(dirname "$HERE")
export SAMPLES
rm -f "$SAMPLES"/telegraf_binary*
"$WORK/telegraf" --config "$HERE/telegraf.conf" --once
