# discover-sriov: a pod-like run. The SR-IOV device plugin's PCIDEVICE_* variable and a Multus
# network-status annotations file name two VFs on vfio-pci; `vnf-l2fwd l2fwd` with no --port
# must find them, open them through DPDK and forward exactly.
. "$VMTEST_JOB/vm/lib.sh"
topology
use_dpdk_vnf
FAULT_BIND=1
discover_and_forward dpdk net_e1000_igb_vf
