# native-igb-pf: both igb PFs (82576, no VFs) on vfio-pci driven by our own igb PF driver
# (dataplane::port::pci::igb, no DPDK): global reset, link through PHY auto-negotiation, l2fwd
# with --port pci:ADDRESS; frames injected from VIO_A's kernel interface to PF_A's MAC,
# counted on VIO_B's; the PFs back on the kernel igb driver afterwards.
. "$VMTEST_JOB/vm/lib.sh"
topology
FAULT_BIND=1
bind_vfio "$PF_A" "$PF_B"
vnf_start l2fwd --port "pci:$PF_A" --port "pci:$PF_B" --cpu 1
[ "$(grep -c '(pci:igb)' "$SCRATCH/vnf.log")" -ge 2 ] || fail "the PFs were not opened by the native igb driver: $(grep '^Port' "$SCRATCH/vnf.log")"
grep -q "^Port 0: .* MAC $MAC_PF_A" "$SCRATCH/vnf.log" && grep -q "^Port 1: .* MAC $MAC_PF_B" "$SCRATCH/vnf.log" \
  || fail "the PFs do not report their own MACs: $(grep '^Port' "$SCRATCH/vnf.log")"
inject "$(netdev_of "$VIO_A")" "$(netdev_of "$VIO_B")" "$MAC_PF_A"
vnf_stop
unbind_to igb "$PF_A" "$PF_B"
wait_for "[ -n \"\$(netdev_of $PF_A)\" ] && [ -n \"\$(netdev_of $PF_B)\" ]" 15 \
  || fail "the kernel igb driver did not take the PFs back after the native driver"
forward_verdict
