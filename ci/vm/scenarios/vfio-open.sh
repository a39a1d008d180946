# vfio-open: bindings/vfio's container/group/device path on real devices (dataplane's
# tests/vfio_device.rs, run with --ignored): group viability, config space against sysfs, BAR0
# and a register's documented reset value, the mempool region DMA-mapped and unmapped, and a
# non-viable group refused. The igb PF PF_A is bound alone; of the e1000 NICs behind a
# PCIe-to-PCI bridge (one IOMMU group), one is bound to vfio-pci, the rest stays on its drivers.
. "$VMTEST_JOB/vm/lib.sh"
topology
[ -n "$E_A" ] || fail "the e1000 NICs behind the PCI bridge are missing"
grp=$(group_of "$E_A")
[ -n "$grp" ] || fail "$E_A has no IOMMU group"
bind_vfio "$PF_A"
"$VNF" devbind --bind vfio-pci "$E_A" || fail "devbind --bind vfio-pci $E_A"
# Another member of the group is on a kernel driver: on x86_64 the second e1000 (on e1000), on
# arm64 the PCIe-to-PCI bridge (on shpchp; SMMUv3 gives the second e1000 behind the bridge no
# group of its own, as its requester id aliases the first's).
others=""
for m in /sys/kernel/iommu_groups/"$grp"/devices/*; do
  a=$(basename "$m"); [ "$a" = "$E_A" ] && continue
  case "$(driver_of "$a")" in ""|vfio-pci|pcieport|pci-stub) ;; *) others="$others $a($(driver_of "$a"))" ;; esac
done
[ -n "$others" ] || fail "IOMMU group $grp of $E_A has no other member on a kernel driver"
say "PF $PF_A (group $(group_of "$PF_A")) on vfio-pci; $E_A on vfio-pci in group $grp with$others"
VFIO_TEST_DEVICE=$PF_A VFIO_TEST_NONVIABLE=$E_A "$BIN/vfio_device" --ignored --test-threads 1 --nocapture \
  > "$SCRATCH/t.out" 2>&1
rc=$?
cat "$SCRATCH/t.out"
[ "$rc" -eq 0 ] || fail "vfio_device tests failed: $(grep -E '^test .*FAILED|panicked' "$SCRATCH/t.out" | head -n 3 | tr '\n' ' ')"
n=$(grep -o '^test result: ok. [0-9]* passed' "$SCRATCH/t.out" | grep -o '[0-9]* passed')
[ "$n" = "5 passed" ] || fail "expected 5 tests to pass, got: $n"
unbind_to igb "$PF_A"
unbind_to e1000 "$E_A"
pass "5 VFIO checks on $PF_A, non-viable group $grp refused"
