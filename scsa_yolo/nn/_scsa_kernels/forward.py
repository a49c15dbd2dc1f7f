"""Forward kernels of the fused SCSA: one kernel, five kinds of work item.

Notation (one sample b, one channel c of x (B, C, H, W)):

* ``a_h`` (B, C, H) and ``a_w`` (B, C, W): the SMSA sigmoid gates, float32.
* windows: ``WH = min(window, H)``, ``WW = min(window, W)``, stride = window,
  ``HP = H // WH`` by ``WP = W // WW`` windows, ``N = HP * WP`` tokens.
* ``pooled`` (B, C, N): window means of ``x * a_h * a_w``, float32.
* ``gate`` (B, C): the PCSA channel gate, float32.

Work items, per sample b, in dependency order (each kind needs every item of the kind
before it, of the same sample, to be done):

====  =======================  ==================================================
kind  one item                 work
====  =======================  ==================================================
R     CB channels              reads x once -> X_H = mean_W x, X_W = mean_H x
G     one group, one axis      tiny: conv, GroupNorm, sigmoid -> a_h or a_w
P     CBP channels             reads x once -> pooled tokens and per-channel token
                               sums (x * a_h * a_w is never stored)
Q     CBQ query channels       tiny: GroupNorm(1), channel attention -> gate
A     CB channels              reads x once -> out = x * a_h * a_w * gate
====  =======================  ==================================================

Two schedules run the same item bodies:

* split (the default): one thin kernel per kind (:func:`fwd_reduce_kernel` ...
  :func:`fwd_apply_kernel`), grid (B * items,); stream order provides the dependencies.
  Five launches, and x comes from HBM three times.
* fused (:func:`fwd_fused_kernel`, measured slower, see results/perf/NOTES.md): one
  launch for everything. Every program first takes a ticket
  from a global counter, so tickets go out in the order programs start. Ticket t is a
  position in a fixed interleaving: slot s holds the A items of sample s - LA, the Q
  items of s - LQ, the P items of s - LP, the G items of s - LG and the R items of s.
  An item spins on a per-(kind, sample) done counter until the items it needs are
  finished, then works and bumps its own counter. Items only ever wait for smaller
  tickets, which running programs hold, so the schedule cannot deadlock however many
  programs the GPU keeps resident. The point is the cache: the second and third
  reads of a sample's slice of x come a few samples after the first, while that slice
  is still in L2, so x leaves HBM about once instead of three times.

Shapes and strides are compile-time constants (one compiled variant per layer shape):
divisions by window sizes become multiplies and the compiler can prove row alignment
for vector loads. Only the batch size is a run-time value. Loops never reduce across
warps per iteration; sums that span iterations are accumulated element-wise and reduced
once. All arithmetic is float32 whatever the dtype of x; only the output is cast back.
"""

from __future__ import annotations

import triton
import triton.language as tl

# ----------------------------------------------------------------------------- R items


@triton.jit
def reduce_item(
    x_ptr, xh_ptr, xw_ptr, b, c0,
    C: tl.constexpr, H: tl.constexpr, W: tl.constexpr,
    SXB: tl.constexpr, SXC: tl.constexpr, SXH: tl.constexpr, SXW: tl.constexpr,
    CB: tl.constexpr, BH: tl.constexpr, BW: tl.constexpr,
):
    """X_H[b, c, h] = mean_w x and X_W[b, c, w] = mean_h x for channels c0..c0+CB-1.

    Rows are streamed BH at a time; column sums are accumulated element-wise over the
    (CB, BH, BW) tile and reduced across rows once at the end (one cross-warp reduction
    per plane: measured faster than one tile per program with a reduction each, and than
    prefetching the next tile, which costs registers and occupancy).
    """
    c = c0 + tl.arange(0, CB)
    cm = c < C
    w = tl.arange(0, BW)
    wm = w < W
    rows = tl.arange(0, BH)
    base = x_ptr + b * SXB + c[:, None, None] * SXC + w[None, None, :] * SXW
    col_acc = tl.zeros([CB, BH, BW], dtype=tl.float32)
    for h0 in range(0, H, BH):
        h = h0 + rows
        hm = h < H
        v = tl.load(base + h[None, :, None] * SXH, mask=cm[:, None, None] & hm[None, :, None] & wm[None, None, :],
                    other=0.0).to(tl.float32)
        tl.store(xh_ptr + (b * C + c)[:, None] * H + h[None, :], tl.sum(v, axis=2) * (1.0 / W),
                 mask=cm[:, None] & hm[None, :])
        col_acc += v
    tl.store(xw_ptr + (b * C + c)[:, None] * W + w[None, :], tl.sum(col_acc, axis=1) * (1.0 / H),
             mask=cm[:, None] & wm[None, :])


# ----------------------------------------------------------------------------- SMSA gates


@triton.jit
def select4(g, v0, v1, v2, v3):
    """v_g for a run-time group index g in 0..3 (scalars or pointers)."""
    return tl.where(g == 0, v0, tl.where(g == 1, v1, tl.where(g == 2, v2, v3)))


@triton.jit
def gate_recompute(
    src_ptr, b, L, g, w_ptr, bias_ptr, ks, gam_ptr, bet_ptr, eps,
    C: tl.constexpr, Cg: tl.constexpr, CGB: tl.constexpr, LB: tl.constexpr,
):
    """SMSA gate of one channel group along one axis, all in registers.

    src (B, C, L) float32 is X_H or X_W; channels ``g*Cg .. g*Cg+Cg-1`` go through their
    depth-wise conv (run-time kernel size ks, 'same' padding, weight (Cg, 1, ks), bias
    (Cg,)), the group's GroupNorm (statistics over Cg x L) and a sigmoid.

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
    pad = ks // 2
    for t in range(ks):
        pos = pos0 + (t - pad)
        xv = tl.load(row + pos[None, :], mask=cm[:, None] & ((pos >= 0) & (pos < L))[None, :], other=0.0)
        wt = tl.load(w_ptr + cl * ks + t, mask=cm, other=0.0).to(tl.float32)
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
    gam_h_ptr, bet_h_ptr, gam_w_ptr, bet_w_ptr, eps_h, eps_w,
    C: tl.constexpr, H: tl.constexpr, W: tl.constexpr, Cg: tl.constexpr, CGB: tl.constexpr, LB: tl.constexpr,
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
        C, Cg, CGB, LB,
    )
    cl = tl.arange(0, CGB)
    pos = tl.arange(0, LB)
    dst = tl.where(h_axis, ah_ptr, aw_ptr)
    tl.store(dst + (b * C + g * Cg + cl)[:, None] * L + pos[None, :], a,
             mask=(cl < Cg)[:, None] & (pos < L)[None, :])


# ----------------------------------------------------------------------------- P items


@triton.jit
def pool_item(
    x_ptr, ah_ptr, aw_ptr, pooled_ptr, pstat_ptr, b, c0, i,
    C: tl.constexpr, H: tl.constexpr, W: tl.constexpr,
    SXB: tl.constexpr, SXC: tl.constexpr, SXH: tl.constexpr, SXW: tl.constexpr,
    WH: tl.constexpr, WW: tl.constexpr, HP: tl.constexpr, WP: tl.constexpr,
    CB: tl.constexpr, RB: tl.constexpr, JB: tl.constexpr, KB: tl.constexpr,
):
    """Window row i of channels c0..c0+CB-1: pooled[b, c, i*WP + j] = mean over window
    (i, j) of x * a_h * a_w, and the row's token sums and sums of squares
    (pstat (B, C, HP, 2), for the GroupNorm(1) statistics).

    The tile is read window by window: element (c, r, j, k) is x[c, i*WH + r, j*WW + k]
    (r < WH, k < WW), so a window's sum is a sum over the last axis and then over r, with
    no cross-window masking. Columns and rows past the last full window are never read
    (floor rounding, as nn.AvgPool2d). One tile per program, no loop.
    """
    c = c0 + tl.arange(0, CB)
    cm = c < C
    r = tl.arange(0, RB)
    rm = r < WH
    j = tl.arange(0, JB)
    k = tl.arange(0, KB)
    col = j[:, None] * WW + k[None, :]  # (JB, KB)
    colm = (j < WP)[:, None] & (k < WW)[None, :]
    h = i * WH + r
    rowc = b * C + c
    aw_t = tl.load(aw_ptr + rowc[:, None, None] * W + col[None, :, :], mask=cm[:, None, None] & colm[None, :, :],
                   other=0.0)  # (CB, JB, KB)
    ah_t = tl.load(ah_ptr + rowc[:, None] * H + h[None, :], mask=cm[:, None] & rm[None, :], other=0.0)  # (CB, RB)
    m = cm[:, None, None, None] & rm[None, :, None, None] & colm[None, None, :, :]
    v = tl.load(x_ptr + b * SXB + c[:, None, None, None] * SXC + h[None, :, None, None] * SXH
                + col[None, None, :, :] * SXW, mask=m, other=0.0).to(tl.float32)  # (CB, RB, JB, KB)
    rows = tl.sum(v * aw_t[:, None, :, :], axis=3)  # (CB, RB, JB)
    tok = tl.sum(rows * ah_t[:, :, None], axis=1) * (1.0 / (WH * WW))  # (CB, JB)
    tl.store(pooled_ptr + rowc[:, None] * (HP * WP) + i * WP + j[None, :], tok, mask=cm[:, None] & (j < WP)[None, :])
    tl.store(pstat_ptr + (rowc * HP + i) * 2, tl.sum(tok, axis=1), mask=cm)
    tl.store(pstat_ptr + (rowc * HP + i) * 2 + 1, tl.sum(tok * tok, axis=1), mask=cm)


# ----------------------------------------------------------------------------- PCSA


@triton.jit
def sample_stats(pstat_ptr, b, eps, C: tl.constexpr, N: tl.constexpr, HP: tl.constexpr, CFB: tl.constexpr):
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
    mean_c = s1 * (1.0 / N)
    m2_c = tl.maximum(s2 - s1 * mean_c, 0.0)
    mean = tl.sum(s1, axis=0) * (1.0 / (C * N))
    d = tl.where(cm, mean_c - mean, 0.0)
    var = (tl.sum(m2_c, axis=0) + N * tl.sum(d * d, axis=0)) * (1.0 / (C * N))
    return mean, 1.0 / tl.sqrt(var + eps)


@triton.jit
def pcsa_tokens(pooled_ptr, gam_ptr, bet_ptr, b, c0, mean, rstd,
                C: tl.constexpr, N: tl.constexpr, CB: tl.constexpr, NB: tl.constexpr):
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
    gate_ptr, o_ptr, lse_ptr, stats_ptr, eps, alpha, b, blk,
    C: tl.constexpr, N: tl.constexpr, HP: tl.constexpr, CB: tl.constexpr, CBK: tl.constexpr, NB: tl.constexpr,
    CFB: tl.constexpr, PREC: tl.constexpr,
):
    """Channel gate of query channels blk*CB .. blk*CB+CB-1 of sample b.

    S[c, d] = alpha * wq_c * wk_d * <y_c, y_d>, o_c = sum_d softmax_d(S)[c, d] * wv_d * mean_n y_d
    (mean over tokens commutes with attn @ V), gate = sigmoid(o). The key channels are
    streamed CBK at a time with an online softmax, so any C fits (usually CBK covers C
    and the loop runs once). Saves o, the row
    log-sum-exp and the GroupNorm statistics for the backward.
    """
    mean, rstd = sample_stats(pstat_ptr, b, eps, C, N, HP, CFB)
    if blk == 0:
        tl.store(stats_ptr + 2 * b, mean)
        tl.store(stats_ptr + 2 * b + 1, rstd)
    c, cm, y_q, _ = pcsa_tokens(pooled_ptr, gam_ptr, bet_ptr, b, blk * CB, mean, rstd, C, N, CB, NB)
    q = y_q * (tl.load(wq_ptr + c, mask=cm, other=0.0).to(tl.float32) * alpha)[:, None]
    m_i = tl.full([CB], float("-inf"), dtype=tl.float32)
    l_i = tl.zeros([CB], dtype=tl.float32)
    acc = tl.zeros([CB], dtype=tl.float32)
    for d0 in range(0, C, CBK):
        d, dm, y_k, _yk_hat = pcsa_tokens(pooled_ptr, gam_ptr, bet_ptr, b, d0, mean, rstd, C, N, CBK, NB)
        k = y_k * tl.load(wk_ptr + d, mask=dm, other=0.0).to(tl.float32)[:, None]
        vbar = tl.load(wv_ptr + d, mask=dm, other=0.0).to(tl.float32) * (tl.sum(y_k, axis=1) * (1.0 / N))
        s = tl.dot(q, tl.trans(k), input_precision=PREC)
        s = tl.where(dm[None, :], s, float("-inf"))
        m_new = tl.maximum(m_i, tl.max(s, axis=1))
        p = tl.exp(s - m_new[:, None])
        scale = tl.exp(m_i - m_new)
        l_i = l_i * scale + tl.sum(p, axis=1)
        acc = acc * scale + tl.sum(p * vbar[None, :], axis=1)
        m_i = m_new
    o = acc / l_i
    off = b * C + c
    tl.store(o_ptr + off, o, mask=cm)
    tl.store(lse_ptr + off, m_i + tl.log(l_i), mask=cm)
    tl.store(gate_ptr + off, tl.sigmoid(o), mask=cm)


# ----------------------------------------------------------------------------- A items


@triton.jit
def apply_item(
    x_ptr, ah_ptr, aw_ptr, gate_ptr, out_ptr, b, c0, rb,
    C: tl.constexpr, H: tl.constexpr, W: tl.constexpr,
    SXB: tl.constexpr, SXC: tl.constexpr, SXH: tl.constexpr, SXW: tl.constexpr,
    SOB: tl.constexpr, SOC: tl.constexpr, SOH: tl.constexpr, SOW: tl.constexpr,
    CB: tl.constexpr, BH: tl.constexpr, BW: tl.constexpr,
):
    """out = x * a_h * a_w * gate for rows rb*BH .. of channels c0..c0+CB-1, in float32,
    stored in out's dtype. One tile per program, no loop."""
    c = c0 + tl.arange(0, CB)
    cm = c < C
    h = rb * BH + tl.arange(0, BH)
    hm = h < H
    w = tl.arange(0, BW)
    wm = w < W
    rowc = b * C + c
    gate = tl.load(gate_ptr + rowc, mask=cm, other=0.0)
    aw_g = tl.load(aw_ptr + rowc[:, None] * W + w[None, :], mask=cm[:, None] & wm[None, :], other=0.0) * gate[:, None]
    ah_t = tl.load(ah_ptr + rowc[:, None] * H + h[None, :], mask=cm[:, None] & hm[None, :], other=0.0)
    m = cm[:, None, None] & hm[None, :, None] & wm[None, None, :]
    v = tl.load(x_ptr + b * SXB + c[:, None, None] * SXC + h[None, :, None] * SXH + w[None, None, :] * SXW,
                mask=m, other=0.0).to(tl.float32)
    res = v * ah_t[:, :, None] * aw_g[:, None, :]
    tl.store(out_ptr + b * SOB + c[:, None, None] * SOC + h[None, :, None] * SOH + w[None, None, :] * SOW,
             res.to(out_ptr.dtype.element_ty), mask=m)


# ----------------------------------------------------------------------------- fused schedule

#: Polls of a done counter before a waiting item gives up (a few seconds); it then sets
#: the error flag (sync[1]) instead of hanging the GPU. Cannot happen unless the
#: schedule is broken; the host checks the flag in tests and benchmarks.
SPIN_LIMIT = tl.constexpr(1 << 22)


@triton.jit
def wait_done(cnt_ptr, target, flag_ptr):
    """Spin until *cnt_ptr >= target, then acquire (the producers' stores are visible after).

    Polls with plain volatile loads: an atomic per poll would queue every waiting program
    behind the ticket counter's atomics in the L2.
    """
    n = tl.load(cnt_ptr, volatile=True)
    spins = n * 0
    while (n < target) & (spins < SPIN_LIMIT):
        n = tl.load(cnt_ptr, volatile=True)
        spins += 1
    if n < target:
        tl.atomic_xchg(flag_ptr, 1)
    tl.atomic_add(cnt_ptr, 0, sem="acquire")
    tl.debug_barrier()


@triton.jit
def mark_done(cnt_ptr):
    """Count this item as done once every thread of the program has stored its results."""
    tl.debug_barrier()
    tl.atomic_add(cnt_ptr, 1, sem="release")


@triton.jit
def fwd_fused_kernel(
    x_ptr, out_ptr, xh_ptr, xw_ptr, ah_ptr, aw_ptr, pooled_ptr, pstat_ptr, stats_ptr, gate_ptr, o_ptr,
    lse_ptr, sync_ptr, n_samples, LG, LP, LQ, LA,
    w0, w1, w2, w3, bias0, bias1, bias2, bias3, k0, k1, k2, k3,
    gam_h_ptr, bet_h_ptr, gam_w_ptr, bet_w_ptr, eps_h, eps_w,
    gam_p_ptr, bet_p_ptr, wq_ptr, wk_ptr, wv_ptr, eps_p, alpha,
    C: tl.constexpr, H: tl.constexpr, W: tl.constexpr,
    SXB: tl.constexpr, SXC: tl.constexpr, SXH: tl.constexpr, SXW: tl.constexpr,
    SOB: tl.constexpr, SOC: tl.constexpr, SOH: tl.constexpr, SOW: tl.constexpr,
    WH: tl.constexpr, WW: tl.constexpr, HP: tl.constexpr, WP: tl.constexpr, N: tl.constexpr,
    CBR: tl.constexpr, BHR: tl.constexpr, CB: tl.constexpr, BH: tl.constexpr, BW: tl.constexpr, NRB: tl.constexpr,
    CBP: tl.constexpr, RB: tl.constexpr, JB: tl.constexpr, KB: tl.constexpr,
    Cg: tl.constexpr, NG: tl.constexpr, CGB: tl.constexpr, LB: tl.constexpr,
    CBQ: tl.constexpr, CBK: tl.constexpr, NB: tl.constexpr, CFB: tl.constexpr, PREC: tl.constexpr,
    NR: tl.constexpr, NP: tl.constexpr, NQ: tl.constexpr, NA: tl.constexpr,
):
    """The whole SCSA forward in one launch (the fused schedule of the module docstring),
    grid ((B + LA) * S,), S = NA + NQ + NP + 2 NG + NR tickets per slot, where the lags
    0 < LG < LP < LQ < LA (in slots) place each kind after the kind it waits for.

    Items per sample: R NR = C / CBR planes blocks; G 2 NG; P NP = (C / CBP) x HP window
    rows; Q NQ = C / CBQ; A NA = (C / CB) x NRB row blocks.

    sync (int32, zeroed before a fused launch), one 128-byte line per counter so that
    polling one does not slow the atomics on another: [0] ticket counter, [32] error flag,
    [64 + 32 * (k * B + b)] done counter of kind k (R, G, P, Q) of sample b.
    """
    NGATE: tl.constexpr = 2 * NG
    S: tl.constexpr = NA + NQ + NP + NGATE + NR
    t = tl.atomic_add(sync_ptr, 1, sem="relaxed")
    slot = t // S
    pos = t % S
    # Slot layout: A (NA) | Q (NQ) | P (NP) | G (2 NG) | R (NR); oldest work first.
    kind = tl.where(pos < NA, 4, tl.where(pos < NA + NQ, 3, tl.where(pos < NA + NQ + NP, 2,
                    tl.where(pos < NA + NQ + NP + NGATE, 1, 0))))
    start = tl.where(kind == 4, 0, tl.where(kind == 3, NA, tl.where(kind == 2, NA + NQ,
                     tl.where(kind == 1, NA + NQ + NP, NA + NQ + NP + NGATE))))
    lag = tl.where(kind == 4, LA, tl.where(kind == 3, LQ, tl.where(kind == 2, LP, tl.where(kind == 1, LG, 0))))
    b = slot - lag
    item = pos - start
    done = sync_ptr + 64 + 32 * b
    flag = sync_ptr + 32
    if (b >= 0) & (b < n_samples):
        if kind == 0:
            reduce_item(x_ptr, xh_ptr, xw_ptr, b, item * CBR, C, H, W, SXB, SXC, SXH, SXW, CBR, BHR, BW)
            mark_done(done)
        elif kind == 1:
            wait_done(done, NR, flag)
            gate_item(xh_ptr, xw_ptr, ah_ptr, aw_ptr, b, item // 2, item % 2,
                      w0, w1, w2, w3, bias0, bias1, bias2, bias3, k0, k1, k2, k3,
                      gam_h_ptr, bet_h_ptr, gam_w_ptr, bet_w_ptr, eps_h, eps_w, C, H, W, Cg, CGB, LB)
            mark_done(done + 32 * n_samples)
        elif kind == 2:
            wait_done(done + 32 * n_samples, NGATE, flag)
            pool_item(x_ptr, ah_ptr, aw_ptr, pooled_ptr, pstat_ptr, b, (item // HP) * CBP, item % HP,
                      C, H, W, SXB, SXC, SXH, SXW, WH, WW, HP, WP, CBP, RB, JB, KB)
            mark_done(done + 32 * 2 * n_samples)
        elif kind == 3:
            wait_done(done + 32 * 2 * n_samples, NP, flag)
            pcsa_item(pooled_ptr, pstat_ptr, gam_p_ptr, bet_p_ptr, wq_ptr, wk_ptr, wv_ptr, gate_ptr, o_ptr,
                      lse_ptr, stats_ptr, eps_p, alpha, b, item, C, N, HP, CBQ, CBK, NB, CFB, PREC)
            mark_done(done + 32 * 3 * n_samples)
        else:
            wait_done(done + 32 * 3 * n_samples, NQ, flag)
            apply_item(x_ptr, ah_ptr, aw_ptr, gate_ptr, out_ptr, b, (item // NRB) * CB, item % NRB,
                       C, H, W, SXB, SXC, SXH, SXW, SOB, SOC, SOH, SOW, CB, BH, BW)


# ----------------------------------------------------------------------------- split schedule
# One thin kernel per kind: each takes only its own arguments, because Triton's launcher
# costs host time per argument and these launches are host-bound at small maps.


@triton.jit
def fwd_reduce_kernel(
    x_ptr, xh_ptr, xw_ptr,
    C: tl.constexpr, H: tl.constexpr, W: tl.constexpr,
    SXB: tl.constexpr, SXC: tl.constexpr, SXH: tl.constexpr, SXW: tl.constexpr,
    CBR: tl.constexpr, BHR: tl.constexpr, BW: tl.constexpr, NR: tl.constexpr,
):
    """R items; grid (B * NR,)."""
    pid = tl.program_id(0)
    reduce_item(x_ptr, xh_ptr, xw_ptr, pid // NR, (pid % NR) * CBR, C, H, W, SXB, SXC, SXH, SXW, CBR, BHR, BW)


@triton.jit
def fwd_gate_kernel(
    xh_ptr, xw_ptr, ah_ptr, aw_ptr,
    w0, w1, w2, w3, bias0, bias1, bias2, bias3, k0, k1, k2, k3,
    gam_h_ptr, bet_h_ptr, gam_w_ptr, bet_w_ptr, eps_h, eps_w,
    C: tl.constexpr, H: tl.constexpr, W: tl.constexpr, Cg: tl.constexpr, NG: tl.constexpr,
    CGB: tl.constexpr, LB: tl.constexpr,
):
    """G items; grid (B * NG * 2,), program (b * NG + g) * 2 + axis."""
    pid = tl.program_id(0)
    gate_item(xh_ptr, xw_ptr, ah_ptr, aw_ptr, pid // (2 * NG), (pid % (2 * NG)) // 2, pid % 2,
              w0, w1, w2, w3, bias0, bias1, bias2, bias3, k0, k1, k2, k3,
              gam_h_ptr, bet_h_ptr, gam_w_ptr, bet_w_ptr, eps_h, eps_w, C, H, W, Cg, CGB, LB)


@triton.jit
def fwd_pool_kernel(
    x_ptr, ah_ptr, aw_ptr, pooled_ptr, pstat_ptr,
    C: tl.constexpr, H: tl.constexpr, W: tl.constexpr,
    SXB: tl.constexpr, SXC: tl.constexpr, SXH: tl.constexpr, SXW: tl.constexpr,
    WH: tl.constexpr, WW: tl.constexpr, HP: tl.constexpr, WP: tl.constexpr,
    CBP: tl.constexpr, RB: tl.constexpr, JB: tl.constexpr, KB: tl.constexpr, NP: tl.constexpr,
):
    """P items; grid (B * NP,)."""
    pid = tl.program_id(0)
    item = pid % NP
    pool_item(x_ptr, ah_ptr, aw_ptr, pooled_ptr, pstat_ptr, pid // NP, (item // HP) * CBP, item % HP,
              C, H, W, SXB, SXC, SXH, SXW, WH, WW, HP, WP, CBP, RB, JB, KB)


@triton.jit
def fwd_pcsa_kernel(
    pooled_ptr, pstat_ptr, gam_ptr, bet_ptr, wq_ptr, wk_ptr, wv_ptr, gate_ptr, o_ptr, lse_ptr, stats_ptr, eps, alpha,
    C: tl.constexpr, N: tl.constexpr, HP: tl.constexpr, CBQ: tl.constexpr, CBK: tl.constexpr, NB: tl.constexpr,
    CFB: tl.constexpr, PREC: tl.constexpr, NQ: tl.constexpr,
):
    """Q items; grid (B * NQ,)."""
    pid = tl.program_id(0)
    pcsa_item(pooled_ptr, pstat_ptr, gam_ptr, bet_ptr, wq_ptr, wk_ptr, wv_ptr, gate_ptr, o_ptr, lse_ptr, stats_ptr,
              eps, alpha, pid // NQ, pid % NQ, C, N, HP, CBQ, CBK, NB, CFB, PREC)


@triton.jit
def fwd_apply_kernel(
    x_ptr, ah_ptr, aw_ptr, gate_ptr, out_ptr,
    C: tl.constexpr, H: tl.constexpr, W: tl.constexpr,
    SXB: tl.constexpr, SXC: tl.constexpr, SXH: tl.constexpr, SXW: tl.constexpr,
    SOB: tl.constexpr, SOC: tl.constexpr, SOH: tl.constexpr, SOW: tl.constexpr,
    CB: tl.constexpr, BH: tl.constexpr, BW: tl.constexpr, NRB: tl.constexpr, NA: tl.constexpr,
):
    """A items; grid (B * NA,)."""
    pid = tl.program_id(0)
    item = pid % NA
    apply_item(x_ptr, ah_ptr, aw_ptr, gate_ptr, out_ptr, pid // NA, (item // NRB) * CB, item % NRB,
               C, H, W, SXB, SXC, SXH, SXW, SOB, SOC, SOH, SOW, CB, BH, BW)
