# native-igbvf: two SR-IOV VFs (one of each igb PF, the PFs staying on the kernel igb driver)
# on vfio-pci driven by our own igbvf driver (dataplane::port::pci::igb, no DPDK): reset and
# MAC address through the PF-VF mailbox, l2fwd with --port pci:ADDRESS; frames injected from
# VIO_A's kernel interface to VF_A's MAC, counted on VIO_B's; the VFs back on igbvf afterwards.
. "$VMTEST_JOB/vm/lib.sh"
topology
FAULT_BIND=1
setup_vf_pair 0
bind_vfio "$VF_A" "$VF_B"
vnf_start l2fwd --port "pci:$VF_A" --port "pci:$VF_B" --cpu 1
[ "$(grep -c '(pci:igbvf)' "$SCRATCH/vnf.log")" -ge 2 ] || fail "the VFs were not opened by the native igbvf driver: $(grep '^Port' "$SCRATCH/vnf.log")"
grep -q "^Port 0: .* MAC $(vf_mac 0a 0)" "$SCRATCH/vnf.log" && grep -q "^Port 1: .* MAC $(vf_mac 0b 0)" "$SCRATCH/vnf.log" \
  || fail "the VFs do not have the MACs their PFs assigned: $(grep '^Port' "$SCRATCH/vnf.log")"
inject "$(netdev_of "$VIO_A")" "$(netdev_of "$VIO_B")" "$(vf_mac 0a 0)"
vnf_stop
unbind_to igbvf "$VF_A" "$VF_B"
wait_for "[ -n \"\$(netdev_of $VF_A)\" ] && [ -n \"\$(netdev_of $VF_B)\" ]" 15 \
  || fail "igbvf did not take the VFs back after the native driver"
forward_verdict
