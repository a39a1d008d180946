# native-robust: our virtio-net driver under bad input and a hostile kernel:
#  1. frames larger than an mbuf's data room (4000 bytes) are dropped and counted (rx errors),
#     the normal frames around them forwarded exactly;
#  2. a device reset under the running VNF (sysfs reset) makes the port report link down, the
#     VNF keeps running; the frames it then forwards to the reset port are each counted
#     (refused by the dead port's queue, or left in its ring, which the device will never
#     send: transmit errors); it exits cleanly with every mbuf back;
#  3. unbinding the device from vfio-pci while the VNF holds it blocks in the kernel until the
#     VNF lets go, and crashes nothing; the device then goes back to virtio-pci.
# (The steps are lib.sh's, shared with native-igb-robust.)
. "$VMTEST_JOB/vm/lib.sh"
topology
bind_vfio "$VIO_A" "$VIO_B"
pa=$(netdev_of "$PF_A"); pb=$(netdev_of "$PF_B")
if_up "$pa"; if_up "$pb"
ip link set dev "$pa" mtu 9000 || fail "igb refused MTU 9000 on $pa"
wait_for "grep -q 1 /sys/class/net/$pa/carrier && grep -q 1 /sys/class/net/$pb/carrier" 20 || fail "igb PFs have no carrier"

vnf_start l2fwd --port "pci:$VIO_A" --port "pci:$VIO_B" --cpu 1
# 1. 20 oversized frames, then the usual numbered traffic.
send_oversized "$pa" "$MAC_VIO_A" 20 4000
inject "$pa" "$pb" "$MAC_VIO_A"
check_oversize_counted 0
# 2. A device reset under the VNF; then frames forwarded into the reset port, every one
#    accounted for.
reset_under_vnf "$VIO_B" 1
forward_into_reset "$pa" "$pb" "$MAC_VIO_A" 500
# 3. Unbind VIO_A from vfio-pci while the VNF holds it.
unbind_under_vnf "$VIO_A"
vnf_stop
unbind_finished "$VIO_A" virtio-pci
unbind_to virtio-pci "$VIO_B"
[ "$VNF_LEAKED" = 0 ] || fail "the VNF leaked $VNF_LEAKED mbufs"
pass "$OVERSIZE oversized frames counted as rx errors, $GOOD_FORWARDED frames forwarded exactly; reset: port 1 link down, VNF ran on, $INTO_RESET; unbind $( [ "$UNBIND_WAITED" = 1 ] && echo "waited for the VNF" || echo "did not wait"), crashed nothing; leaked 0"
