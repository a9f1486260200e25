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
  Sources/Diagnostics/IsosweepError.swift Sources/SweepCore/Wire.swift Sources/SweepCore/ResourceLimits.swift \
  Fuzz/WireFuzzTarget.swift -o "$out" > .build/fuzz-wire-build.log 2>&1; then
  grep -v "Cannot export local symbol" .build/fuzz-wire-build.log >&2
  exit 1
fi
# Seed the corpus with valid messages: a type byte, then a payload of the protocol's version (read
# from Wire.swift, so the seeds pass the version check and reach the message decoders).
version=$(sed -n 's/.*static let protocolVersion: UInt16 = \([0-9]*\).*/\1/p' Sources/SweepCore/Wire.swift)
[ -n "$version" ] || { echo "fuzz-wire: cannot read protocolVersion from Sources/SweepCore/Wire.swift" >&2; exit 1; }
v=$(printf '\\x%02x\\x%02x' $((version >> 8)) $((version & 255)))
seed() { printf '%b' "$2" > ".build/fuzz-wire-corpus/$1"; }
seed heartbeat "\\x09$v"
seed credit "\\x04$v\\x00\\x00\\x00\\x05"
seed bye "\\x0a$v"
seed progress "\\x0b$v\\x00\\x00\\x00\\x00"
"$out" -max_total_time="$seconds" -rss_limit_mb=2048 -max_len=4096 \
  -artifact_prefix=.build/fuzz-wire-artifacts/ .build/fuzz-wire-corpus 2>&1 | tail -n 5
echo "fuzz-wire: no crash in ${seconds} s"
