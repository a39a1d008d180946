# native-virtio-mq: our virtio-net driver with two queue pairs (VIRTIO_NET_F_MQ, the pair count
# set through the control queue) on VIO_C and VIO_D, whose backends are multiqueue taps on the
# host: the host kernel picks the receive queue of each frame by its flow hash. Each receive
# queue is polled by its own lcore (--config "(0,0,0)(0,1,1)(1,0,0)(1,1,1)"). Frames injected
# from PF_A's kernel interface to VIO_C's MAC in 64 UDP flows, counted per flow on PF_B's.
# Exact totals, every flow complete and in order, both lcores carried traffic.
. "$VMTEST_JOB/vm/lib.sh"
topology
FAULT_BIND=1
bind_vfio "$VIO_C" "$VIO_D"
vnf_start l2fwd --port "pci:$VIO_C,queues=2" --port "pci:$VIO_D,queues=2" --config "$MQ_CONFIG"
[ "$(grep -c '(pci:virtio-net' "$SCRATCH/vnf.log")" -ge 2 ] || fail "the ports were not opened by the native virtio-net driver: $(grep '^Port' "$SCRATCH/vnf.log")"
check_queue1_on_lcore1
pa=$(netdev_of "$PF_A"); pb=$(netdev_of "$PF_B")
if_up "$pa"; if_up "$pb"
wait_for "grep -q 1 /sys/class/net/$pa/carrier && grep -q 1 /sys/class/net/$pb/carrier" 20 || fail "igb PFs have no carrier"
INJECT_FLOWS=64 INJECT_SRC_ADDRS=16
inject "$pa" "$pb" "$MAC_VIO_C"
vnf_stop
unbind_to virtio-pci "$VIO_C" "$VIO_D"
[ -n "$(netdev_of "$VIO_C")" ] && [ -n "$(netdev_of "$VIO_D")" ] || fail "virtio_net did not take the devices back after the native driver"
multiqueue_verdict
