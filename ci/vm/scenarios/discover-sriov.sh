# discover-sriov: a pod-like run. The SR-IOV device plugin's PCIDEVICE_* variable and a Multus
# network-status annotations file name two VFs on vfio-pci; `vnf-l2fwd l2fwd` with no --port
# must find them, open them through DPDK and forward exactly.
. "$VMTEST_JOB/vm/lib.sh"
topology
[ "$VMTEST_DPDK" = 1 ] || fail "vnf-l2fwd was built without the dpdk feature"
FAULT_BIND=1
VF_A=$(create_vfs "$PF_A" 2 | sed -n 2p)
VF_B=$(create_vfs "$PF_B" 2 | sed -n 2p)
set_vf_mac "$PF_A" 1 "$(vf_mac 0a 1)"
set_vf_mac "$PF_B" 1 "$(vf_mac 0b 1)"
wait_for "[ \"\$(driver_of $VF_A)\" = igbvf ] && [ \"\$(driver_of $VF_B)\" = igbvf ]" 15 || fail "VFs not on igbvf"
bind_vfio "$VF_A" "$VF_B"
# The downward API file as the kubelet writes it: sorted key="value" lines, Go-quoted values.
mkdir -p "$SCRATCH/podnetinfo"
net() { # name iface vf pf
  printf '{\\n        \\"name\\": \\"%s\\",\\n        \\"interface\\": \\"%s\\",\\n        \\"dns\\": {},\\n        \\"device-info\\": {\\n            \\"type\\": \\"pci\\",\\n            \\"version\\": \\"1.1.0\\",\\n            \\"pci\\": {\\n                \\"pci-address\\": \\"%s\\",\\n                \\"pf-pci-address\\": \\"%s\\"\\n            }\\n        }\\n    }' "$1" "$2" "$3" "$4"
}
{
  printf 'k8s.v1.cni.cncf.io/network-status="[\\n    {\\n        \\"name\\": \\"k8s-pod-network\\",\\n        \\"interface\\": \\"eth0\\",\\n        \\"ips\\": [\\n            \\"198.18.100.17\\"\\n        ],\\n        \\"default\\": true,\\n        \\"dns\\": {}\\n    },\\n    %s,\\n    %s\\n]"\n' \
    "$(net vnf/sriov-dpdk-a net1 "$VF_A" "$PF_A")" "$(net vnf/sriov-dpdk-b net2 "$VF_B" "$PF_B")"
  printf 'k8s.v1.cni.cncf.io/networks="[{\\"name\\":\\"sriov-dpdk-a\\"},{\\"name\\":\\"sriov-dpdk-b\\"}]"'
} > "$SCRATCH/podnetinfo/annotations"
cat "$SCRATCH/podnetinfo/annotations"; echo
export PCIDEVICE_INTEL_COM_SRIOV_VFIO="$VF_A,$VF_B"
disc=$("$VNF" discover --podnetinfo "$SCRATCH/podnetinfo/annotations" --json) || fail "discover failed"
echo "$disc"
echo "$disc" | tr -d ' \n' | grep -q "\"command\":\"vnf-l2fwdl2fwd--port$VF_A--port$VF_B" \
  || fail "discover does not propose --port $VF_A --port $VF_B: $(echo "$disc" | grep command)"
vnf_start l2fwd --podnetinfo "$SCRATCH/podnetinfo/annotations" --cpu 1
grep -q "ports from discovery: \[\"$VF_A\", \"$VF_B\"\]" "$SCRATCH/vnf.log" || fail "the VNF did not take its ports from discovery: $(grep discovery "$SCRATCH/vnf.log")"
grep -q 'net_e1000_igb_vf' "$SCRATCH/vnf.log" || fail "the VFs were not opened with net_e1000_igb_vf"
inject "$(netdev_of "$VIO_A")" "$(netdev_of "$VIO_B")" "$(vf_mac 0a 1)"
vnf_stop
unbind_to igbvf "$VF_A" "$VF_B"
forward_verdict
