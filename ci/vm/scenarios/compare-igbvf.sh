# compare-igbvf (a measurement, named only): two SR-IOV VFs (VF 0 of each igb PF, the PFs on the
# kernel igb driver) forwarded VF_A -> VF_B, alternately through DPDK's net_e1000_igb_vf and our
# igbvf driver, the forwarder saturated by dpdk-testpmd txonly on VIO_A (net_virtio, vCPU 0)
# sending to VF_A's MAC over hub 1 into PF_A's switch; VF_B's frames leave PF_B over hub 2 to
# VIO_B, whose kernel virtio_net filters them out. See compare_saturated in lib.sh.
. "$VMTEST_JOB/vm/lib.sh"
topology
setup_vf_pair 0
vb=$(netdev_of "$VIO_B")
if_up "$vb"
bind_vfio "$VF_A" "$VF_B" "$VIO_A"
compare_saturated "$VF_A" "$VF_B" "$VIO_A" "$(vf_mac 0a 0)" net_e1000_igb_vf pci:igbvf
