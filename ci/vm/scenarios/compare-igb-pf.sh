# compare-igb-pf (a measurement, named only): both igb PFs (whole-device passthrough) forwarded
# PF_A -> PF_B, alternately through DPDK's net_e1000_igb and our igb PF driver, the forwarder
# saturated by dpdk-testpmd txonly on VIO_A (net_virtio, vCPU 0) sending to PF_A's MAC over
# hub 1; PF_B's frames cross hub 2 to VIO_B, whose kernel virtio_net filters them out. See
# compare_saturated in lib.sh.
. "$VMTEST_JOB/vm/lib.sh"
topology
vb=$(netdev_of "$VIO_B")
if_up "$vb"
bind_vfio "$PF_A" "$PF_B" "$VIO_A"
compare_saturated "$PF_A" "$PF_B" "$VIO_A" "$MAC_PF_A" 'net_e1000_igb,' 'pci:igb)'
