# node-features: `vnf-l2fwd node-features` on the guest's real sysfs: IOMMU on, vfio-pci loaded,
# the SR-IOV capable NICs with their total and created VF counts, hugepages; on arm64 the
# NEON (asimd) and SVE extensions.
. "$VMTEST_JOB/vm/lib.sh"
topology
create_vfs "$PF_A" 3 > /dev/null
json=$("$VNF" node-features --format json) || fail "node-features failed"
echo "$json"
compact=$(echo "$json" | tr -d ' \n')
echo "$compact" | grep -q '"iommu":{"mode":"iommu"' || fail "IOMMU not reported on: $(echo "$compact" | grep -o '"iommu":{[^}]*}')"
echo "$compact" | grep -q '"vfio_pci":{"loaded":true' || fail "vfio-pci not reported loaded"
echo "$compact" | grep -q "\"$PF_A\"" || fail "$PF_A missing from the SR-IOV list"
sriov_a=$(echo "$compact" | grep -o "\"pf\":\"$PF_A\",[^{}]*")
echo "$sriov_a" | grep -q '"total_vfs":7' && echo "$sriov_a" | grep -q '"num_vfs":3' \
  || fail "$PF_A should show 7 total and 3 created VFs: $sriov_a"
sriov_b=$(echo "$compact" | grep -o "\"pf\":\"$PF_B\",[^{}]*")
echo "$sriov_b" | grep -q '"total_vfs":7' && echo "$sriov_b" | grep -q '"num_vfs":0' \
  || fail "$PF_B should show 7 total and 0 created VFs: $sriov_b"
echo "$compact" | grep -q '"size_kb":2048,"total":192' || fail "the 192 boot-time 2 MiB hugepages are not reported"
case $VMTEST_ARCH in
  aarch64) for x in neon sve; do echo "$compact" | grep -q "\"$x\":true" || fail "$x not reported"; done ;;
  x86_64) echo "$compact" | grep -q '"sse4_2":true' || fail "sse4_2 not reported" ;;
esac
nfd=$("$VNF" node-features --format nfd) || fail "node-features --format nfd failed"
echo "$nfd"
echo "$nfd" | grep -q 'iommu' || fail "no IOMMU label in the NFD output"
# The devices our native drivers support: both PFs, the four virtio-net, the 3 VFs just created.
for want in native-pci-igb=2 native-pci-virtio-net=4 native-pci-igbvf=3 native-pci-devices=9; do
  echo "$nfd" | grep -q "$want\$" || fail "NFD label $want missing: $(echo "$nfd" | grep native-pci | tr '\n' ' ')"
done
pass "IOMMU on, vfio-pci loaded, $PF_A 3/7 VFs, $PF_B 0/7, hugepages 192 x 2 MiB, 9 devices for the native drivers"
