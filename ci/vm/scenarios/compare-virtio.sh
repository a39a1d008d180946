# compare-virtio (a measurement, not in the default lists): the same virtio-net devices
# forwarded by the same VNF and worker loop, alternately through DPDK's net_virtio (bare PCI
# addresses) and our native driver (pci:ADDRESS), ROUNDS rounds each, with the same offered
# load. Reports the worker's busy timer cycles per packet (idle polls excluded) for each and
# their ratio (PMD / native: above 1 means our driver costs less per packet). Under TCG the
# timer runs at host time, so this is emulated work per packet, MMIO exits included.
. "$VMTEST_JOB/vm/lib.sh"
topology
compare_devices "$VIO_A" "$VIO_B" virtio-pci "$(netdev_of "$PF_A")" "$(netdev_of "$PF_B")" "$MAC_VIO_A"
