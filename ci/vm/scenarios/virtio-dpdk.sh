# virtio-dpdk: two virtio-net devices (modern, behind the IOMMU) on vfio-pci, forwarded by
# l2fwd through DPDK's net_virtio; frames injected from PF_A's kernel interface, counted on PF_B's.
. "$VMTEST_JOB/vm/lib.sh"
topology
use_dpdk_vnf
FAULT_BIND=1
bind_vfio "$VIO_A" "$VIO_B"
vnf_start l2fwd --port "$VIO_A" --port "$VIO_B" --cpu 1
[ "$(grep -c 'net_virtio' "$SCRATCH/vnf.log")" -ge 2 ] || fail "the virtio devices were not opened with net_virtio"
pa=$(netdev_of "$PF_A"); pb=$(netdev_of "$PF_B")
if_up "$pa"; if_up "$pb"
wait_for "grep -q 1 /sys/class/net/$pa/carrier && grep -q 1 /sys/class/net/$pb/carrier" 20 || fail "igb PFs have no carrier"
inject "$pa" "$pb" "$MAC_VIO_A"
vnf_stop
unbind_to virtio-pci "$VIO_A" "$VIO_B"
forward_verdict
