"""python3 tests/fwdref_gen.py OUT_DIR: NumPy references of the ops that the op harness
checks against nothing independent on cpu (forward-only ops, and the forward values of
index ops whose gradient check would not notice a wrong but self-consistent result).

Each case writes OUT_DIR/NAME.in<k>.npy (inputs), NAME.p.npy (float64 parameters),
NAME.out<k>.npy (expected outputs) and a line "NAME OP NIN NOUT RTOL ATOL" of
OUT_DIR/cases.txt; tests/test_fwdref.c runs them. Integer outputs are compared exactly;
float outputs bit-exactly where RTOL = ATOL = 0, else |got - want| <= RTOL * |want| +
ATOL * max|want| (ATOL is relative to the output's scale). The formulas
are written from src/core/ops.def (and PyTorch's documentation for the optimizers), not
from any backend's kernel."""
import os
import sys

import numpy as np

F32, I32, U8 = np.float32, np.int32, np.uint8
rng = np.random.default_rng(20240622)
lines = []


def case(out_dir, name, op, ins, params, outs, rtol=0.0, atol=0.0):
    for k, a in enumerate(ins):
        np.save(os.path.join(out_dir, f"{name}.in{k}.npy"), np.ascontiguousarray(a))
    np.save(os.path.join(out_dir, f"{name}.p.npy"), np.asarray(params, dtype=np.float64).reshape(-1))
    for k, a in enumerate(outs):
        np.save(os.path.join(out_dir, f"{name}.out{k}.npy"), np.ascontiguousarray(a))
    lines.append(f"{name} {op} {len(ins)} {len(outs)} {rtol:g} {atol:g}")


def uni(shape, lo=-1.0, hi=1.0):
    return rng.uniform(lo, hi, shape).astype(F32)


def ties(shape, levels=4):
    """Few distinct values: many exact ties."""
    return (rng.integers(0, levels, shape) * 0.5 - 1.0).astype(F32)


def f32bits(u):
    return np.array([u], dtype=np.uint32).view(F32)[0]


def gen(d):
    # FILL: a bit pattern over a view [start, start+len) of a larger tensor; the rest keeps
    # its contents. Patterns: -0.0, a denormal, a NaN with payload (bits must survive), ints.
    for name, dt, bits, start, ln in [("fill_f32_negzero", F32, 0x80000000, 0, 1031),
                                      ("fill_f32_denormal", F32, 0x00000001, 3, 517),
                                      ("fill_f32_nan", F32, 0x7FC01234, 5, 1),
                                      ("fill_f32_one", F32, 0x3F800000, 0, 4099),
                                      ("fill_i32_neg", I32, 0xF8A432EB, 7, 300),  # -123456789
                                      ("fill_i32_max", I32, 0x7FFFFFFF, 1, 2)]:
        n = max(start + ln + 5, 16) if ln < 4099 else 4099
        x = (np.arange(n) * 3 + 1).astype(dt)
        want = x.copy()
        want.view(np.uint32)[start:start + ln] = bits
        case(d, name, "fill", [x], [bits, start, ln], [want])

    # CAST: F32 -> I32 truncates toward zero (negatives too); I32 -> F32 rounds to nearest
    # even past 2^24; U8 in range.
    f = np.array([0.0, -0.0, 0.5, -0.5, 0.999, -0.999, 1.0, -1.0, 1.5, -1.5, 2.5, -2.5, 3.7, -3.7,
                  254.99, -255.5, 1e9, -1e9, 2147483520.0, -2147483648.0, 16777217.0, 1e-30], F32)
    case(d, "cast_f32_i32", "cast", [f], [1], [np.trunc(f.astype(np.float64)).astype(I32)])
    i = np.array([0, 1, -1, 7, -123456, 16777216, 16777217, 16777219, -16777219, 2147483647,
                  -2147483648, 305419896], I32)
    case(d, "cast_i32_f32", "cast", [i], [0], [i.astype(F32)])
    f8 = np.array([0.0, 0.25, 1.0, 1.99, 127.5, 128.0, 200.9, 254.999, 255.0], F32)
    case(d, "cast_f32_u8", "cast", [f8], [2], [np.trunc(f8).astype(U8)])
    i8 = np.array([0, 1, 127, 128, 200, 254, 255], I32)
    case(d, "cast_i32_u8", "cast", [i8], [2], [i8.astype(U8)])
    u = np.arange(0, 256, 5, dtype=U8)
    case(d, "cast_u8_f32", "cast", [u], [0], [u.astype(F32)])
    case(d, "cast_u8_i32", "cast", [u], [1], [u.astype(I32)])
    big = uni(1000, -300.0, 300.0)
    case(d, "cast_f32_i32_1000", "cast", [big], [1], [np.trunc(big).astype(I32)])

    # ARGREDUCE: ties everywhere; NumPy's argmax/argmin return the first (smallest) index,
    # which is what ops.def specifies.
    for shape, axis, keep in [((3, 7, 5), 1, 0), ((4, 9), -1, 1), ((6, 3, 2), 0, 0),
                              ((2, 1, 3), 1, 0), ((3, 300), 1, 0), ((2, 19, 33), 2, 1), ((1, 5000), 1, 0)]:
        x = ties(shape)
        if x.size > 20:
            x.reshape(-1)[::11] = -np.inf
        for argmin in (0, 1):
            r = (np.argmin if argmin else np.argmax)(x, axis=axis)
            if keep:
                r = np.expand_dims(r, axis)
            nm = f"argreduce_{'min' if argmin else 'max'}_{'x'.join(map(str, shape))}_ax{axis}"
            case(d, nm, "argreduce", [x], [argmin, axis, keep], [r.astype(I32)])
    case(d, "argreduce_max_allequal", "argreduce", [np.full((2, 17), 3.0, F32)], [0, 1, 0],
         [np.zeros(2, I32)])

    # ONE_HOT: labels outside [0, C) (the ignore label 255, -1, C) give an all-zero column.
    for shape, c in [((2, 5, 7), 19), ((3, 11), 4), ((6,), 3)]:
        lab = rng.integers(0, c, shape).astype(I32)
        flat = lab.reshape(-1)
        flat[::4] = 255
        flat[1::9] = -1
        flat[2::13] = c
        oh = (lab[:, None] == np.arange(c).reshape((1, c) + (1,) * (lab.ndim - 1))).astype(F32)
        case(d, f"one_hot_{'x'.join(map(str, shape))}_c{c}", "one_hot", [lab], [c], [oh])

    # RESIZE_NEAREST: i = min(floor(o * ((float)in / (float)out)), in - 1), in float32.
    def near_idx(n_in, n_out):
        s = F32(n_in) / F32(n_out)
        o = np.arange(n_out, dtype=F32) * s
        return np.minimum(np.floor(o).astype(np.int64), n_in - 1)

    for shape, oh, ow, dt in [((1, 2, 5, 7), 3, 11, F32), ((2, 3, 4), 9, 6, F32),
                              ((1, 1, 13, 10), 4, 3, F32), ((1, 2, 97, 131), 33, 65, I32),
                              ((3, 6, 6), 6, 6, F32), ((1, 1, 5, 3), 1, 1, F32),
                              ((1, 3, 7, 3), 10, 7, I32),
                              # 14 -> 46 and 3 -> 123: float32 o * scale falls just below an
                              # integer where the exact o * in / out is one (the spec: float)
                              ((1, 2, 14, 3), 46, 123, F32)]:
        x = uni(shape) if dt is F32 else rng.integers(-1000, 1000, shape).astype(I32)
        y = x[..., near_idx(shape[-2], oh), :][..., near_idx(shape[-1], ow)]
        nm = f"resize_nearest_{shape[-2]}x{shape[-1]}_to_{oh}x{ow}_{np.dtype(dt).name}"
        case(d, nm, "resize_nearest", [x], [oh, ow], [y])

    # SGD_STEP (PyTorch's SGD with momentum and weight decay), in float64: per step
    # g = grad + wd*p; buf = g on the first step else mom*buf + g; p -= lr*buf.
    for nm, n, steps, lr, mom, wd, first in [("sgd_first", 37, 1, 0.1, 0.9, 5e-4, 1),
                                             ("sgd_3steps", 37, 3, 0.01, 0.9, 5e-4, 1),
                                             ("sgd_resume", 20, 2, 0.05, 0.5, 0.0, 0),
                                             ("sgd_nomom", 9, 2, 0.2, 0.0, 1e-2, 1)]:
        lr, mom, wd = F32(lr), F32(mom), F32(wd)
        p0, b0, gs = uni(n), uni(n), uni((steps, n), -2.0, 2.0)
        p, b = p0.astype(np.float64), b0.astype(np.float64)
        for s in range(steps):
            g = gs[s].astype(np.float64) + float(wd) * p
            b = g if (first and s == 0) else float(mom) * b + g
            p = p - float(lr) * b
        case(d, nm, "sgd", [p0, b0, gs], [lr, mom, wd, first], [p.astype(F32), b.astype(F32)],
             1e-6, 1e-6)

    # ADAM_STEP (PyTorch's Adam, L2 weight decay, bias correction; with dec, AdamW's decoupled
    # decay p *= 1 - lr * weight_decay first, as torch.optim.AdamW), in float64, steps t0...
    for nm, n, steps, t0, lr, b1, b2, eps, wd, dec in [
            ("adam_3steps", 41, 3, 1, 1e-3, 0.9, 0.999, 1e-8, 0.0, 0.0),
            ("adam_wd", 16, 3, 1, 1e-2, 0.9, 0.99, 1e-8, 1e-2, 0.0),
            ("adam_late", 8, 2, 1000, 1e-3, 0.8, 0.999, 1e-6, 0.0, 0.0),
            ("adamw", 33, 3, 1, 6e-4, 0.9, 0.999, 1e-8, 0.0, 6e-4 * 0.01)]:
        lr, b1, b2, eps, wd, dec = F32(lr), F32(b1), F32(b2), F32(eps), F32(wd), F32(dec)
        p0, gs = uni(n), uni((steps, n), -1e-2, 1e-2)
        gs[:, 0] = 0.0  # a zero gradient from zero moments: the parameter stays put
        m0 = np.zeros(n, F32) if t0 == 1 else uni(n, -1e-3, 1e-3)
        v0 = np.zeros(n, F32) if t0 == 1 else uni(n, 0.0, 1e-4)
        p, m, v = (a.astype(np.float64) for a in (p0, m0, v0))
        B1, B2 = float(b1), float(b2)
        for s in range(steps):
            t = t0 + s
            p = p - float(dec) * p
            g = gs[s].astype(np.float64) + float(wd) * p
            m = B1 * m + (1 - B1) * g
            v = B2 * v + (1 - B2) * g * g
            bc1, bc2 = 1 - B1 ** t, 1 - B2 ** t
            p = p - float(lr) / bc1 * m / (np.sqrt(v) / np.sqrt(bc2) + float(eps))
        case(d, nm, "adam", [p0, m0, v0, gs], [lr, b1, b2, eps, wd, t0, dec],
             [p.astype(F32), m.astype(F32), v.astype(F32)], 1e-5, 1e-7)

    # CONV2D_DIRECT: a direct loop over the kernel taps on the zero-padded input, float64.
    def conv(x, w, b, sh, sw, ph, pw, dh, dw):
        n, c, h, wd_ = x.shape
        co, _, kh, kw = w.shape
        oh = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
        ow = (wd_ + 2 * pw - dw * (kw - 1) - 1) // sw + 1
        xp = np.zeros((n, c, h + 2 * ph + sh * oh + dh * kh, wd_ + 2 * pw + sw * ow + dw * kw))
        xp[:, :, ph:ph + h, pw:pw + wd_] = x
        y = np.zeros((n, co, oh, ow))
        for i in range(kh):
            for j in range(kw):
                patch = xp[:, :, i * dh:i * dh + sh * oh:sh, j * dw:j * dw + sw * ow:sw]
                y += np.einsum("nchw,oc->nohw", patch, w[:, :, i, j].astype(np.float64))
        if b is not None:
            y += b.astype(np.float64)[None, :, None, None]
        return y.astype(F32)

    for nm, xs, ws, prm, bias in [("conv_3x3_s1p1", (1, 3, 9, 11), (5, 3, 3, 3), (1, 1, 1, 1, 1, 1), True),
                                  ("conv_3x3_s2p1_odd", (2, 4, 13, 9), (3, 4, 3, 3), (2, 2, 1, 1, 1, 1), True),
                                  ("conv_3x3_d2p2", (1, 2, 10, 10), (4, 2, 3, 3), (1, 1, 2, 2, 2, 2), False),
                                  ("conv_1x1_p2", (2, 5, 4, 6), (7, 5, 1, 1), (1, 1, 2, 2, 1, 1), True),
                                  ("conv_2x5_mixed", (1, 3, 15, 12), (2, 3, 2, 5), (3, 1, 0, 3, 4, 2), True),
                                  ("conv_7x7_s2p3", (1, 3, 17, 17), (8, 3, 7, 7), (2, 2, 3, 3, 1, 1), False),
                                  ("conv_3x3_d12", (1, 4, 29, 27), (3, 4, 3, 3), (1, 1, 12, 12, 12, 12), True),
                                  ("conv_3x3_c64", (2, 64, 9, 10), (65, 64, 3, 3), (1, 1, 1, 1, 1, 1), True)]:
        x, w = uni(xs), uni(ws, -0.5, 0.5)
        b = uni(ws[0]) if bias else None
        y = conv(x, w, b, *prm)
        case(d, nm, "conv2d_direct", [x, w] + ([b] if bias else []), list(prm), [y], 1e-4, 1e-4)

    # RNG_UNIFORM: the counter-based hash of ops.def in uint32 with wrap-around (uint64 masked).
    M = np.uint64(0xFFFFFFFF)

    def fmix32(h):
        h ^= h >> np.uint64(16)
        h = (h * np.uint64(0x85EBCA6B)) & M
        h ^= h >> np.uint64(13)
        h = (h * np.uint64(0xC2B2AE35)) & M
        h ^= h >> np.uint64(16)
        return h

    for seed, stream, n in [(0, 0, 7), (12345, 0xDEADBEEF, 1000), (0xFFFFFFFF, 3, 4099), (7, 1, 65537)]:
        i = np.arange(n, dtype=np.uint64)
        h = fmix32((i * np.uint64(0x9E3779B9) + np.uint64(seed)) & M)
        h = fmix32(h ^ np.uint64(stream))
        want = (h >> np.uint64(8)).astype(F32) * F32(1.0 / 16777216.0)
        case(d, f"rng_{seed:x}_{stream:x}_{n}", "rng", [np.full(n, -5.0, F32)], [seed, stream], [want])

    # SORT: stable by value, ties by the smaller original index in both directions;
    # -0.0 and 0.0 are equal values.
    for shape, desc in [((3, 7), 0), ((3, 7), 1), ((2, 33), 1), ((4, 300), 0), ((5, 1), 1), ((1, 1000), 1)]:
        x = ties(shape, 5)
        x.reshape(-1)[1::7] = 0.0
        x.reshape(-1)[3::7] = -0.0
        x.reshape(-1)[5::17] = -np.inf
        idx = np.argsort(-x if desc else x, axis=-1, kind="stable")
        nm = f"sort_{'desc' if desc else 'asc'}_{shape[0]}x{shape[1]}"
        # Values by value (-0.0 == 0.0), indices exactly.
        case(d, nm, "sort", [x], [desc], [np.take_along_axis(x, idx, -1), idx.astype(I32)], 1e-7, 0)

    # CUMSUM: inclusive, from either end, float64.
    for shape, axis, rev in [((2, 5, 3), 1, 0), ((2, 5, 3), 1, 1), ((4, 37), -1, 0), ((300, 2), 0, 1),
                             ((2, 2500), 1, 0)]:
        x = uni(shape) if shape[-1] < 2500 else uni(shape, 0.0, 1.0)  # long: no cancellation
        xd = x.astype(np.float64)
        y = np.flip(np.cumsum(np.flip(xd, axis), axis), axis) if rev else np.cumsum(xd, axis)
        case(d, f"cumsum_{'x'.join(map(str, shape))}_ax{axis}_{'rev' if rev else 'fwd'}", "cumsum",
             [x], [axis, rev], [y.astype(F32)], 1e-5 if shape[-1] < 2500 else 1e-4, 1e-5)

    # GATHER: dst[o][j][i] = src[o][idx[o][j][i]][i]; out-of-range indices give 0.
    for shape, axis, m, dt in [((3, 6, 4), 1, 9, F32), ((5, 7), 1, 3, I32), ((8, 3), 0, 11, F32)]:
        x = uni(shape) if dt is F32 else rng.integers(-99, 99, shape).astype(I32)
        ishape = list(shape)
        ishape[axis] = m
        n = shape[axis]
        idx = rng.integers(-2, n + 2, ishape).astype(I32)
        ok = (idx >= 0) & (idx < n)
        y = np.where(ok, np.take_along_axis(x, np.clip(idx, 0, n - 1), axis), 0).astype(dt)
        case(d, f"gather_{'x'.join(map(str, shape))}_ax{axis}_m{m}_{np.dtype(dt).name}", "gather",
             [x, idx], [axis], [y])

    # SCATTER_ADD: sums over equal indices, drops out-of-range ones; with unique, a permutation.
    for shape, axis, n, uniq in [((3, 8, 4), 1, 5, 0), ((6, 10), 1, 10, 1), ((9, 2), 0, 4, 0),
                                 ((2, 500, 3), 1, 4, 0)]:  # many collisions
        x = uni(shape)
        if uniq:
            idx = np.argsort(rng.random(shape), axis=axis).astype(I32)
        else:
            idx = rng.integers(-1, n + 1, shape).astype(I32)
        xm, im = np.moveaxis(x, axis, -2), np.moveaxis(idx, axis, -2)
        ym = np.zeros(xm.shape[:-2] + (n, xm.shape[-1]))
        for pos in np.ndindex(*xm.shape):
            k = im[pos]
            if 0 <= k < n:
                ym[pos[:-2] + (k, pos[-1])] += xm[pos]
        y = np.moveaxis(ym, -2, axis).astype(F32)
        case(d, f"scatter_add_{'x'.join(map(str, shape))}_ax{axis}_n{n}{'_unique' if uniq else ''}",
             "scatter_add", [x, idx], [axis, n, uniq], [y], 1e-5, 1e-6)

    # PERMUTE (F32 and I32), SLICE, SLICE_ASSIGN: pure data movement, bit-exact.
    for shape, perm, dt in [((2, 3, 4, 5), (3, 1, 0, 2), F32), ((4, 7, 3), (2, 0, 1), I32),
                            ((5, 9), (1, 0), F32), ((2, 1, 3, 1), (0, 3, 2, 1), F32)]:
        x = uni(shape) if dt is F32 else rng.integers(-9999, 9999, shape).astype(I32)
        case(d, f"permute_{'x'.join(map(str, shape))}_{''.join(map(str, perm))}", "permute", [x], list(perm),
             [np.transpose(x, perm)])
    for shape, axis, start, ln in [((3, 10, 4), 1, 2, 5), ((6, 5), 0, 5, 1), ((2, 3, 17), 2, 0, 17)]:
        x = uni(shape)
        sl = [slice(None)] * len(shape)
        sl[axis] = slice(start, start + ln)
        case(d, f"slice_{'x'.join(map(str, shape))}_ax{axis}_{start}_{ln}", "slice", [x], [axis, start, ln],
             [x[tuple(sl)]])
        src_shape = list(shape)
        src_shape[axis] = ln
        src = uni(src_shape, 5.0, 6.0)
        want = x.copy()
        want[tuple(sl)] = src
        case(d, f"slice_assign_{'x'.join(map(str, shape))}_ax{axis}_{start}_{ln}", "slice_assign", [x, src],
             [axis, start], [want])

    # BATCHNORM_STATS: mean and biased variance over N and P, float64.
    for shape in [(2, 3, 5, 7), (4, 6, 1, 1), (1, 5, 19, 23)]:
        x = uni(shape, -2.0, 3.0)
        xd = x.astype(np.float64)
        case(d, f"bn_stats_{'x'.join(map(str, shape))}", "bn_stats", [x], [],
             [xd.mean(axis=(0, 2, 3)).astype(F32), xd.var(axis=(0, 2, 3)).astype(F32)], 1e-5, 1e-6)

    # PEAK_FMA: eight chains a_j = x + 0.125 j, K steps of a_j*b + c, summed in order; float64
    # (|b| < 1: float32 rounding, fused or not, shrinks along the chain).
    for k, b, c, n in [(0, 0.75, 0.25, 5), (3, 0.75, 0.25, 33), (50, -0.5, 0.125, 1000)]:
        x = uni(n)
        a = x.astype(np.float64)[None, :] + 0.125 * np.arange(8)[:, None]
        for _ in range(k):
            a = a * b + c
        s = a[0]
        for j in range(1, 8):
            s = s + a[j]
        case(d, f"peak_fma_k{k}_n{n}", "peak_fma", [x], [k, b, c], [s.astype(F32)], 1e-5, 1e-5)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    gen(out)
    with open(os.path.join(out, "cases.txt.tmp"), "w") as f:
        f.write("\n".join(lines) + "\n")
    os.replace(os.path.join(out, "cases.txt.tmp"), os.path.join(out, "cases.txt"))
    print(f"{len(lines)} cases in {out}")
