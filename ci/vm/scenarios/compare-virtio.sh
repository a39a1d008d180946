# compare-virtio (a measurement, named only): two virtio-net devices forwarded VIO_A -> VIO_B by
# the same VNF build and worker loop, alternately through DPDK's net_virtio (bare PCI addresses)
# and our native driver (pci:ADDRESS), the forwarder saturated by dpdk-testpmd txonly on PF_A
# (net_e1000_igb, vCPU 0) sending to VIO_A's MAC over hub 1; VIO_B's frames cross hub 2 to PF_B,
# whose kernel igb filters them out. See compare_saturated in lib.sh for what is measured.
. "$VMTEST_JOB/vm/lib.sh"
topology
pb=$(netdev_of "$PF_B")
if_up "$pb"
wait_for "grep -q 1 /sys/class/net/$pb/carrier" 20 || fail "PF_B ($pb) has no carrier"
bind_vfio "$VIO_A" "$VIO_B" "$PF_A"
compare_saturated "$VIO_A" "$VIO_B" "$PF_A" "$MAC_VIO_A" net_virtio pci:virtio-net
