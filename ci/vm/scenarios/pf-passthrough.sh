# pf-passthrough: a whole igb PF on vfio-pci (DPDK's net_e1000_igb) forwards exactly, next to
# VFs of the other PF still on the kernel igbvf driver: frames enter PF_A from VIO_A, leave on
# VIO_B (net_virtio) towards PF_B, addressed to PF_B's VF 0, and are counted on that VF's
# kernel interface.
. "$VMTEST_JOB/vm/lib.sh"
topology
use_dpdk_vnf
FAULT_BIND=1
VF_B=$(create_vfs "$PF_B" 2 | head -n 1)
set_vf_mac "$PF_B" 0 "$(vf_mac 0b 0)"
wait_for "[ -n \"\$(netdev_of $VF_B)\" ]" 15 || fail "VF $VF_B has no igbvf interface"
[ "$(driver_of "$VF_B")" = igbvf ] || fail "$VF_B is on $(driver_of "$VF_B")"
vf_if=$(netdev_of "$VF_B")
if_up "$vf_if"
wait_for "grep -q 1 /sys/class/net/$vf_if/carrier" 20 || fail "$vf_if (igbvf) has no carrier"
bind_vfio "$PF_A" "$VIO_B"
vnf_start l2fwd --port "$PF_A" --port "$VIO_B" --cpu 1 --eth-dest "1,$(vf_mac 0b 0)"
grep -q 'net_e1000_igb)' "$SCRATCH/vnf.log" || fail "PF $PF_A not opened with net_e1000_igb: $(grep '^Port' "$SCRATCH/vnf.log")"
grep -q 'net_virtio' "$SCRATCH/vnf.log" || fail "$VIO_B not opened with net_virtio"
inject "$(netdev_of "$VIO_A")" "$vf_if" "$MAC_PF_A"
vnf_stop
[ "$(driver_of "$VF_B")" = igbvf ] || fail "$VF_B left igbvf during the run"
unbind_to igb "$PF_A"
unbind_to virtio-pci "$VIO_B"
forward_verdict
