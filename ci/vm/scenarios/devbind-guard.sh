# devbind-guard: binding the interface that carries the default route is refused without
# --force; a bind that fails (vfio-pci not loaded, so no driver takes the device) rolls back to
# the original driver.
. "$VMTEST_JOB/vm/lib.sh"
topology
ifc=$(netdev_of "$PF_B")
if_up "$ifc"
ip addr add 198.18.9.2/24 dev "$ifc"
ip route add default via 198.18.9.1 dev "$ifc" onlink || fail "could not add the default route"
out=$("$VNF" devbind --bind vfio-pci "$PF_B" 2>&1); rc=$?
echo "$out"
[ "$rc" -ne 0 ] || fail "binding $PF_B ($ifc, default route) was not refused"
echo "$out" | grep -q "$ifc carries the default route" || fail "the refusal does not name the default route: $out"
[ "$(driver_of "$PF_B")" = igb ] || fail "$PF_B left igb after a refused bind"
ip route del default
ip addr flush dev "$ifc"
ip link set dev "$ifc" down

# A failed bind: vfio-pci unloaded, so after the override no driver probes the device.
modprobe -r vfio_pci || fail "could not unload vfio-pci"
out=$("$VNF" devbind --bind vfio-pci "$VIO_B" 2>&1); rc=$?
echo "$out"
modprobe vfio_pci || fail "could not load vfio-pci again"
[ "$rc" -ne 0 ] || fail "the bind with vfio-pci unloaded did not fail"
echo "$out" | grep -qi "rolled back" || fail "the failure does not report the rollback: $out"
wait_for "[ \"\$(driver_of $VIO_B)\" = virtio-pci ]" 10 || fail "$VIO_B is on '$(driver_of "$VIO_B")' after the rollback, not virtio-pci"
[ -n "$(netdev_of "$VIO_B")" ] || fail "$VIO_B has no interface after the rollback"
[ -z "$(cat "$(pci_dev "$VIO_B")/driver_override")" ] || [ "$(cat "$(pci_dev "$VIO_B")/driver_override")" = "(null)" ] \
  || fail "driver_override left set on $VIO_B"
# --force does bind the routed interface.
if_up "$ifc"; ip addr add 198.18.9.2/24 dev "$ifc"; ip route add default via 198.18.9.1 dev "$ifc" onlink
"$VNF" devbind --bind vfio-pci --force "$PF_B" || fail "--force did not bind $PF_B"
[ "$(driver_of "$PF_B")" = vfio-pci ] || fail "$PF_B not on vfio-pci after --force"
unbind_to igb "$PF_B"
pass "default-route interface refused, failed bind rolled back to virtio-pci, --force binds"
