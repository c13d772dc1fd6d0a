#!/bin/sh
# The Vulkan GEMM kernels the default choice does not run here, through the op harness's
# GEMM and convolution cases (against the cpu backend): the shared-memory tiles
# (SEGDA_VK_GEMM=tiled), the same with K split in 3 slices and summed (SEGDA_VK_SPLITK=3),
# the register GEMM's storage-buffer loads (SEGDA_VK_TEXEL=0; where the device defaults to
# the tiled kernel this repeats it), and the cooperative-matrix
# GEMM where the device has it. Each run must report the kernel it was asked for, so an
# ignored setting fails.
# usage: test_vk_gemm_kernels.sh TEST_BACKEND_OPS SEGDA [vulkan[:N]]
set -u
ops=$1
segda=$2
dev=${3:-vulkan}
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
run "split-K 3 (forced)" SEGDA_VK_GEMM=tiled SEGDA_VK_SPLITK=3
if "$ops" -b "$dev" -o MATMUL -p "m=19 n=23" 2>/dev/null | grep -q "^GEMM: gemm_reg.comp"; then
    run "buffer loads" SEGDA_VK_TEXEL=0
else
    echo "this device defaults to the tiled kernel: the register GEMM's buffer loads are not its choice"
    run "gemm.comp tile" SEGDA_VK_TEXEL=0
fi
# The cooperative-matrix GEMM's self-test and fallback, with the SIMT kernel standing in for
# it (SEGDA_VK_COOPMAT_STANDIN, on devices without the shape): an exact stand-in must pass
# the self-test and then run MATMUL; a wrong one (alpha off by a quarter) must fail it, warn,
# and leave MATMUL correct on the SIMT kernel.
if ! "$ops" -b "$dev" -o MATMUL 2>/dev/null | grep -q "^GEMM: gemm_coopmat"; then
    out=$(SEGDA_VK_GEMM=coopmat SEGDA_VK_COOPMAT_STANDIN=simt "$ops" -b "$dev" -o MATMUL 2>&1)
    rc=$?
    printf '%s\n' "$out" | grep -E "^(GEMM|MATMUL|FAIL|segda: warning)" | sed "s/^/[stand-in simt] /"
    if [ $rc -ne 0 ] || ! printf '%s\n' "$out" | grep -q "^GEMM after the cases: gemm_coopmat.comp .*self-test passed"; then
        echo "FAIL: an exact stand-in did not pass the cooperative-matrix self-test (exit $rc)"
        status=1
    fi
    out=$(SEGDA_VK_GEMM=coopmat SEGDA_VK_COOPMAT_STANDIN=wrong "$ops" -b "$dev" -o MATMUL 2>&1)
    rc=$?
    printf '%s\n' "$out" | grep -E "^(GEMM|MATMUL|FAIL|segda: warning)" | sed "s/^/[stand-in wrong] /"
    if [ $rc -ne 0 ] || ! printf '%s\n' "$out" | grep -q "failed its self-test" ||
        ! printf '%s\n' "$out" | grep -q "^GEMM after the cases: gemm_coopmat.comp off"; then
        echo "FAIL: a wrong stand-in was not caught by the self-test, or MATMUL did not fall back (exit $rc)"
        status=1
    fi
    # segda bench gemm measures the matrix kernel beside the SIMT one, and records nothing
    # for it when its self-test fails
    bench() { SEGDA_VK_COOPMAT_STANDIN=$1 "$segda" bench gemm --device "$dev" --filter "m=256 n=256" --runs 1 --budget 0.1 2>&1; }
    out=$(bench simt)
    printf '%s\n' "$out" | grep -E "^gemm|^segda bench" | sed "s/^/[bench stand-in simt] /"
    if ! printf '%s\n' "$out" | grep -q "^gemm .* coopmat sgemm square" ||
        ! printf '%s\n' "$out" | grep -q "^gemm .*  sgemm square"; then
        echo "FAIL: segda bench gemm did not measure both the SIMT and the matrix kernel"
        status=1
    fi
    out=$(bench wrong)
    printf '%s\n' "$out" | grep -E "^gemm|^segda bench" | sed "s/^/[bench stand-in wrong] /"
    if printf '%s\n' "$out" | grep -q "coopmat sgemm" ||
        ! printf '%s\n' "$out" | grep -q "no cooperative-matrix GEMM records"; then
        echo "FAIL: segda bench gemm recorded a matrix kernel that failed its self-test"
        status=1
    fi
fi

# The cooperative-matrix GEMM (SEGDA_VK_GEMM=coopmat), where the device has the shape: its
# self-test must pass at first use and MATMUL (fp16 tolerance) and the convolutions must
# agree with the cpu backend. A device without it is reported, the only case not run.
# (SEGDA_REQUIRE makes a missing device a failure; the device itself was required above.)
out=$(env -u SEGDA_REQUIRE SEGDA_VK_GEMM=coopmat "$ops" -b "$dev" -o MATMUL 2>&1)
rc=$?
if [ $rc -eq 77 ] && printf '%s\n' "$out" | grep -q "cannot run the cooperative-matrix GEMM"; then
    echo "cooperative-matrix GEMM: not run, this device lacks it:"
    printf '%s\n' "$out" | grep "^SKIP" | sed 's/^/  /'
else
    for o in MATMUL CONV2D_DIRECT conv2d; do
        out=$(SEGDA_VK_GEMM=coopmat "$ops" -b "$dev" -o "$o" 2>&1)
        rc=$?
        printf '%s\n' "$out" | grep -E "^(GEMM|SKIP|MATMUL|CONV2D|conv2d|FAIL|segda: warning)" | sed "s/^/[coopmat $o] /"
        if [ $rc -ne 0 ]; then
            echo "FAIL: SEGDA_VK_GEMM=coopmat -o $o exited $rc"
            status=1
        elif [ "$o" = MATMUL ] && ! printf '%s\n' "$out" | grep -q "^GEMM after the cases: gemm_coopmat.comp .*self-test passed"; then
            echo "FAIL: the cooperative-matrix GEMM did not pass its self-test or did not run"
            status=1
        fi
    done
fi
exit $status
