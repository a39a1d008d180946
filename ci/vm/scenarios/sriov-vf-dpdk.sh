# sriov-vf-dpdk: two SR-IOV VFs (one of each igb PF, the PFs on the kernel igb driver) bound to
# vfio-pci with `vnf-l2fwd devbind`, forwarded by l2fwd through DPDK's net_e1000_igb_vf, then
# given back to igbvf.
. "$VMTEST_JOB/vm/lib.sh"
topology
use_dpdk_vnf
FAULT_BIND=1
setup_vf_pair 0

bind_vfio "$VF_A" "$VF_B"
status=$(vnf_devbind --status)
echo "$status" | sed 's/^/  devbind: /'
for vf in "$VF_A" "$VF_B"; do
  line=$(echo "$status" | grep "^$vf ")
  echo "$line" | grep -q 'drv=vfio-pci' || fail "devbind --status does not show $vf on vfio-pci: $line"
  echo "$line" | grep -q 'unused=igbvf' || fail "devbind --status does not name igbvf as $vf's kernel driver: $line"
  echo "$line" | grep -q "iommu_group=$(group_of "$vf")" || fail "devbind --status does not show $vf's IOMMU group $(group_of "$vf"): $line"
done
for pf in "$PF_A" "$PF_B"; do
  echo "$status" | grep "^$pf " | grep -q 'vfs=2' || fail "devbind --status does not show $pf's 2 VFs: $(echo "$status" | grep "^$pf ")"
done
echo "$status" | grep "^$VF_A " | grep -q "pf=$PF_A" || fail "devbind --status does not show $VF_A's PF $PF_A"

vnf_start l2fwd --port "$VF_A" --port "$VF_B" --cpu 1
grep -q 'net_e1000_igb_vf' "$SCRATCH/vnf.log" || fail "the VNF did not open the VFs with net_e1000_igb_vf: $(grep '^Port' "$SCRATCH/vnf.log")"
inject "$(netdev_of "$VIO_A")" "$(netdev_of "$VIO_B")" "$(vf_mac 0a 0)"
vnf_stop

unbind_to igbvf "$VF_A" "$VF_B"
forward_verdict
