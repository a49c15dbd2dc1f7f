"""Forward kernels of the fused SCSA: three passes over x plus two tiny kernels.

Notation (one sample b, one channel c of x (B, C, H, W)):

* ``a_h`` (B, C, H) and ``a_w`` (B, C, W): the SMSA sigmoid gates, float32.
* windows: ``WH = min(window, H)``, ``WW = min(window, W)``, stride = window,
  ``HP = H // WH`` by ``WP = W // WW`` windows, ``N = HP * WP`` tokens.
* ``pooled`` (B, C, N): window means of ``x * a_h * a_w``, float32.
* ``gate`` (B, C): the PCSA channel gate, float32.

Launch order (see :func:`scsa_yolo.nn.scsa_fast._forward`):

1. :func:`fwd_reduce_kernel`  reads x once       -> X_H = mean_W x, X_W = mean_H x.
2. :func:`fwd_gate_kernel`    (B, C, H)+(B, C, W) -> a_h, a_w (conv, GroupNorm, sigmoid).
3. :func:`fwd_pool_kernel`    reads x once       -> pooled (x * a_h * a_w never stored).
4. :func:`fwd_pcsa_kernel`    (B, C, N)          -> gate (GroupNorm(1), channel attention).
5. :func:`fwd_apply_kernel`   reads x once       -> out = x * a_h * a_w * gate.

All arithmetic is float32 whatever the dtype of x; only the output is cast back.
"""

from __future__ import annotations

import triton
import triton.language as tl

# ----------------------------------------------------------------------------- pass 1


@triton.jit
def fwd_reduce_kernel(
    x_ptr, xh_ptr, xw_ptr,
    C, H, W, sxb, sxc, sxh, sxw, inv_w, inv_h, n_cblocks,
    CB: tl.constexpr, BH: tl.constexpr, BW: tl.constexpr,
):
    """X_H[b, c, h] = mean_w x and X_W[b, c, w] = mean_h x; one program per (b, CB channels).

    Rows are streamed BH at a time; the column sums stay in registers.
    """
    pid = tl.program_id(0)
    b = pid // n_cblocks
    c = (pid % n_cblocks) * CB + tl.arange(0, CB)
    cm = c < C
    w = tl.arange(0, BW)
    wm = w < W
    rows = tl.arange(0, BH)
    base = x_ptr + b * sxb + c[:, None, None] * sxc + w[None, None, :] * sxw
    col_acc = tl.zeros([CB, BW], dtype=tl.float32)
    for h0 in range(0, H, BH):
        h = h0 + rows
        hm = h < H
        v = tl.load(base + h[None, :, None] * sxh, mask=cm[:, None, None] & hm[None, :, None] & wm[None, None, :],
                    other=0.0).to(tl.float32)
        tl.store(xh_ptr + (b * C + c)[:, None] * H + h[None, :], tl.sum(v, axis=2) * inv_w,
                 mask=cm[:, None] & hm[None, :])
        col_acc += tl.sum(v, axis=1)
    tl.store(xw_ptr + (b * C + c)[:, None] * W + w[None, :], col_acc * inv_h, mask=cm[:, None] & wm[None, :])


# ----------------------------------------------------------------------------- SMSA gates


@triton.jit
def gate_recompute(
    src_ptr, b, C, L, Cg, g, w_ptr, bias_ptr, gam_ptr, bet_ptr, eps,
    KS: tl.constexpr, CGB: tl.constexpr, LB: tl.constexpr,
):
    """SMSA gate of one channel group along one axis, all in registers.

    src (B, C, L) float32 is X_H or X_W; channels ``g*Cg .. g*Cg+Cg-1`` go through their
    depth-wise conv (kernel KS, 'same' padding, weight (Cg, 1, KS), bias (Cg,)), the group's
    GroupNorm (statistics over Cg x L) and a sigmoid.

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
    for t in tl.static_range(KS):
        pos = pos0 + (t - KS // 2)
        xv = tl.load(row + pos[None, :], mask=cm[:, None] & ((pos >= 0) & (pos < L))[None, :], other=0.0)
        wt = tl.load(w_ptr + cl * KS + t, mask=cm, other=0.0).to(tl.float32)
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
def _gate_fwd_group(
    xh_ptr, xw_ptr, ah_ptr, aw_ptr, b, g, C, H, W, Cg, w_ptr, bias_ptr,
    gam_h_ptr, bet_h_ptr, gam_w_ptr, bet_w_ptr, eps_h, eps_w,
    KS: tl.constexpr, CGB: tl.constexpr, HB: tl.constexpr, WB: tl.constexpr,
):
    cl = tl.arange(0, CGB)
    cm = cl < Cg
    c = g * Cg + cl
    _, _, _, a = gate_recompute(xh_ptr, b, C, H, Cg, g, w_ptr, bias_ptr, gam_h_ptr, bet_h_ptr, eps_h, KS, CGB, HB)
    hh = tl.arange(0, HB)
    tl.store(ah_ptr + (b * C + c)[:, None] * H + hh[None, :], a, mask=cm[:, None] & (hh < H)[None, :])
    _, _, _, a = gate_recompute(xw_ptr, b, C, W, Cg, g, w_ptr, bias_ptr, gam_w_ptr, bet_w_ptr, eps_w, KS, CGB, WB)
    ww = tl.arange(0, WB)
    tl.store(aw_ptr + (b * C + c)[:, None] * W + ww[None, :], a, mask=cm[:, None] & (ww < W)[None, :])


@triton.jit
def fwd_gate_kernel(
    xh_ptr, xw_ptr, ah_ptr, aw_ptr,
    w0, w1, w2, w3, bias0, bias1, bias2, bias3,
    gam_h_ptr, bet_h_ptr, gam_w_ptr, bet_w_ptr,
    C, H, W, Cg, eps_h, eps_w,
    K0: tl.constexpr, K1: tl.constexpr, K2: tl.constexpr, K3: tl.constexpr, NG: tl.constexpr,
    CGB: tl.constexpr, HB: tl.constexpr, WB: tl.constexpr,
):
    """a_h, a_w for one (sample, channel group) per program; grid (B * NG,).

    Up to four groups, each with its own kernel size (a constexpr, so each group's branch
    is compiled with its taps unrolled); unused group slots get dummy pointers.
    """
    pid = tl.program_id(0)
    b = pid // NG
    g = pid % NG
    if g == 0:
        _gate_fwd_group(xh_ptr, xw_ptr, ah_ptr, aw_ptr, b, g, C, H, W, Cg, w0, bias0,
                        gam_h_ptr, bet_h_ptr, gam_w_ptr, bet_w_ptr, eps_h, eps_w, K0, CGB, HB, WB)
    if NG > 1:
        if g == 1:
            _gate_fwd_group(xh_ptr, xw_ptr, ah_ptr, aw_ptr, b, g, C, H, W, Cg, w1, bias1,
                            gam_h_ptr, bet_h_ptr, gam_w_ptr, bet_w_ptr, eps_h, eps_w, K1, CGB, HB, WB)
    if NG > 2:
        if g == 2:
            _gate_fwd_group(xh_ptr, xw_ptr, ah_ptr, aw_ptr, b, g, C, H, W, Cg, w2, bias2,
                            gam_h_ptr, bet_h_ptr, gam_w_ptr, bet_w_ptr, eps_h, eps_w, K2, CGB, HB, WB)
    if NG > 3:
        if g == 3:
            _gate_fwd_group(xh_ptr, xw_ptr, ah_ptr, aw_ptr, b, g, C, H, W, Cg, w3, bias3,
                            gam_h_ptr, bet_h_ptr, gam_w_ptr, bet_w_ptr, eps_h, eps_w, K3, CGB, HB, WB)


# ----------------------------------------------------------------------------- pass 2


@triton.jit
def fwd_pool_kernel(
    x_ptr, ah_ptr, aw_ptr, pooled_ptr,
    C, H, W, sxb, sxc, sxh, sxw, WH, WW, HP, WP, inv_area, n_cblocks,
    CB: tl.constexpr, RB: tl.constexpr, JB: tl.constexpr, TB: tl.constexpr,
):
    """pooled[b, c, i*WP + j] = mean over window (i, j) of x * a_h * a_w.

    One program per (b, CB channels), one window row per iteration. The tile is
    (CB*RB, JB, TB): channel-and-row-in-window, window column, column-in-window, so the
    window sums are plain axis reductions. Rows/columns past the last full window are
    never read (floor rounding, as nn.AvgPool2d).
    """
    pid = tl.program_id(0)
    b = pid // n_cblocks
    c0 = (pid % n_cblocks) * CB
    q = tl.arange(0, CB * RB)
    c = c0 + q // RB
    r = q % RB
    cm = c < C
    j = tl.arange(0, JB)
    t = tl.arange(0, TB)
    col = j[:, None] * WW + t[None, :]
    colm = (j[:, None] < WP) & (t[None, :] < WW)
    mq = cm[:, None, None] & colm[None, :, :]
    aw_t = tl.load(aw_ptr + (b * C + c)[:, None, None] * W + col[None, :, :], mask=mq, other=0.0)
    rm = r < WH
    cc = c0 + tl.arange(0, CB)
    out_rows = pooled_ptr + (b * C + cc)[:, None] * (HP * WP) + j[None, :]
    out_mask = (cc < C)[:, None] & (j < WP)[None, :]
    base = x_ptr + b * sxb + c[:, None, None] * sxc + col[None, :, :] * sxw
    for i in range(HP):
        h = i * WH + r
        ah_v = tl.load(ah_ptr + (b * C + c) * H + h, mask=cm & rm, other=0.0)
        v = tl.load(base + h[:, None, None] * sxh, mask=mq & rm[:, None, None], other=0.0).to(tl.float32)
        s = tl.sum(v * aw_t, axis=2) * ah_v[:, None]  # (CB*RB, JB)
        s = tl.sum(tl.reshape(s, [CB, RB, JB]), axis=1)  # (CB, JB)
        tl.store(out_rows + i * WP, s * inv_area, mask=out_mask)


# ----------------------------------------------------------------------------- PCSA


@triton.jit
def sample_stats(pooled_ptr, b, total, eps, FB: tl.constexpr):
    """Mean and 1/std of pooled[b] (C*N values), two passes for a stable variance."""
    base = pooled_ptr + b * total
    idx0 = tl.arange(0, FB)
    acc = tl.zeros([FB], dtype=tl.float32)
    for s in range(0, total, FB):
        idx = s + idx0
        acc += tl.load(base + idx, mask=idx < total, other=0.0)
    mean = tl.sum(acc, axis=0) / total
    acc = tl.zeros([FB], dtype=tl.float32)
    for s in range(0, total, FB):
        idx = s + idx0
        d = tl.where(idx < total, tl.load(base + idx, mask=idx < total, other=0.0) - mean, 0.0)
        acc += d * d
    var = tl.sum(acc, axis=0) / total
    return mean, 1.0 / tl.sqrt(var + eps)


@triton.jit
def pcsa_tokens(pooled_ptr, gam_ptr, bet_ptr, b, c0, C, N, mean, rstd, CB: tl.constexpr, NB: tl.constexpr):
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
def fwd_pcsa_kernel(
    pooled_ptr, gam_ptr, bet_ptr, wq_ptr, wk_ptr, wv_ptr,
    gate_ptr, o_ptr, lse_ptr, stats_ptr,
    C, N, eps, alpha, inv_n, n_cblocks,
    CB: tl.constexpr, NB: tl.constexpr, FB: tl.constexpr, PREC: tl.constexpr,
):
    """Channel gate of CB query channels of sample b; grid (B * n_cblocks,).

    S[c, d] = alpha * wq_c * wk_d * <y_c, y_d>, o_c = sum_d softmax_d(S)[c, d] * wv_d * mean_n y_d
    (mean over tokens commutes with attn @ V), gate = sigmoid(o). The key channels are
    streamed CB at a time with an online softmax, so any C fits. Saves o, the row
    log-sum-exp and the GroupNorm statistics for the backward.
    """
    pid = tl.program_id(0)
    b = pid // n_cblocks
    blk = pid % n_cblocks
    mean, rstd = sample_stats(pooled_ptr, b, C * N, eps, FB)
    if blk == 0:
        tl.store(stats_ptr + 2 * b, mean)
        tl.store(stats_ptr + 2 * b + 1, rstd)
    c, cm, y_q, _ = pcsa_tokens(pooled_ptr, gam_ptr, bet_ptr, b, blk * CB, C, N, mean, rstd, CB, NB)
    q = y_q * (tl.load(wq_ptr + c, mask=cm, other=0.0).to(tl.float32) * alpha)[:, None]
    m_i = tl.full([CB], float("-inf"), dtype=tl.float32)
    l_i = tl.zeros([CB], dtype=tl.float32)
    acc = tl.zeros([CB], dtype=tl.float32)
    for d0 in range(0, C, CB):
        d, dm, y_k, _ = pcsa_tokens(pooled_ptr, gam_ptr, bet_ptr, b, d0, C, N, mean, rstd, CB, NB)
        k = y_k * tl.load(wk_ptr + d, mask=dm, other=0.0).to(tl.float32)[:, None]
        vbar = tl.load(wv_ptr + d, mask=dm, other=0.0).to(tl.float32) * (tl.sum(y_k, axis=1) * inv_n)
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


# ----------------------------------------------------------------------------- pass 3


@triton.jit
def fwd_apply_kernel(
    x_ptr, ah_ptr, aw_ptr, gate_ptr, out_ptr,
    C, H, W, sxb, sxc, sxh, sxw, sob, soc, soh, sow, n_cblocks,
    CB: tl.constexpr, BH: tl.constexpr, BW: tl.constexpr,
):
    """out = x * a_h * a_w * gate, computed in float32, stored in out's dtype."""
    pid = tl.program_id(0)
    b = pid // n_cblocks
    c = (pid % n_cblocks) * CB + tl.arange(0, CB)
    cm = c < C
    w = tl.arange(0, BW)
    wm = w < W
    rows = tl.arange(0, BH)
    gate = tl.load(gate_ptr + b * C + c, mask=cm, other=0.0)
    aw_g = tl.load(aw_ptr + (b * C + c)[:, None] * W + w[None, :], mask=cm[:, None] & wm[None, :], other=0.0)
    aw_g = aw_g * gate[:, None]
    src = x_ptr + b * sxb + c[:, None, None] * sxc + w[None, None, :] * sxw
    dst = out_ptr + b * sob + c[:, None, None] * soc + w[None, None, :] * sow
    for h0 in range(0, H, BH):
        h = h0 + rows
        hm = h < H
        m = cm[:, None, None] & hm[None, :, None] & wm[None, None, :]
        ah_t = tl.load(ah_ptr + (b * C + c)[:, None] * H + h[None, :], mask=cm[:, None] & hm[None, :], other=0.0)
        v = tl.load(src + h[None, :, None] * sxh, mask=m, other=0.0).to(tl.float32)
        res = v * ah_t[:, :, None] * aw_g[:, None, :]
        tl.store(dst + h[None, :, None] * soh, res.to(out_ptr.dtype.element_ty), mask=m)
