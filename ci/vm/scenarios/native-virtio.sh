# native-virtio: two virtio-net devices on vfio-pci driven by our own virtio-net driver
# (dataplane::port::pci::virtio, no DPDK): l2fwd with --port pci:ADDRESS; frames injected from
# PF_A's kernel interface, counted on PF_B's.
. "$VMTEST_JOB/vm/lib.sh"
topology
FAULT_BIND=1
bind_vfio "$VIO_A" "$VIO_B"
vnf_start l2fwd --port "pci:$VIO_A" --port "pci:$VIO_B" --cpu 1
[ "$(grep -c '(pci:virtio-net' "$SCRATCH/vnf.log")" -ge 2 ] || fail "the ports were not opened by the native virtio-net driver: $(grep '^Port' "$SCRATCH/vnf.log")"
pa=$(netdev_of "$PF_A"); pb=$(netdev_of "$PF_B")
if_up "$pa"; if_up "$pb"
wait_for "grep -q 1 /sys/class/net/$pa/carrier && grep -q 1 /sys/class/net/$pb/carrier" 20 || fail "igb PFs have no carrier"
inject "$pa" "$pb" "$MAC_VIO_A"
vnf_stop
unbind_to virtio-pci "$VIO_A" "$VIO_B"
[ -n "$(netdev_of "$VIO_A")" ] && [ -n "$(netdev_of "$VIO_B")" ] || fail "virtio_net did not take the devices back after the native driver"
forward_verdict
