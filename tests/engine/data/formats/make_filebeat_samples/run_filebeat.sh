#!/bin/sh
# Build the real Filebeat (v7.17.29, from the Go module proxy: github.com/elastic/beats/v7) and
# run it on plain.log and ecs.log with filebeat.yml: its console output uses the same codec as
# its Kafka output (libbeat's json codec, codec.Encode(<beat name>, event)), one event per line.
# Writes filebeat_plain.json and filebeat_ecs.json into the samples folder. Not run by the tests;
# the samples are committed. Needs Go (1.25 or later); about 4 minutes of building on 2 cores.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
WORK=${WORK:-/tmp/kestrel-filebeat}
export GOPATH="$WORK/gopath" GOMODCACHE="$WORK/modcache" GOCACHE="$WORK/gocache" GOFLAGS=-buildvcs=false
VERSION=v7.17.29
if [ ! -x "$WORK/filebeat" ]; then
    mkdir -p "$WORK"
    SRC=$(cd "$WORK" && go mod download -json "github.com/elastic/beats/v7@$VERSION" |
        sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
    rm -rf "$WORK/src" && cp -r "$SRC" "$WORK/src" && chmod -R u+w "$WORK/src"
    (cd "$WORK/src" && go build -o "$WORK/filebeat" ./filebeat)
fi
rm -rf "$WORK/run" && mkdir -p "$WORK/run"
INPUTS=$HERE
export INPUTS
# Filebeat runs until stopped: 25 s is enough to read two one-line files.
timeout 25 "$WORK/filebeat" -c "$HERE/filebeat.yml" --path.data "$WORK/run/data" \
    --path.logs "$WORK/run/logs" --strict.perms=false > "$WORK/run/out.jsonl" || true
SAMPLES=$(dirname "$HERE")
grep '/plain.log"' "$WORK/run/out.jsonl" > "$SAMPLES/filebeat_plain.json"
grep '/ecs.log"' "$WORK/run/out.jsonl" > "$SAMPLES/filebeat_ecs.json"
