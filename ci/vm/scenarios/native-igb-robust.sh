# native-igb-robust: native-robust's checks (lib.sh's steps) for our igb drivers, on a pair of
# SR-IOV VFs (igbvf, their PFs on the kernel igb driver) and then on the two PFs (igb, whole
# device passthrough). Each half, with the VNF forwarding port 0 -> port 1:
#  1. 20 frames of 9000 bytes (VIO_A's MTU raised; far beyond an mbuf's data room, each spans
#     nine 1 KiB receive buffers) are dropped and counted as port 0's rx errors, the numbered
#     frames after them forwarded exactly;
#  2. a sysfs reset of port 1's device under the running VNF is reported as "Port 1 Link down",
#     the VNF runs on, and the 500 frames it then forwards to the reset port are each counted
#     (refused by the dead port's queue, or left in its ring: transmit errors);
#  3. port 0's device is unbound from vfio-pci mid-run: the unbind waits for the VNF, nothing
#     crashes; the VNF exits 0 with every mbuf back, and both devices go back to their kernel
#     drivers.
. "$VMTEST_JOB/vm/lib.sh"
# Two VNF runs in one scenario's time: 5000 numbered frames per run unless told otherwise.
FRAMES=${VMTEST_FRAMES:-2000}
topology
va=$(netdev_of "$VIO_A"); vb=$(netdev_of "$VIO_B")
if_up "$va"; if_up "$vb"
ip link set dev "$va" mtu 9000 || fail "virtio-net refused MTU 9000 on $va"

robust_half() { # WHAT DEV0 DEV1 DST_MAC KERNEL_DRIVER
  local what=$1 d0=$2 d1=$3 dst=$4 kdrv=$5
  say "---- $what: $d0 and $d1"
  # 1024-entry receive rings: QEMU's igb drops a frame for a VF queue (or one RSS queue of
  # several) with no free descriptor without counting it anywhere, so a ring that overflows
  # while TCG starves the VNF's vCPU would be an unnamed loss; 1024 entries hold 400 ms of
  # the offered rate.
  vnf_start l2fwd --port "pci:$d0,rxd=1024" --port "pci:$d1,rxd=1024" --cpu 1
  [ "$(grep -c "(pci:$what)\|: pci:$what .*rings 1024/" "$SCRATCH/vnf.log")" -ge 4 ] \
    || fail "$what: the ports were not opened by our $what driver with 1024-entry receive rings: $(grep "pci:$what" "$SCRATCH/vnf.log")"
  send_oversized "$va" "$dst" 20 9000
  inject "$va" "$vb" "$dst"
  check_oversize_counted 0
  reset_under_vnf "$d1" 1
  forward_into_reset "$va" "$vb" "$dst" 500
  unbind_under_vnf "$d0"
  vnf_stop
  [ "$VNF_LEAKED" = 0 ] || fail "$what: the VNF leaked $VNF_LEAKED mbufs"
  unbind_finished "$d0" "$kdrv"
  unbind_to "$kdrv" "$d1"
  wait_for "[ -n \"\$(netdev_of $d0)\" ] && [ -n \"\$(netdev_of $d1)\" ]" 15 \
    || fail "$what: $kdrv did not take $d0 and $d1 back"
  HALF="$what: $OVERSIZE rx errors, $GOOD_FORWARDED forwarded exactly, link down after the reset, $INTO_RESET, unbind $( [ "$UNBIND_WAITED" = 1 ] && echo "waited" || echo "did not wait"), leaked 0"
}

# The VFs: VF 0 of each PF (the PFs up on igb, VIO_A's frames reach VF_A through PF_A's switch).
setup_vf_pair 0
# The PF's own MTU too: Linux's igb sizes the device's global frame limit from it.
ip link set dev "$(netdev_of "$PF_A")" mtu 9000 || fail "igb refused MTU 9000 on $PF_A"
bind_vfio "$VF_A" "$VF_B"
robust_half igbvf "$VF_A" "$VF_B" "$(vf_mac 0a 0)" igbvf
vf_half=$HALF
echo 0 > "$(pci_dev "$PF_A")/sriov_numvfs"; echo 0 > "$(pci_dev "$PF_B")/sriov_numvfs"
ip link set dev "$(netdev_of "$PF_A")" mtu 1500

# The PFs.
bind_vfio "$PF_A" "$PF_B"
robust_half igb "$PF_A" "$PF_B" "$MAC_PF_A" igb
pass "$vf_half; $HALF"
