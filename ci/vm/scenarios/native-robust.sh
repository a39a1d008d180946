# native-robust: our virtio-net driver under bad input and a hostile kernel:
#  1. frames larger than an mbuf's data room (4000 bytes) are dropped and counted (rx errors),
#     the normal frames around them forwarded exactly;
#  2. a device reset under the running VNF (sysfs reset) makes the port report link down, the
#     VNF keeps running, and exits cleanly with every mbuf back;
#  3. unbinding the device from vfio-pci while the VNF holds it blocks in the kernel until the
#     VNF lets go, and crashes nothing; the device then goes back to virtio-pci.
. "$VMTEST_JOB/vm/lib.sh"
topology
bind_vfio "$VIO_A" "$VIO_B"
pa=$(netdev_of "$PF_A"); pb=$(netdev_of "$PF_B")
if_up "$pa"; if_up "$pb"
ip link set dev "$pa" mtu 9000 || fail "igb refused MTU 9000 on $pa"
wait_for "grep -q 1 /sys/class/net/$pa/carrier && grep -q 1 /sys/class/net/$pb/carrier" 20 || fail "igb PFs have no carrier"

vnf_start l2fwd --port "pci:$VIO_A" --port "pci:$VIO_B" --cpu 1
# 1. 20 oversized frames, then the usual numbered traffic.
OVERSIZE=20
"$PKTGEN" run --tx-port "af_packet:$pa" --count $OVERSIZE --rate 1000 --duration 10 --size 4000 \
  --src-mac 02:76:00:00:ee:01 --dst-mac "$MAC_VIO_A" --udp-port 7000 > "$SCRATCH/big.out" 2>&1 \
  || { cat "$SCRATCH/big.out"; fail "pktgen could not send 4000-byte frames"; }
sleep 1
inject "$pa" "$pb" "$MAC_VIO_A"
last=$(grep '^{"drops"' "$SCRATCH/vnf.log" | tail -n 1)
ierr=$(json_port_field "$last" 0 ierrors)
say "port 0 rx errors after the oversized frames: $ierr"
[ "$ierr" = "$OVERSIZE" ] || fail "$OVERSIZE frames of 4000 bytes gave $ierr rx errors on port 0, not $OVERSIZE"
[ "$RECEIVED" = "$SENT" ] && [ "$LOST" = 0 ] && [ "$DUPS" = 0 ] || fail "after the oversized frames: sent $SENT, received $RECEIVED, lost $LOST, duplicated $DUPS"
[ "$(json_port_field "$last" 0 ipackets)" = "$SENT" ] || fail "port 0 counted $(json_port_field "$last" 0 ipackets) packets for $SENT good frames"

# 2. A device reset under the VNF.
echo 1 > "$(pci_dev "$VIO_B")/reset" || fail "sysfs reset of $VIO_B failed"
wait_for "grep -q 'Port 1 Link down' $SCRATCH/vnf.log" 10 || fail "port 1 did not report link down after its device was reset"
say "after the reset: $(grep 'Port 1 Link down' "$SCRATCH/vnf.log" | tail -n 1)"
sleep 2
kill -0 "$VNF_PID" || fail "the VNF died after the device reset"

# 3. Unbind VIO_A from vfio-pci while the VNF holds it.
( echo "$VIO_A" > /sys/bus/pci/drivers/vfio-pci/unbind ) &
unbind_pid=$!
sleep 3
kill -0 "$VNF_PID" || fail "the VNF died when $VIO_A's unbind began"
uptime > /dev/null && ip link show "$pa" > /dev/null || fail "the guest stopped answering during the unbind"
kill -0 "$unbind_pid" 2>/dev/null && say "unbind of $VIO_A waits for the VNF, as vfio-pci does for a device in use"
vnf_stop
wait_for "! kill -0 $unbind_pid" 20 || fail "the unbind of $VIO_A did not finish after the VNF exited"
[ -z "$(driver_of "$VIO_A")" ] || fail "$VIO_A is on $(driver_of "$VIO_A") after its unbind"
echo > "$(pci_dev "$VIO_A")/driver_override"
echo "$VIO_A" > /sys/bus/pci/drivers_probe
unbind_to virtio-pci "$VIO_B"
wait_for "[ \"\$(driver_of $VIO_A)\" = virtio-pci ]" 10 || fail "$VIO_A did not go back to virtio-pci"
[ "$VNF_LEAKED" = 0 ] || fail "the VNF leaked $VNF_LEAKED mbufs"
pass "$OVERSIZE oversized frames counted as rx errors, $SENT frames forwarded exactly; reset: port 1 link down, VNF ran on; unbind waited for the VNF; leaked 0"
