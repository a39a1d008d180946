# kernel-ports: the VNF's kernel-interface backends on the guest's NICs — l2fwd over AF_XDP
# between the two virtio-net interfaces, then over AF_PACKET between the two igb PFs; frames
# injected and counted on the other side of each wire.
. "$VMTEST_JOB/vm/lib.sh"
topology
va=$(netdev_of "$VIO_A"); vb=$(netdev_of "$VIO_B"); pa=$(netdev_of "$PF_A"); pb=$(netdev_of "$PF_B")
for i in "$va" "$vb" "$pa" "$pb"; do if_up "$i"; done
wait_for "grep -q 1 /sys/class/net/$pa/carrier && grep -q 1 /sys/class/net/$pb/carrier" 20 || fail "igb PFs have no carrier"

# AF_XDP on virtio-net (the classifier and the rest of the data path pick the CPU's SIMD at run time).
vnf_start l2fwd --port "af_xdp:$va" --port "af_xdp:$vb" --cpu 1
inject "$pa" "$pb" "$MAC_VIO_A" "$va" "$vb"
vnf_stop
xdp=$( (forward_verdict) | sed -n 's/^RESULT ok //p')
[ -n "$xdp" ] || forward_verdict   # fails with the reason
say "AF_XDP: $xdp"

# AF_PACKET on the igb PFs.
vnf_start l2fwd --port "af_packet:$pa" --port "af_packet:$pb" -P --cpu 1
inject "$va" "$vb" "$MAC_PF_A" "$pa" "$pb"
vnf_stop
VERDICT_PREFIX="AF_XDP: $xdp; AF_PACKET: "
forward_verdict
