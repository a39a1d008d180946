# native-multiqueue: our igb PF driver with two queue pairs on each PF, RSS spreading the
# frames of many flows over both receive queues, each queue polled by its own lcore (one per
# vCPU: --config "(0,0,0)(0,1,1)(1,0,0)(1,1,1)", lcore k sending on transmit queue k).
# Frames injected from VIO_A's kernel interface to PF_A's MAC in 64 UDP flows (source ports
# 1024..1087, 16 source addresses), counted per flow on VIO_B's. Exact totals, every flow
# complete and in order (RSS keeps a flow on one queue, one lcore and one transmit queue),
# and both lcores carried traffic (RSS really spread it).
. "$VMTEST_JOB/vm/lib.sh"
topology
FAULT_BIND=1
bind_vfio "$PF_A" "$PF_B"
# 1024-entry receive rings: QEMU's igb drops a frame RSS sends to a queue with no free
# descriptor, uncounted, when another queue has some (see native-igb-robust).
vnf_start l2fwd --port "pci:$PF_A,queues=2,rxd=1024" --port "pci:$PF_B,queues=2,rxd=1024" --config "(0,0,0)(0,1,1)(1,0,0)(1,1,1)"
[ "$(grep -c '(pci:igb)' "$SCRATCH/vnf.log")" -ge 2 ] || fail "the PFs were not opened by the native igb driver: $(grep '^Port' "$SCRATCH/vnf.log")"
grep -q '^Lcore 1 (tx queue 1) polls (port, queue) \[(0, 1), (1, 1)\]' "$SCRATCH/vnf.log" \
  || fail "the VNF did not give queue 1 of each port to lcore 1: $(grep '^Lcore' "$SCRATCH/vnf.log")"
INJECT_FLOWS=64 INJECT_SRC_ADDRS=16
inject "$(netdev_of "$VIO_A")" "$(netdev_of "$VIO_B")" "$MAC_PF_A"
vnf_stop
unbind_to igb "$PF_A" "$PF_B"
lcore_totals
say "per lcore: 0 received ${LCORE_RX[0]:-?} sent ${LCORE_TX[0]:-?}; 1 received ${LCORE_RX[1]:-?} sent ${LCORE_TX[1]:-?}"
[ -n "${LCORE_RX[0]:-}" ] && [ -n "${LCORE_RX[1]:-}" ] || fail "the VNF printed no per-lcore totals for lcores 0 and 1"
[ "${LCORE_RX[0]}" -gt 0 ] && [ "${LCORE_RX[1]}" -gt 0 ] \
  || fail "RSS did not spread the $INJECT_FLOWS flows: lcore 0 received ${LCORE_RX[0]}, lcore 1 received ${LCORE_RX[1]}"
[ $(( LCORE_RX[0] + LCORE_RX[1] )) = $(( VNF_RX0 + VNF_RX1 )) ] \
  || fail "the lcores received $(( LCORE_RX[0] + LCORE_RX[1] )) frames, the ports counted $(( VNF_RX0 + VNF_RX1 ))"
flow_verdict
VERDICT_PREFIX="$FLOWS_OK flows exact and in order ($FLOW_MIN-$FLOW_MAX frames each), lcore 0 ${LCORE_RX[0]} / lcore 1 ${LCORE_RX[1]}; "
forward_verdict
