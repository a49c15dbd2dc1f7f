"""Forward kernels of the fused SCSA: five thin kernels (two on small maps), x read three times.

Notation (one sample b, one channel c of x (B, C, H, W)):

* ``a_h`` (B, C, H) and ``a_w`` (B, C, W): the SMSA sigmoid gates, float32.
* windows: ``WH = min(window, H)``, ``WW = min(window, W)``, stride = window,
  ``HP = H // WH`` by ``WP = W // WW`` windows, ``N = HP * WP`` tokens.
* ``pooled`` (B, C, N): window means of ``x * a_h * a_w``, float32.
* ``gate`` (B, C): the PCSA channel gate, float32.

Launches, in stream order (each needs everything the one before it wrote):

======  ====================  ====================================================
kernel  one program           work
======  ====================  ====================================================
R       CBR channel planes    reads x -> X_H = mean_W x, X_W = mean_H x
G       one group, one axis   tiny: conv, GroupNorm, sigmoid -> a_h or a_w
P       CBP channels, one     reads x -> pooled tokens and their per-row sums
        window row            (x * a_h * a_w is never stored)
Q       CBQ queries x CBK     tiny: GroupNorm(1), one block of the channel
        keys                  attention -> softmax partials (max, sum, weighted sum)
A       CB channels x BH rows reads x -> combines the partials into the gate,
                              out = x * a_h * a_w * gate
======  ====================  ====================================================

Small maps (H * W up to ``scsa_fast.TUNE["small_map_max"]``, 20 x 20 by default) in batches
large enough to fill the GPU (``TUNE["small_min_programs"]``: batch x groups >= 128) take two
launches instead, because there the five cost their fixed latency (each one waits for the
one before, and G and Q are a few microseconds of tiny work), not bandwidth. Nothing needs
a grid-wide barrier: the SMSA gates of a channel group depend only on that group's
channels (depth-wise conv, GroupNorm per group), and the PCSA needs the whole sample only
through small sums.

======  ====================  ====================================================
kernel  one program           work
======  ====================  ====================================================
S1      one sample, one       R, G and P for the group's Cg channels: reads x ->
        channel group         X_H, X_W; barrier; a_h, a_w; barrier; reads x
                              again (in L1/L2) -> pooled tokens and their row sums
S2      one sample, CBQ       Q for its queries against every key block (partials
        query channels        merged in registers; stored once, as one block's),
                              the gate, then reads x -> out, BH rows at a time
======  ====================  ====================================================

Both leave the workspace as the five launches with one key block do, so the backward is
the same. At inference S2, like A, can store a residual placement's form instead of out
(``RES``, :func:`blend`). Every S2 program recomputes the sample's statistics and key tokens (C x N
floats, tiny at these sizes) rather than waiting for another program.

Memory layout choices (why the streaming kernels look the way they do):

* The pooling and output passes load columns as dense power-of-two runs: W is split
  into a main run of W0 columns and a tail run of W1 (80 = 64 + 16, 40 = 32 + 8,
  20 = 16 + 4), so no lane holds a masked element and rows load as 16-byte vectors. (A
  single tile padded to the next power of two wastes 3/8 of its lanes at W = 80.) The
  reduction pass pads instead: adding the two runs' row sums needs a layout conversion
  through shared memory per row block.
* A program issues all its loads before anything that needs a barrier (a reduction
  across warps, a store that changes layout): barriers stop the compiler from moving
  later loads up, and serialised loads leave too few bytes in flight. Hence the
  unrolled rows of the pooling pass (window sums formed after the row sum, on a
  (CBP, W) vector) and the output pass loading x before it merges the gate. (The
  reduction pass keeps its row loop: every variant that issued more loads at once
  measured slower, see results/perf/NOTES.md.)
* The reduction and pooling passes run one warp per program (scsa_fast.TUNE), so
  their reductions never cross warps and need (almost) no shared memory.
* The pooling pass walks the samples in reverse: the reduction pass has just read the
  last samples, whose slices of x are still in L2; the output pass walks forward and
  finds the first samples in L2 for the same reason.
* The channel attention is split over key blocks (one softmax partial per block, merged
  by the output pass), so no program walks the keys serially. (A token loop with a
  (queries, keys) score tile, by tensor-core dots or float32 FMAs, measured slower.)

Map sizes and strides are run-time arguments, so a new H x W (Ultralytics' rectangular
validation batches, another aspect ratio) launches the kernels compiled for the first one.
What stays a compile-time constant is the layer's configuration (C, window, kernel sizes)
and the tiling, which depends on the sizes only through a few buckets chosen in
``scsa_fast._Plan`` (powers of two of the padded sides, the dense column runs, the row
block), plus two facts the compiler needs for vector loads:

* ``AL``: a power of two (at most 16 bytes of x) that divides H, W and every stride
  except the unit one. Sizes and strides are passed divided by it (``hq``, ``wq``,
  ``sxb`` ...) and multiplied back here, so the compiler can prove that rows start on
  AL-element boundaries (16-byte vector loads on 80- and 40-wide fp16 rows, as when
  the sizes were constants);
* ``XU`` (``OU``, ``DU``): which axis of x (out, dout) has stride 1 (-1: none), so that
  axis's stride is the constant 1 (:func:`strides4`).

The small kernels read float32 rows of length H, W or N (the token count) in the
workspace; they get those sizes the same way, over ``GAL`` (H and W) and ``NAL`` (N), powers
of two up to 4 (16 bytes). Loops whose trip count the tiling fixes at one (``ONE``: the
whole map height in one row block) are written without the loop, as the constant-size
kernels had them folded (a run-time loop of one step is software-pipelined and costs
registers).

Those integer arguments are excluded from Triton's value specialisation
(``do_not_specialize``), so their values never pick a compiled variant. Window sizes
stay constants (divisions by them become multiplies); they equal the layer's window
except on maps smaller than it. All arithmetic is float32 whatever the dtype of x; only
the output is cast back. Reciprocals of sizes (1/W, 1/H, 1/N, 1/(C N)) come from the
host as float32 arguments: the same values the constant-size kernels computed.
"""

from __future__ import annotations

import triton
import triton.language as tl

#: Integer arguments that vary with the map size: never specialised on their values.
SIZE_ARGS = ("hq", "wq", "nq", "HP", "WP", "NP", "NRB", "NA", "NI", "n_rows",
             "sxb", "sxc", "sxh", "sxw", "sob", "soc", "soh", "sow", "sdb", "sdc", "sdh", "sdw")


def size_jit(fn):
    """``triton.jit`` with the size arguments of :data:`SIZE_ARGS` left unspecialised."""
    names = fn.__code__.co_varnames[:fn.__code__.co_argcount]
    return triton.jit(fn, do_not_specialize=[n for n in names if n in SIZE_ARGS])


@triton.jit
def strides4(sb, sc, sh, sw, UNIT: tl.constexpr, AL: tl.constexpr):
    """Element strides (B, C, H, W) from the quotients passed at run time: q * AL, or
    the constant 1 for the axis UNIT (the tensor's unit-stride axis), so the compiler
    sees contiguous runs and AL-aligned row starts."""
    return (1 if UNIT == 0 else sb * AL, 1 if UNIT == 1 else sc * AL,
            1 if UNIT == 2 else sh * AL, 1 if UNIT == 3 else sw * AL)

# ----------------------------------------------------------------------------- R


@triton.jit
def reduce_item(
    x_ptr, xh_ptr, xw_ptr, b, c0, H, W, SXB, SXC, SXH, SXW, inv_h, inv_w,
    C: tl.constexpr, CB: tl.constexpr, BH: tl.constexpr, BW: tl.constexpr, ONE: tl.constexpr,
):
    """X_H[b, c, h] = mean_w x and X_W[b, c, w] = mean_h x for channels c0..c0+CB-1.

    Rows are streamed BH at a time (a BW-wide tile, W rounded up); column sums are
    accumulated element-wise over the (CB, BH, BW) tile and reduced across rows once at
    the end. Launched with one warp per program (TUNE["plane_warps"]): with four, the
    cross-warp reductions and the row sums' layout change went through shared memory
    with bank conflicts, which bounded the pass (H100, (128, 80, 80): 44 -> 30 us per
    launch). Also measured slower: one tile per program with partial column sums,
    prefetching the next tile, and 64 + 16-row chunks loaded together.
    """
    c = c0 + tl.arange(0, CB)
    cm = c < C
    w = tl.arange(0, BW)
    wm = w < W
    rows = tl.arange(0, BH)
    base = x_ptr + b * SXB + c[:, None, None] * SXC + w[None, None, :] * SXW
    col_acc = tl.zeros([CB, BH, BW], dtype=tl.float32)
    for step in range(0, 1 if ONE else tl.cdiv(H, BH)):
        h = step * BH + rows
        hm = h < H
        v = tl.load(base + h[None, :, None] * SXH, mask=cm[:, None, None] & hm[None, :, None] & wm[None, None, :],
                    other=0.0).to(tl.float32)
        tl.store(xh_ptr + (b * C + c)[:, None] * H + h[None, :], tl.sum(v, axis=2) * inv_w,
                 mask=cm[:, None] & hm[None, :])
        col_acc += v
    tl.store(xw_ptr + (b * C + c)[:, None] * W + w[None, :], tl.sum(col_acc, axis=1) * inv_h,
             mask=cm[:, None] & wm[None, :])


# ----------------------------------------------------------------------------- G


@triton.jit
def select4(g, v0, v1, v2, v3):
    """v_g for a run-time group index g in 0..3 (scalars or pointers)."""
    return tl.where(g == 0, v0, tl.where(g == 1, v1, tl.where(g == 2, v2, v3)))


@triton.jit
def gate_recompute(
    src_ptr, b, L, g, w_ptr, bias_ptr, ks, gam_ptr, bet_ptr, eps,
    C: tl.constexpr, Cg: tl.constexpr, CGB: tl.constexpr, LB: tl.constexpr, KMAX: tl.constexpr,
):
    """SMSA gate of one channel group along one axis, all in registers.

    src (B, C, L) float32 is X_H or X_W; channels ``g*Cg .. g*Cg+Cg-1`` go through their
    depth-wise conv (run-time kernel size ks <= KMAX, odd, 'same' padding, weight
    (Cg, 1, ks), bias (Cg,)), the group's GroupNorm (statistics over Cg x L) and a sigmoid.
    The taps are unrolled to KMAX, centred: a group with a smaller kernel gets zero
    weights on the outer taps, so every load issues at once.

    Returns (u_hat, rstd, gamma, a): normalised conv output (CGB, LB) (0 outside the valid
    region), the group's 1/std, gamma (CGB,) and the gate a (CGB, LB).
    """
    cl = tl.arange(0, CGB)
    cm = cl < Cg
    c = g * Cg + cl
    pos0 = tl.arange(0, LB)
    valid = cm[:, None] & (pos0 < L)[None, :]
    row = src_ptr + (b * C + c)[:, None] * L
    u = tl.zeros([CGB, LB], dtype=tl.float32)
    shift = KMAX // 2 - ks // 2  # taps of this group: t in shift .. shift + ks - 1
    for t in tl.static_range(KMAX):
        tap = t - shift
        tap_ok = (tap >= 0) & (tap < ks)
        pos = pos0 + (t - KMAX // 2)
        xv = tl.load(row + pos[None, :], mask=cm[:, None] & ((pos >= 0) & (pos < L))[None, :] & tap_ok, other=0.0)
        wt = tl.load(w_ptr + cl * ks + tap, mask=cm & tap_ok, other=0.0).to(tl.float32)
        u += wt[:, None] * xv
    u += tl.load(bias_ptr + cl, mask=cm, other=0.0).to(tl.float32)[:, None]
    count = Cg * L
    mean = tl.sum(tl.sum(tl.where(valid, u, 0.0), axis=1), axis=0) / count
    d = tl.where(valid, u - mean, 0.0)
    var = tl.sum(tl.sum(d * d, axis=1), axis=0) / count
    rstd = 1.0 / tl.sqrt(var + eps)
    u_hat = d * rstd
    gam = tl.load(gam_ptr + c, mask=cm, other=0.0).to(tl.float32)
    bet = tl.load(bet_ptr + c, mask=cm, other=0.0).to(tl.float32)
    a = tl.sigmoid(u_hat * gam[:, None] + bet[:, None])
    return u_hat, rstd, gam, a


@triton.jit
def gate_item(
    xh_ptr, xw_ptr, ah_ptr, aw_ptr, b, g, axis,
    w0, w1, w2, w3, bias0, bias1, bias2, bias3, k0, k1, k2, k3,
    gam_h_ptr, bet_h_ptr, gam_w_ptr, bet_w_ptr, eps_h, eps_w, H, W,
    C: tl.constexpr, Cg: tl.constexpr, CGB: tl.constexpr, LB: tl.constexpr, KMAX: tl.constexpr,
):
    """a_h (axis 0) or a_w (axis 1) of channel group g of sample b.

    Up to four groups with their own kernel sizes; the group's weight pointers and size
    are picked at run time, so one compiled body serves every group.
    """
    h_axis = axis == 0
    L = tl.where(h_axis, H, W)
    _, _, _, a = gate_recompute(
        tl.where(h_axis, xh_ptr, xw_ptr), b, L, g,
        select4(g, w0, w1, w2, w3), select4(g, bias0, bias1, bias2, bias3), select4(g, k0, k1, k2, k3),
        tl.where(h_axis, gam_h_ptr, gam_w_ptr), tl.where(h_axis, bet_h_ptr, bet_w_ptr), tl.where(h_axis, eps_h, eps_w),
        C, Cg, CGB, LB, KMAX,
    )
    cl = tl.arange(0, CGB)
    pos = tl.arange(0, LB)
    dst = tl.where(h_axis, ah_ptr, aw_ptr)
    tl.store(dst + (b * C + g * Cg + cl)[:, None] * L + pos[None, :], a,
             mask=(cl < Cg)[:, None] & (pos < L)[None, :])


# ----------------------------------------------------------------------------- P


@triton.jit
def pool_item(
    x_ptr, ah_ptr, aw_ptr, pooled_ptr, pstat_ptr, b, c0, i, H, W, SXB, SXC, SXH, SXW, HP, WP,
    C: tl.constexpr, WH: tl.constexpr, WW: tl.constexpr, CB: tl.constexpr, P0: tl.constexpr, P1: tl.constexpr,
):
    """Window row i of channels c0..c0+CB-1: pooled[b, c, i*WP + j] = mean over window
    (i, j) of x * a_h * a_w, and the row's token sums and sums of squares
    (pstat (B, C, HP, 2), for the GroupNorm(1) statistics).

    The WH rows of the window row are loaded as dense (CB, P0) + (CB, P1) runs covering
    the WP * WW pooled columns, all at once (unrolled), and summed with their a_h
    weights; the result times a_w is then summed window by window (a masked sum per
    window: WP small reductions over CB x (P0 + P1) values instead of a strided read).
    Columns past the last full window take no part (floor rounding, as nn.AvgPool2d).
    """
    c = c0 + tl.arange(0, CB)
    cm = c < C
    rowc = b * C + c
    col0 = tl.arange(0, P0)
    base = x_ptr + b * SXB + c[:, None] * SXC
    acc0 = tl.zeros([CB, P0], dtype=tl.float32)
    if P1 > 0:
        col1 = P0 + tl.arange(0, P1)
        acc1 = tl.zeros([CB, P1], dtype=tl.float32)
    for r in tl.static_range(WH):
        h = i * WH + r
        ah_r = tl.load(ah_ptr + rowc * H + h, mask=cm, other=0.0)
        v0 = tl.load(base + h * SXH + col0[None, :] * SXW, mask=cm[:, None], other=0.0).to(tl.float32)
        acc0 += v0 * ah_r[:, None]
        if P1 > 0:
            v1 = tl.load(base + h * SXH + col1[None, :] * SXW, mask=cm[:, None] & (col1 < W)[None, :],
                         other=0.0).to(tl.float32)
            acc1 += v1 * ah_r[:, None]
    acc0 *= tl.load(aw_ptr + rowc[:, None] * W + col0[None, :], mask=cm[:, None], other=0.0)
    win0 = col0 // WW  # window index of each column (>= WP past the pooled region)
    if P1 > 0:
        win1 = col1 // WW
        acc1 *= tl.load(aw_ptr + rowc[:, None] * W + col1[None, :], mask=cm[:, None] & (col1 < W)[None, :], other=0.0)
    s1 = tl.zeros([CB], dtype=tl.float32)
    s2 = tl.zeros([CB], dtype=tl.float32)
    # Unrolled over every window the padded runs can hold (WP <= (P0 + P1) // WW, a
    # constant), so each window's sums are chosen at compile time; windows past WP (the
    # run's padding) are computed and dropped.
    for j in tl.static_range((P0 + P1) // WW):
        tok = tl.zeros([CB], dtype=tl.float32)
        if j * WW < P0:  # the window has columns in the main run
            tok += tl.sum(tl.where((win0 == j)[None, :], acc0, 0.0), axis=1)
        if (j + 1) * WW > P0:  # ... and in the tail run (P1 > 0 then)
            tok += tl.sum(tl.where((win1 == j)[None, :], acc1, 0.0), axis=1)
        tok = tl.where(j < WP, tok * (1.0 / (WH * WW)), 0.0)
        tl.store(pooled_ptr + rowc * (HP * WP) + i * WP + j, tok, mask=cm & (j < WP))
        s1 += tok
        s2 += tok * tok
    tl.store(pstat_ptr + (rowc * HP + i) * 2, s1, mask=cm)
    tl.store(pstat_ptr + (rowc * HP + i) * 2 + 1, s2, mask=cm)


# ----------------------------------------------------------------------------- Q


@triton.jit
def sample_stats(pstat_ptr, b, eps, N, HP, inv_n, inv_cn, C: tl.constexpr, CFB: tl.constexpr):
    """Mean and 1/std of the tokens of sample b (GroupNorm(1) over C x N) from the
    per-(channel, window row) sums, combined per channel (Chan et al.) to limit
    cancellation."""
    cf = tl.arange(0, CFB)
    cm = cf < C
    s1 = tl.zeros([CFB], dtype=tl.float32)
    s2 = tl.zeros([CFB], dtype=tl.float32)
    for i in range(HP):
        s1 += tl.load(pstat_ptr + ((b * C + cf) * HP + i) * 2, mask=cm, other=0.0)
        s2 += tl.load(pstat_ptr + ((b * C + cf) * HP + i) * 2 + 1, mask=cm, other=0.0)
    mean_c = s1 * inv_n
    m2_c = tl.maximum(s2 - s1 * mean_c, 0.0)
    mean = tl.sum(s1, axis=0) * inv_cn
    d = tl.where(cm, mean_c - mean, 0.0)
    var = (tl.sum(m2_c, axis=0) + N * tl.sum(d * d, axis=0)) * inv_cn
    return mean, 1.0 / tl.sqrt(var + eps)


@triton.jit
def pcsa_tokens(pooled_ptr, gam_ptr, bet_ptr, b, c0, mean, rstd, N,
                C: tl.constexpr, CB: tl.constexpr, NB: tl.constexpr):
    """Normalised tokens y = GN(pooled) of channels c0..c0+CB-1: (c, c_mask, y, y_hat),
    y and y_hat (CB, NB) exactly 0 outside the valid (channel, token) region."""
    c = c0 + tl.arange(0, CB)
    cm = c < C
    n = tl.arange(0, NB)
    m = cm[:, None] & (n < N)[None, :]
    p = tl.load(pooled_ptr + (b * C + c)[:, None] * N + n[None, :], mask=m, other=0.0)
    y_hat = tl.where(m, (p - mean) * rstd, 0.0)
    gam = tl.load(gam_ptr + c, mask=cm, other=0.0).to(tl.float32)
    bet = tl.load(bet_ptr + c, mask=cm, other=0.0).to(tl.float32)
    y = tl.where(m, y_hat * gam[:, None] + bet[:, None], 0.0)
    return c, cm, y, y_hat


@triton.jit
def pcsa_item(
    pooled_ptr, pstat_ptr, gam_ptr, bet_ptr, wq_ptr, wk_ptr, wv_ptr,
    qm_ptr, ql_ptr, qa_ptr, stats_ptr, eps, alpha, b, qb, kb, N, HP, inv_n, inv_cn,
    C: tl.constexpr, CBQ: tl.constexpr, CBK: tl.constexpr, NB: tl.constexpr,
    CFB: tl.constexpr, NKB: tl.constexpr, PREC: tl.constexpr,
):
    """Softmax partials of query channels qb*CBQ.. against key channels kb*CBK.. of sample b.

    S[c, d] = alpha * wq_c * wk_d * <y_c, y_d>; for this key block: m_c = max_d S,
    l_c = sum_d exp(S - m_c), a_c = sum_d exp(S - m_c) * wv_d * mean_n y_d (the mean
    over tokens commutes with attn @ V). The output pass merges the NKB blocks into
    o_c = sum a e^(m - M) / sum l e^(m - M) and gate = sigmoid(o). Partials are stored
    at [(b * C + c) * NKB + kb]; the (qb, kb) = (0, 0) program also saves the GroupNorm
    statistics for the backward.
    """
    mean, rstd = sample_stats(pstat_ptr, b, eps, N, HP, inv_n, inv_cn, C, CFB)
    if (qb == 0) & (kb == 0):
        tl.store(stats_ptr + 2 * b, mean)
        tl.store(stats_ptr + 2 * b + 1, rstd)
    c, cm, y_q, _ = pcsa_tokens(pooled_ptr, gam_ptr, bet_ptr, b, qb * CBQ, mean, rstd, N, C, CBQ, NB)
    q = y_q * (tl.load(wq_ptr + c, mask=cm, other=0.0).to(tl.float32) * alpha)[:, None]
    d, dm, y_k, _ = pcsa_tokens(pooled_ptr, gam_ptr, bet_ptr, b, kb * CBK, mean, rstd, N, C, CBK, NB)
    k = y_k * tl.load(wk_ptr + d, mask=dm, other=0.0).to(tl.float32)[:, None]
    vbar = tl.load(wv_ptr + d, mask=dm, other=0.0).to(tl.float32) * (tl.sum(y_k, axis=1) * inv_n)
    s = tl.dot(q, tl.trans(k), input_precision=PREC)
    s = tl.where(dm[None, :], s, float("-inf"))
    m_i = tl.max(s, axis=1)
    p = tl.exp(s - m_i[:, None])
    off = (b * C + c) * NKB + kb
    tl.store(qm_ptr + off, m_i, mask=cm)
    tl.store(ql_ptr + off, tl.sum(p, axis=1), mask=cm)
    tl.store(qa_ptr + off, tl.sum(p * vbar[None, :], axis=1), mask=cm)


# ----------------------------------------------------------------------------- A


@triton.jit
def merge_gate(qm_ptr, ql_ptr, qa_ptr, rowc, cm, NKB: tl.constexpr, NKBP: tl.constexpr):
    """Merge the NKB softmax partials of channels rowc (CB,): returns (o, lse, gate)."""
    kk = tl.arange(0, NKBP)
    m = cm[:, None] & (kk < NKB)[None, :]
    off = rowc[:, None] * NKB + kk[None, :]
    pm = tl.load(qm_ptr + off, mask=m, other=float("-inf"))
    big = tl.max(pm, axis=1)
    big = tl.where(cm, big, 0.0)  # masked channels: no -inf - -inf
    scale = tl.where(m, tl.exp(pm - big[:, None]), 0.0)
    lsum = tl.sum(tl.load(ql_ptr + off, mask=m, other=0.0) * scale, axis=1)
    asum = tl.sum(tl.load(qa_ptr + off, mask=m, other=0.0) * scale, axis=1)
    lsum = tl.where(cm, lsum, 1.0)
    o = asum / lsum
    return o, big + tl.log(lsum), tl.sigmoid(o)


@triton.jit
def blend(v, s, gv, RES: tl.constexpr):
    """The stored value from x (v) and its SCSA scale s = a_h * a_w * gate (float32 tiles):
    RES 0: SCSA(x) = x * s; 1: x + g * SCSA(x) = x * (1 + g s) (ResidualAttention); 2: x + g
    * (SCSA(x) - x) = x * ((1 - g) + g s) (the gated attended bottleneck). g = 0 gives x
    times exactly 1, so an identity start stays exact."""
    if RES == 1:
        return v * (1.0 + gv[:, None, None] * s)
    elif RES == 2:
        return v * ((1.0 - gv[:, None, None]) + gv[:, None, None] * s)
    return v * s


@triton.jit
def apply_item(
    x_ptr, ah_ptr, aw_ptr, qm_ptr, ql_ptr, qa_ptr, gate_ptr, o_ptr, lse_ptr, out_ptr, g_ptr, b, c0, rb, H, W,
    SXB, SXC, SXH, SXW, SOB, SOC, SOH, SOW,
    C: tl.constexpr, CB: tl.constexpr, BH: tl.constexpr, W0: tl.constexpr, W1: tl.constexpr, NKB: tl.constexpr,
    NKBP: tl.constexpr, RES: tl.constexpr,
):
    """out = x * a_h * a_w * gate for rows rb*BH .. of channels c0..c0+CB-1, in float32,
    stored in out's dtype, or with RES the residual forms of :func:`blend` (g: (C,), read in
    out's dtype as the unfused ``x + g.to(x.dtype) * ...`` reads it). One (CB, BH, W0) tile
    and its (CB, BH, W1) tail per program. The gate is merged from the channel-attention
    partials here; the row block 0 program stores o, lse and the gate for the backward."""
    c = c0 + tl.arange(0, CB)
    cm = c < C
    h = rb * BH + tl.arange(0, BH)
    hm = h < H
    rowc = b * C + c
    # x first: the loads after a barrier (the partial merge reduces across threads) would
    # wait for it, so issue them before.
    m = cm[:, None, None] & hm[None, :, None]
    xb = x_ptr + b * SXB + c[:, None, None] * SXC + h[None, :, None] * SXH
    ob = out_ptr + b * SOB + c[:, None, None] * SOC + h[None, :, None] * SOH
    w0 = tl.arange(0, W0)
    v0 = tl.load(xb + w0[None, None, :] * SXW, mask=m, other=0.0).to(tl.float32)
    if W1 > 0:
        w1 = W0 + tl.arange(0, W1)
        wm1 = w1 < W
        m1 = m & wm1[None, None, :]
        v1 = tl.load(xb + w1[None, None, :] * SXW, mask=m1, other=0.0).to(tl.float32)
        aw1 = tl.load(aw_ptr + rowc[:, None] * W + w1[None, :], mask=cm[:, None] & wm1[None, :], other=0.0)
    aw0 = tl.load(aw_ptr + rowc[:, None] * W + w0[None, :], mask=cm[:, None], other=0.0)
    ah_t = tl.load(ah_ptr + rowc[:, None] * H + h[None, :], mask=cm[:, None] & hm[None, :], other=0.0)
    o, lse, gate = merge_gate(qm_ptr, ql_ptr, qa_ptr, rowc, cm, NKB, NKBP)
    if rb == 0:
        tl.store(o_ptr + rowc, o, mask=cm)
        tl.store(lse_ptr + rowc, lse, mask=cm)
        tl.store(gate_ptr + rowc, gate, mask=cm)
    ah_g = ah_t * gate[:, None]
    gv = gate  # unused unless RES
    if RES != 0:
        gv = tl.load(g_ptr + c, mask=cm, other=0.0).to(out_ptr.dtype.element_ty).to(tl.float32)
    tl.store(ob + w0[None, None, :] * SOW,
             blend(v0, ah_g[:, :, None] * aw0[:, None, :], gv, RES).to(out_ptr.dtype.element_ty), mask=m)
    if W1 > 0:
        tl.store(ob + w1[None, None, :] * SOW,
                 blend(v1, ah_g[:, :, None] * aw1[:, None, :], gv, RES).to(out_ptr.dtype.element_ty), mask=m1)


# ----------------------------------------------------------------------------- kernels
# One thin kernel per stage: each takes only its own arguments, because Triton's launcher
# costs host time per argument and these launches are host-bound at small maps. Sizes and
# strides come as run-time integers (see the module docstring): hq, wq are H / AL, W / AL;
# sxb .. sxw the strides of x over AL (the unit-stride axis XU's entry is ignored).


@size_jit
def fwd_reduce_kernel(
    x_ptr, xh_ptr, xw_ptr, hq, wq, sxb, sxc, sxh, sxw, inv_h, inv_w,
    C: tl.constexpr, XU: tl.constexpr, AL: tl.constexpr,
    CBR: tl.constexpr, BHR: tl.constexpr, BW: tl.constexpr, NR: tl.constexpr, ONE: tl.constexpr,
):
    """R; grid (B * NR,), NR = C / CBR."""
    pid = tl.program_id(0)
    SXB, SXC, SXH, SXW = strides4(sxb, sxc, sxh, sxw, XU, AL)
    reduce_item(x_ptr, xh_ptr, xw_ptr, pid // NR, (pid % NR) * CBR, hq * AL, wq * AL, SXB, SXC, SXH, SXW,
                inv_h, inv_w, C, CBR, BHR, BW, ONE)


@size_jit
def fwd_gate_kernel(
    xh_ptr, xw_ptr, ah_ptr, aw_ptr,
    w0, w1, w2, w3, bias0, bias1, bias2, bias3, k0, k1, k2, k3,
    gam_h_ptr, bet_h_ptr, gam_w_ptr, bet_w_ptr, eps_h, eps_w, hq, wq,
    C: tl.constexpr, Cg: tl.constexpr, NG: tl.constexpr, CGB: tl.constexpr, LB: tl.constexpr, KMAX: tl.constexpr,
    GAL: tl.constexpr,
):
    """G; grid (B * NG * 2,), program (b * NG + g) * 2 + axis."""
    pid = tl.program_id(0)
    gate_item(xh_ptr, xw_ptr, ah_ptr, aw_ptr, pid // (2 * NG), (pid % (2 * NG)) // 2, pid % 2,
              w0, w1, w2, w3, bias0, bias1, bias2, bias3, k0, k1, k2, k3,
              gam_h_ptr, bet_h_ptr, gam_w_ptr, bet_w_ptr, eps_h, eps_w, hq * GAL, wq * GAL, C, Cg, CGB, LB, KMAX)


@size_jit
def fwd_pool_kernel(
    x_ptr, ah_ptr, aw_ptr, pooled_ptr, pstat_ptr, hq, wq, sxb, sxc, sxh, sxw, HP, WP, NP,
    C: tl.constexpr, XU: tl.constexpr, AL: tl.constexpr, WH: tl.constexpr, WW: tl.constexpr,
    CBP: tl.constexpr, P0: tl.constexpr, P1: tl.constexpr, REV: tl.constexpr,
):
    """P; grid (B * NP,), NP = (C / CBP) * HP; with REV the programs take the work in
    reverse order (the last samples first: R has just left them in L2)."""
    pid = tl.program_id(0)
    if REV:
        pid = tl.num_programs(0) - 1 - pid
    item = pid % NP
    SXB, SXC, SXH, SXW = strides4(sxb, sxc, sxh, sxw, XU, AL)
    pool_item(x_ptr, ah_ptr, aw_ptr, pooled_ptr, pstat_ptr, pid // NP, (item // HP) * CBP, item % HP,
              hq * AL, wq * AL, SXB, SXC, SXH, SXW, HP, WP, C, WH, WW, CBP, P0, P1)


@size_jit
def fwd_pcsa_kernel(
    pooled_ptr, pstat_ptr, gam_ptr, bet_ptr, wq_ptr, wk_ptr, wv_ptr, qm_ptr, ql_ptr, qa_ptr, stats_ptr, eps, alpha,
    nq, HP, inv_n, inv_cn,
    C: tl.constexpr, CBQ: tl.constexpr, CBK: tl.constexpr, NB: tl.constexpr,
    CFB: tl.constexpr, NQ: tl.constexpr, NKB: tl.constexpr, PREC: tl.constexpr, NAL: tl.constexpr,
):
    """Q; grid (B * NQ * NKB,), NQ = C / CBQ query blocks, NKB = C / CBK key blocks."""
    pid = tl.program_id(0)
    per_sample = NQ * NKB
    item = pid % per_sample
    pcsa_item(pooled_ptr, pstat_ptr, gam_ptr, bet_ptr, wq_ptr, wk_ptr, wv_ptr, qm_ptr, ql_ptr, qa_ptr, stats_ptr,
              eps, alpha, pid // per_sample, item // NKB, item % NKB, nq * NAL, HP, inv_n, inv_cn,
              C, CBQ, CBK, NB, CFB, NKB, PREC)


@size_jit
def fwd_apply_kernel(
    x_ptr, ah_ptr, aw_ptr, qm_ptr, ql_ptr, qa_ptr, gate_ptr, o_ptr, lse_ptr, out_ptr, g_ptr,
    hq, wq, sxb, sxc, sxh, sxw, sob, soc, soh, sow, NRB, NA,
    C: tl.constexpr, XU: tl.constexpr, OU: tl.constexpr, AL: tl.constexpr,
    CB: tl.constexpr, BH: tl.constexpr, W0: tl.constexpr, W1: tl.constexpr, NKB: tl.constexpr, NKBP: tl.constexpr,
    RES: tl.constexpr,
):
    """A; grid (B * NA,), NA = (C / CB) * NRB row blocks. RES (0, 1, 2): the stored form
    (:func:`blend`); g_ptr is read only when RES is not 0."""
    pid = tl.program_id(0)
    item = pid % NA
    SXB, SXC, SXH, SXW = strides4(sxb, sxc, sxh, sxw, XU, AL)
    SOB, SOC, SOH, SOW = strides4(sob, soc, soh, sow, OU, AL)
    apply_item(x_ptr, ah_ptr, aw_ptr, qm_ptr, ql_ptr, qa_ptr, gate_ptr, o_ptr, lse_ptr, out_ptr, g_ptr, pid // NA,
               (item // NRB) * CB, item % NRB, hq * AL, wq * AL, SXB, SXC, SXH, SXW, SOB, SOC, SOH, SOW,
               C, CB, BH, W0, W1, NKB, NKBP, RES)


# ----------------------------------------------------------------------------- small maps
# Two launches instead of five (see the module docstring): at 20 x 20 and below the five
# dependent launches cost more in fixed latency than the map costs in bandwidth.


@triton.jit
def pcsa_queries(pooled_ptr, gam_ptr, bet_ptr, wq_ptr, b, c0, mean, rstd, alpha, N,
                 C: tl.constexpr, CBQ: tl.constexpr, NB: tl.constexpr):
    """Scaled queries alpha * wq_c * y_c of channels c0..c0+CBQ-1: (c, c_mask, q (CBQ, NB))."""
    c, cm, y_q, _ = pcsa_tokens(pooled_ptr, gam_ptr, bet_ptr, b, c0, mean, rstd, N, C, CBQ, NB)
    return c, cm, y_q * (tl.load(wq_ptr + c, mask=cm, other=0.0).to(tl.float32) * alpha)[:, None]


@triton.jit
def attn_block(q, pooled_ptr, gam_ptr, bet_ptr, wk_ptr, wv_ptr, b, d0, mean, rstd, N, inv_n,
               C: tl.constexpr, CBK: tl.constexpr, NB: tl.constexpr, PREC: tl.constexpr):
    """Softmax partials of queries q (CBQ, NB) against key channels d0..d0+CBK-1 of
    sample b: (m, l, a), each (CBQ,) (as :func:`pcsa_item` computes them)."""
    d, dm, y_k, _ = pcsa_tokens(pooled_ptr, gam_ptr, bet_ptr, b, d0, mean, rstd, N, C, CBK, NB)
    k = y_k * tl.load(wk_ptr + d, mask=dm, other=0.0).to(tl.float32)[:, None]
    vbar = tl.load(wv_ptr + d, mask=dm, other=0.0).to(tl.float32) * (tl.sum(y_k, axis=1) * inv_n)
    s = tl.dot(q, tl.trans(k), input_precision=PREC)
    s = tl.where(dm[None, :], s, float("-inf"))
    m_i = tl.max(s, axis=1)
    p = tl.exp(s - m_i[:, None])
    return m_i, tl.sum(p, axis=1), tl.sum(p * vbar[None, :], axis=1)


@triton.jit
def gated_rows(
    x_ptr, ah_ptr, aw_ptr, out_ptr, gate, gv, b, c, cm, rowc, h0, H, W, SXB, SXC, SXH, SXW, SOB, SOC, SOH, SOW,
    BH: tl.constexpr, W0: tl.constexpr, W1: tl.constexpr, RES: tl.constexpr,
):
    """out = x * a_h * a_w * gate for rows h0..h0+BH-1 of channels c (CB,) with their
    gates (CB,) known, or with RES the residual forms of :func:`blend` (gv: the residual
    gate g of channels c, (CB,) float32): the output pass of :func:`apply_item` without the
    partial merge."""
    h = h0 + tl.arange(0, BH)
    hm = h < H
    m = cm[:, None, None] & hm[None, :, None]
    xb = x_ptr + b * SXB + c[:, None, None] * SXC + h[None, :, None] * SXH
    ob = out_ptr + b * SOB + c[:, None, None] * SOC + h[None, :, None] * SOH
    w0 = tl.arange(0, W0)
    v0 = tl.load(xb + w0[None, None, :] * SXW, mask=m, other=0.0).to(tl.float32)
    if W1 > 0:
        w1 = W0 + tl.arange(0, W1)
        wm1 = w1 < W
        m1 = m & wm1[None, None, :]
        v1 = tl.load(xb + w1[None, None, :] * SXW, mask=m1, other=0.0).to(tl.float32)
        aw1 = tl.load(aw_ptr + rowc[:, None] * W + w1[None, :], mask=cm[:, None] & wm1[None, :], other=0.0)
    aw0 = tl.load(aw_ptr + rowc[:, None] * W + w0[None, :], mask=cm[:, None], other=0.0)
    ah_g = tl.load(ah_ptr + rowc[:, None] * H + h[None, :], mask=cm[:, None] & hm[None, :], other=0.0) * gate[:, None]
    tl.store(ob + w0[None, None, :] * SOW,
             blend(v0, ah_g[:, :, None] * aw0[:, None, :], gv, RES).to(out_ptr.dtype.element_ty), mask=m)
    if W1 > 0:
        tl.store(ob + w1[None, None, :] * SOW,
                 blend(v1, ah_g[:, :, None] * aw1[:, None, :], gv, RES).to(out_ptr.dtype.element_ty), mask=m1)


@size_jit
def fwd_small_gates_kernel(
    x_ptr, xh_ptr, xw_ptr, ah_ptr, aw_ptr, pooled_ptr, pstat_ptr,
    w0, w1, w2, w3, bias0, bias1, bias2, bias3, k0, k1, k2, k3,
    gam_h_ptr, bet_h_ptr, gam_w_ptr, bet_w_ptr, eps_h, eps_w,
    hq, wq, sxb, sxc, sxh, sxw, HP, WP, inv_h, inv_w,
    C: tl.constexpr, Cg: tl.constexpr, NG: tl.constexpr, XU: tl.constexpr, AL: tl.constexpr,
    CBR: tl.constexpr, BHR: tl.constexpr, BW: tl.constexpr, ONE: tl.constexpr,
    CGB: tl.constexpr, LB: tl.constexpr, KMAX: tl.constexpr,
    WH: tl.constexpr, WW: tl.constexpr, CBP: tl.constexpr, P0: tl.constexpr, P1: tl.constexpr,
):
    """S1 (small maps: R, G and P of one channel group); grid (B * NG,), program b * NG + g.

    The SMSA gates of a group need only its own Cg channels (the conv is depth-wise, the
    GroupNorm per group), so one program runs R for them (CBR channels at a time), both
    gates, and P (CBP channels x one window row at a time, x read again: still in L1/L2).
    Its own workspace rows are re-read across the program's threads after a barrier.
    CBR and CBP divide Cg, so no program touches another group's channels."""
    pid = tl.program_id(0)
    b = pid // NG
    g = pid % NG
    H = hq * AL
    W = wq * AL
    SXB, SXC, SXH, SXW = strides4(sxb, sxc, sxh, sxw, XU, AL)
    cg0 = g * Cg
    for cr in range(0, Cg, CBR):
        reduce_item(x_ptr, xh_ptr, xw_ptr, b, cg0 + cr, H, W, SXB, SXC, SXH, SXW, inv_h, inv_w, C, CBR, BHR, BW, ONE)
    tl.debug_barrier()  # X_H, X_W rows of the group written by all threads
    wt = select4(g, w0, w1, w2, w3)
    bias = select4(g, bias0, bias1, bias2, bias3)
    ks = select4(g, k0, k1, k2, k3)
    _, _, _, a_h = gate_recompute(xh_ptr, b, H, g, wt, bias, ks, gam_h_ptr, bet_h_ptr, eps_h, C, Cg, CGB, LB, KMAX)
    _, _, _, a_w = gate_recompute(xw_ptr, b, W, g, wt, bias, ks, gam_w_ptr, bet_w_ptr, eps_w, C, Cg, CGB, LB, KMAX)
    cl = tl.arange(0, CGB)
    pos = tl.arange(0, LB)
    rows = (b * C + cg0 + cl)[:, None]
    tl.store(ah_ptr + rows * H + pos[None, :], a_h, mask=(cl < Cg)[:, None] & (pos < H)[None, :])
    tl.store(aw_ptr + rows * W + pos[None, :], a_w, mask=(cl < Cg)[:, None] & (pos < W)[None, :])
    tl.debug_barrier()  # a_h, a_w of the group written by all threads
    for cp in range(0, Cg, CBP):
        for i in range(HP):
            pool_item(x_ptr, ah_ptr, aw_ptr, pooled_ptr, pstat_ptr, b, cg0 + cp, i, H, W, SXB, SXC, SXH, SXW,
                      HP, WP, C, WH, WW, CBP, P0, P1)


@size_jit
def fwd_small_out_kernel(
    x_ptr, ah_ptr, aw_ptr, pooled_ptr, pstat_ptr, gam_ptr, bet_ptr, wq_ptr, wk_ptr, wv_ptr,
    qm_ptr, ql_ptr, qa_ptr, gate_ptr, o_ptr, lse_ptr, stats_ptr, out_ptr, g_ptr, eps, alpha,
    hq, wq, sxb, sxc, sxh, sxw, sob, soc, soh, sow, nq, HP, NRB, inv_n, inv_cn,
    C: tl.constexpr, XU: tl.constexpr, OU: tl.constexpr, AL: tl.constexpr, NAL: tl.constexpr,
    CBQ: tl.constexpr, CBK: tl.constexpr, NB: tl.constexpr, CFB: tl.constexpr, NQ: tl.constexpr,
    NKB: tl.constexpr, PREC: tl.constexpr, BH: tl.constexpr, W0: tl.constexpr, W1: tl.constexpr,
    ONE: tl.constexpr, RES: tl.constexpr,
):
    """S2 (small maps: Q and A of CBQ channels); grid (B * NQ,), program b * NQ + query block.

    Every program derives the sample's GroupNorm(1) statistics from the per-row sums S1
    left, walks all NKB key blocks itself (merging the softmax partials on the fly instead
    of storing them), stores o, lse and the gate for the backward (and the statistics,
    query block 0), then writes out for its channels, BH rows at a time. The merged
    partials are stored too, as one key block's (the layout of Q with NKB = 1): three
    floats per channel, and the workspace holds no unwritten floats that Q would write.
    RES (0, 1, 2): the stored form (:func:`blend`), as A's; g_ptr is read only when RES is
    not 0."""
    pid = tl.program_id(0)
    b = pid // NQ
    qb = pid % NQ
    H = hq * AL
    W = wq * AL
    N = nq * NAL
    SXB, SXC, SXH, SXW = strides4(sxb, sxc, sxh, sxw, XU, AL)
    SOB, SOC, SOH, SOW = strides4(sob, soc, soh, sow, OU, AL)
    mean, rstd = sample_stats(pstat_ptr, b, eps, N, HP, inv_n, inv_cn, C, CFB)
    if qb == 0:
        tl.store(stats_ptr + 2 * b, mean)
        tl.store(stats_ptr + 2 * b + 1, rstd)
    c, cm, q = pcsa_queries(pooled_ptr, gam_ptr, bet_ptr, wq_ptr, b, qb * CBQ, mean, rstd, alpha, N, C, CBQ, NB)
    m_run = tl.full([CBQ], float("-inf"), tl.float32)
    l_run = tl.zeros([CBQ], dtype=tl.float32)
    a_run = tl.zeros([CBQ], dtype=tl.float32)
    for kb in range(NKB):
        m_i, l_i, a_i = attn_block(q, pooled_ptr, gam_ptr, bet_ptr, wk_ptr, wv_ptr, b, kb * CBK, mean, rstd, N,
                                   inv_n, C, CBK, NB, PREC)
        m_new = tl.maximum(m_run, m_i)
        s_old = tl.exp(m_run - m_new)  # 0 on the first block (m_run = -inf, m_i finite)
        s_new = tl.exp(m_i - m_new)
        l_run = l_run * s_old + l_i * s_new
        a_run = a_run * s_old + a_i * s_new
        m_run = m_new
    o = a_run / l_run
    gate = tl.sigmoid(o)
    rowc = b * C + c
    tl.store(qm_ptr + rowc, m_run, mask=cm)
    tl.store(ql_ptr + rowc, l_run, mask=cm)
    tl.store(qa_ptr + rowc, a_run, mask=cm)
    tl.store(o_ptr + rowc, o, mask=cm)
    tl.store(lse_ptr + rowc, m_run + tl.log(l_run), mask=cm)
    tl.store(gate_ptr + rowc, gate, mask=cm)
    gv = gate  # unused unless RES
    if RES != 0:  # g in out's dtype, as the unfused x + g.to(x.dtype) * ... reads it
        gv = tl.load(g_ptr + c, mask=cm, other=0.0).to(out_ptr.dtype.element_ty).to(tl.float32)
    for rb in range(0, 1 if ONE else NRB):
        gated_rows(x_ptr, ah_ptr, aw_ptr, out_ptr, gate, gv, b, c, cm, rowc, rb * BH, H, W,
                   SXB, SXC, SXH, SXW, SOB, SOC, SOH, SOW, BH, W0, W1, RES)
