#!/usr/bin/env bash
# Fuzzes the wire codec with libFuzzer (Swift's -sanitize=fuzzer, plus AddressSanitizer).
#   scripts/fuzz-wire.sh [SECONDS]     default 60; CI runs it for a short bounded time
# The corpus grows in .build/fuzz-wire-corpus; a crash leaves crash-* files in .build/fuzz-wire-artifacts.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
out=.build/fuzz-wire
mkdir -p .build/fuzz-wire-corpus .build/fuzz-wire-artifacts
# The linker's notes about ASan's local symbols are noise: keep them unless the build fails.
if ! swiftc -O -sanitize=fuzzer,address -parse-as-library \
  Sources/Diagnostics/IsosweepError.swift Sources/SweepCore/Wire.swift Fuzz/WireFuzzTarget.swift -o "$out" > .build/fuzz-wire-build.log 2>&1; then
  grep -v "Cannot export local symbol" .build/fuzz-wire-build.log >&2
  exit 1
fi
# Seed the corpus with valid messages: a type byte, then a payload of protocol version 4.
printf '\x09\x00\x04' > .build/fuzz-wire-corpus/heartbeat
printf '\x04\x00\x04\x00\x00\x00\x05' > .build/fuzz-wire-corpus/credit
printf '\x0a\x00\x04' > .build/fuzz-wire-corpus/bye
printf '\x0b\x00\x04\x00\x00\x00\x00' > .build/fuzz-wire-corpus/progress
"$out" -max_total_time="$seconds" -rss_limit_mb=2048 -max_len=4096 \
  -artifact_prefix=.build/fuzz-wire-artifacts/ .build/fuzz-wire-corpus 2>&1 | tail -n 5
echo "fuzz-wire: no crash in ${seconds} s"
