#!/usr/bin/env bash
# N local "hosts" as network namespaces on one machine, for trying isosweep across hosts:
#   deploy/netns/cluster.sh up N      make isohost0..isohost{N-1}, joined by veth pairs to a bridge
#   deploy/netns/cluster.sh down N    remove them
#   deploy/netns/cluster.sh addr I    print host I's address
# Host I gets 198.18.0.(I+1)/24 on eth0: the benchmarking range 198.18.0.0/15 (RFC 2544), never a
# real network's. The bridge has no address and no route to the outside: traffic stays between
# the namespaces. Needs root (ip netns, ip link).
set -euo pipefail

prefix="${ISOSWEEP_NETNS_PREFIX:-isohost}"
bridge="${prefix}-br"

addr() { echo "198.18.0.$(( $1 + 1 ))"; }

up() {
  local n="$1"
  ip link add "$bridge" type bridge
  ip link set "$bridge" up
  for ((i = 0; i < n; i++)); do
    local ns="${prefix}${i}"
    ip netns add "$ns"
    ip link add "${prefix}v${i}" type veth peer name eth0 netns "$ns"
    ip link set "${prefix}v${i}" master "$bridge"
    ip link set "${prefix}v${i}" up
    ip -n "$ns" link set lo up
    ip -n "$ns" addr add "$(addr "$i")/24" dev eth0
    ip -n "$ns" link set eth0 up
  done
  echo "up: ${n} hosts ${prefix}0..${prefix}$(( n - 1 )) on ${bridge}, $(addr 0) to $(addr $(( n - 1 )))"
}

down() {
  local n="$1"
  for ((i = 0; i < n; i++)); do
    ip netns del "${prefix}${i}" 2>/dev/null || true
    ip link del "${prefix}v${i}" 2>/dev/null || true
  done
  ip link del "$bridge" 2>/dev/null || true
  echo "down: ${prefix}0..${prefix}$(( n - 1 )) removed"
}

case "${1:-}" in
  up) up "${2:?usage: cluster.sh up N}" ;;
  down) down "${2:?usage: cluster.sh down N}" ;;
  addr) addr "${2:?usage: cluster.sh addr I}" ;;
  *) echo "usage: $0 up N | down N | addr I" >&2; exit 64 ;;
esac
