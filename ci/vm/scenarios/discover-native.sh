# discover-native: the pod-like run of discover-sriov with the native igbvf driver
# (`--pci-driver native`, what a build without DPDK does by default, as in the FROM scratch
# image): the VNF with no --port finds the VFs from PCIDEVICE_* and the network-status
# annotation and drives them itself.
. "$VMTEST_JOB/vm/lib.sh"
topology
FAULT_BIND=1
discover_and_forward native pci:igbvf
