# devbind-guard: binding the interface that carries the default route is refused without
# --force; a bind that the kernel refuses rolls back to the original driver.
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

# A bind the kernel refuses: vfio-pci only takes type-0 (endpoint) functions, so binding the
# PCIe root port above VIO_B (an operator's wrong address) fails in vfio-pci's probe, after
# devbind has already taken the port from pcieport. The rollback must give it back.
port=$(basename "$(dirname "$(readlink -f "$(pci_dev "$VIO_B")")")")
[ "$(driver_of "$port")" = pcieport ] || fail "$VIO_B's parent $port is on '$(driver_of "$port")', not pcieport"
out=$("$VNF" devbind --bind vfio-pci "$port" 2>&1); rc=$?
echo "$out"
[ "$rc" -ne 0 ] || fail "binding the root port $port to vfio-pci did not fail"
echo "$out" | grep -q "rolled back, device is on pcieport" || fail "the failure does not report the rollback to pcieport: $out"
[ "$(driver_of "$port")" = pcieport ] || fail "$port is on '$(driver_of "$port")' after the rollback, not pcieport"
ov=$(cat "$(pci_dev "$port")/driver_override")
[ "$ov" = "(null)" ] || [ -z "$ov" ] || fail "driver_override left as '$ov' on $port"
[ "$(driver_of "$VIO_B")" = virtio-pci ] && [ -n "$(netdev_of "$VIO_B")" ] || fail "$VIO_B behind the port lost its driver or interface"
# --force does bind the routed interface.
if_up "$ifc"; ip addr add 198.18.9.2/24 dev "$ifc"; ip route add default via 198.18.9.1 dev "$ifc" onlink
"$VNF" devbind --bind vfio-pci --force "$PF_B" || fail "--force did not bind $PF_B"
[ "$(driver_of "$PF_B")" = vfio-pci ] || fail "$PF_B not on vfio-pci after --force"
unbind_to igb "$PF_B"
pass "default-route interface refused, failed bind of $port rolled back to pcieport, --force binds"
