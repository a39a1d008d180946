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
vnf_start l2fwd --port "pci:$PF_A,queues=2,rxd=1024" --port "pci:$PF_B,queues=2,rxd=1024" --config "$MQ_CONFIG"
[ "$(grep -c '(pci:igb)' "$SCRATCH/vnf.log")" -ge 2 ] || fail "the PFs were not opened by the native igb driver: $(grep '^Port' "$SCRATCH/vnf.log")"
check_queue1_on_lcore1
INJECT_FLOWS=64 INJECT_SRC_ADDRS=16
inject "$(netdev_of "$VIO_A")" "$(netdev_of "$VIO_B")" "$MAC_PF_A"
vnf_stop
unbind_to igb "$PF_A" "$PF_B"
multiqueue_verdict
