#!/bin/sh
# The Vulkan GEMM kernels the default choice does not run here, through the op harness's
# GEMM and convolution cases (against the cpu backend): the shared-memory tiles
# (SEGDA_VK_GEMM=tiled) and the register GEMM's storage-buffer loads (SEGDA_VK_TEXEL=0;
# where the device defaults to the tiled kernel this repeats it). Each run must report the
# kernel it was asked for, so an ignored setting fails.
# usage: test_vk_gemm_kernels.sh TEST_BACKEND_OPS [vulkan[:N]]
set -u
ops=$1
dev=${2:-vulkan}
status=0
run() { # run EXPECT ENV...: the three case sets with ENV, output must name EXPECT
    expect=$1
    shift
    for o in MATMUL CONV2D_DIRECT conv2d; do
        out=$(env "$@" "$ops" -b "$dev" -o "$o" 2>&1)
        rc=$?
        printf '%s\n' "$out" | grep -E "^(GEMM|SKIP|MATMUL|CONV2D|conv2d|FAIL)" | sed "s/^/[$* $o] /"
        [ $rc -eq 77 ] && exit 77
        if [ $rc -ne 0 ]; then
            echo "FAIL: $* -o $o exited $rc"
            status=1
        elif ! printf '%s\n' "$out" | grep -q "^GEMM: .*$expect"; then
            echo "FAIL: $* -o $o did not run the expected kernel ($expect)"
            status=1
        fi
    done
}
run "gemm.comp tile" SEGDA_VK_GEMM=tiled
if "$ops" -b "$dev" -o MATMUL -p "m=19 n=23" 2>/dev/null | grep -q "^GEMM: gemm_reg.comp"; then
    run "buffer loads" SEGDA_VK_TEXEL=0
else
    echo "this device defaults to the tiled kernel: the register GEMM's buffer loads are not its choice"
    run "gemm.comp tile" SEGDA_VK_TEXEL=0
fi
exit $status
