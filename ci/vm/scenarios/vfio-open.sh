# vfio-open: bindings/vfio's container/group/device path on real devices (dataplane's
# tests/vfio_device.rs, run with --ignored): group viability, config space against sysfs, BAR0
# and a register's documented reset value, the mempool region DMA-mapped and unmapped, and a
# non-viable group refused. The igb PF PF_A is bound alone; of the two e1000 NICs that share an
# IOMMU group, one is bound to vfio-pci and the other stays on e1000.
. "$VMTEST_JOB/vm/lib.sh"
topology
[ -n "$E_A" ] && [ -n "$E_B" ] || fail "the two e1000 NICs behind the PCI bridge are missing"
[ "$(group_of "$E_A")" = "$(group_of "$E_B")" ] || fail "$E_A and $E_B are not in one IOMMU group"
bind_vfio "$PF_A"
"$VNF" devbind --bind vfio-pci "$E_A" || fail "devbind --bind vfio-pci $E_A"
[ "$(driver_of "$E_B")" = e1000 ] || fail "$E_B should still be on e1000"
say "PF $PF_A (group $(group_of "$PF_A")) on vfio-pci; $E_A on vfio-pci and $E_B on e1000 in group $(group_of "$E_A")"
VFIO_TEST_DEVICE=$PF_A VFIO_TEST_NONVIABLE=$E_A "$BIN/vfio_device" --ignored --test-threads 1 --nocapture \
  > "$SCRATCH/t.out" 2>&1
rc=$?
cat "$SCRATCH/t.out"
[ "$rc" -eq 0 ] || fail "vfio_device tests failed: $(grep -E '^test .*FAILED|panicked' "$SCRATCH/t.out" | head -n 3 | tr '\n' ' ')"
n=$(grep -o '^test result: ok. [0-9]* passed' "$SCRATCH/t.out" | grep -o '[0-9]* passed')
[ "$n" = "5 passed" ] || fail "expected 5 tests to pass, got: $n"
unbind_to igb "$PF_A"
unbind_to e1000 "$E_A"
pass "5 VFIO checks on $PF_A and group $(group_of "$E_A")"
