"""Backward kernels of the fused SCSA: two passes over the big tensors plus two tiny kernels.

With s = a_h[h] * a_w[w] and out = x * s * gate, the gradient of x is

    dx = s * (dout * gate + dP[i(h), j(w)] / area) + dX_H[h] / W + dX_W[w] / H

(dP: gradient of the pooled tokens, zero outside the floor-rounded windows; dX_H, dX_W:
gradients of the two axis means). It needs no x, so the backward is

1. :func:`bwd_reduce_kernel` reads dout and x once and produces every reduction of
   ``dout * x`` the small graph needs: dgate (B, C), G_H (B, C, H), G_W (B, C, W), plus the
   window partial sums of x * a_w over a window's columns (as prefix sums RP
   (B, C, H, WP)) and of x * a_h over a window's rows (CQ (B, C, HP, W)): the pooling's
   share of d a_h / d a_w, needed once dP is known.
2. :func:`bwd_pcsa_kernel`   gradient through the channel attention -> d y_hat (B, C, N),
   per-channel parameter gradients, and per-channel sums for the GroupNorm(1) backward.
3. :func:`bwd_gate_kernel`   finishes dP, then d a_h, d a_w -> SMSA gate backward ->
   dX_H, dX_W and the SMSA parameter gradients.
4. :func:`bwd_dx_kernel`     reads dout once, writes dx.
5. :func:`bwd_param_kernel`  sums the per-sample parameter gradients.

Parameter gradients are written per sample into one (B, 2, C, NSLOT) float32 buffer
(slots below), which the last kernel sums in a fixed order, so the result is
deterministic (no atomics).

Sizes and strides are run-time arguments, as in :mod:`.forward` (``hq``/``wq`` and the
stride quotients over ``AL``; ``XU``/``DU`` the unit-stride axes of x and dout).
"""

from __future__ import annotations

import triton
import triton.language as tl

from .forward import gate_recompute, pcsa_tokens, select4, size_jit, strides4

# Slots of the per-sample parameter-gradient buffer (B, C, NSLOT); SLOTS is the same
# table for the host side.
SLOTS = dict(wq=0, wk=1, wv=2, gam_p=3, bet_p=4, gam_h=5, bet_h=6, gam_w=7, bet_w=8, conv_bias=9, conv_w=10)
SLOT_WQ = tl.constexpr(SLOTS["wq"])
SLOT_WK = tl.constexpr(SLOTS["wk"])
SLOT_WV = tl.constexpr(SLOTS["wv"])
SLOT_GAM_P = tl.constexpr(SLOTS["gam_p"])
SLOT_BET_P = tl.constexpr(SLOTS["bet_p"])
SLOT_GAM_H = tl.constexpr(SLOTS["gam_h"])
SLOT_BET_H = tl.constexpr(SLOTS["bet_h"])
SLOT_GAM_W = tl.constexpr(SLOTS["gam_w"])
SLOT_BET_W = tl.constexpr(SLOTS["bet_w"])
SLOT_CONV_BIAS = tl.constexpr(SLOTS["conv_bias"])
SLOT_CONV_W = tl.constexpr(SLOTS["conv_w"])  # taps 0..k-1 of the channel's conv kernel follow


@size_jit
def bwd_reduce_kernel(
    x_ptr, dout_ptr, ah_ptr, aw_ptr, gate_ptr,
    dgate_ptr, gh_ptr, gw_ptr, rp_ptr, cq_ptr, n_cblocks,
    hq, wq, sxb, sxc, sxh, sxw, sdb, sdc, sdh, sdw, HP, WP, NI,
    C: tl.constexpr, XU: tl.constexpr, DU: tl.constexpr, AL: tl.constexpr, WH: tl.constexpr, WW: tl.constexpr,
    CB: tl.constexpr, RB: tl.constexpr, BW: tl.constexpr,
):
    """All reductions of dout and x for one (b, CB channels); grid (B * n_cblocks,).

    dgate[b, c]  = sum_hw dout * x * a_h * a_w
    G_H[b, c, h] = gate * sum_w dout * x * a_w
    G_W[b, c, w] = gate * sum_h dout * x * a_h
    RP[b, c, h, j] = sum_{w < (j+1)*WW} x * a_w   (prefix at each window's last column,
                                                   h < HP*WH, j < WP; R = difference)
    CQ[b, c, i, w] = sum_{h in window row i} x * a_h  (i < HP, w < WP*WW)

    One window row (RB >= WH whole rows) per iteration, NI = ceil(H / WH) iterations,
    the last possibly partial; column-wise sums accumulate element-wise.
    """
    pid = tl.program_id(0)
    H = hq * AL
    W = wq * AL
    SXB, SXC, SXH, SXW = strides4(sxb, sxc, sxh, sxw, XU, AL)
    SDB, SDC, SDH, SDW = strides4(sdb, sdc, sdh, sdw, DU, AL)
    b = pid // n_cblocks
    c = (pid % n_cblocks) * CB + tl.arange(0, CB)
    cm = c < C
    rowc = b * C + c
    r = tl.arange(0, RB)
    w = tl.arange(0, BW)
    wm = w < W
    in_cols = w < WP * WW
    win_end = ((w + 1) % WW == 0) & in_cols
    slot = (w + 1) // WW - 1
    aw_t = tl.load(aw_ptr + rowc[:, None] * W + w[None, :], mask=cm[:, None] & wm[None, :], other=0.0)
    gate = tl.load(gate_ptr + rowc, mask=cm, other=0.0)
    xbase = x_ptr + b * SXB + c[:, None, None] * SXC + w[None, None, :] * SXW
    dbase = dout_ptr + b * SDB + c[:, None, None] * SDC + w[None, None, :] * SDW
    gw_acc = tl.zeros([CB, RB, BW], dtype=tl.float32)
    dg_acc = tl.zeros([CB, RB], dtype=tl.float32)
    for i in range(NI):
        h = i * WH + r
        rm = (r < WH) & (h < H)
        mrow = cm[:, None] & rm[None, :]
        m = mrow[:, :, None] & wm[None, None, :]
        xv = tl.load(xbase + h[None, :, None] * SXH, mask=m, other=0.0).to(tl.float32)
        dv = tl.load(dbase + h[None, :, None] * SDH, mask=m, other=0.0).to(tl.float32)
        ah_t = tl.load(ah_ptr + rowc[:, None] * H + h[None, :], mask=mrow, other=0.0)
        xa = xv * aw_t[:, None, :]
        rowdot = tl.sum(dv * xa, axis=2)  # sum_w dout x a_w, (CB, RB)
        tl.store(gh_ptr + rowc[:, None] * H + h[None, :], rowdot * gate[:, None], mask=mrow)
        dg_acc += rowdot * ah_t
        xh_ = xv * ah_t[:, :, None]
        gw_acc += dv * xh_
        full = i < HP
        tl.store(rp_ptr + (rowc[:, None, None] * H + h[None, :, None]) * WP + slot[None, None, :],
                 tl.cumsum(xa, axis=2), mask=mrow[:, :, None] & win_end[None, None, :] & full)
        tl.store(cq_ptr + (rowc[:, None] * HP + i) * W + w[None, :], tl.sum(xh_, axis=1),
                 mask=cm[:, None] & in_cols[None, :] & full)
    tl.store(gw_ptr + rowc[:, None] * W + w[None, :], tl.sum(gw_acc, axis=1) * gate[:, None],
             mask=cm[:, None] & wm[None, :])
    tl.store(dgate_ptr + rowc, tl.sum(dg_acc, axis=1), mask=cm)


@size_jit
def bwd_pcsa_kernel(
    pooled_ptr, stats_ptr, gam_ptr, bet_ptr, wq_ptr, wk_ptr, wv_ptr,
    gate_ptr, o_ptr, lse_ptr, dgate_ptr,
    dyhat_ptr, s12_ptr, part_ptr, alpha, n_cblocks, nq, inv_n,
    C: tl.constexpr, NSLOT: tl.constexpr, CB: tl.constexpr, NB: tl.constexpr, PREC: tl.constexpr,
    NAL: tl.constexpr,
):
    """Backward of the channel attention for CB channels of sample b; grid (B * n_cblocks,).

    With do_c = dgate_c * g_c (1 - g_c), P = softmax(S), vbar = wv * mean_n y:
    dS[c, d] = do_c P[c, d] (vbar_d - o_c), dvbar_d = sum_c P[c, d] do_c, and
    dy_c = alpha wq_c sum_d dS[c, d] wk_d y_d + alpha wk_c sum_e dS[e, c] wq_e y_e
           + wv_c dvbar_c / N.
    The program owns channel block J and visits every block I once, getting both the row
    (J queries) and column (J keys) terms from one Gram block <y_J, y_I>; P is rebuilt from
    the saved log-sum-exp. Writes d y_hat = dy * gamma (B, C, N), the per-channel sums
    sum_n d y_hat and sum_n d y_hat * y_hat (B, 2, C) for the GroupNorm backward, and the
    gradients of wq, wk, wv, gamma, beta for this sample.
    """
    pid = tl.program_id(0)
    N = nq * NAL
    b = pid // n_cblocks
    blk = pid % n_cblocks
    mean = tl.load(stats_ptr + 2 * b)
    rstd = tl.load(stats_ptr + 2 * b + 1)
    cj, cmj, yj, yhat_j = pcsa_tokens(pooled_ptr, gam_ptr, bet_ptr, b, blk * CB, mean, rstd, N, C, CB, NB)
    wq_j = tl.load(wq_ptr + cj, mask=cmj, other=0.0).to(tl.float32) * alpha
    wk_j = tl.load(wk_ptr + cj, mask=cmj, other=0.0).to(tl.float32)
    wv_j = tl.load(wv_ptr + cj, mask=cmj, other=0.0).to(tl.float32)
    ybar_j = tl.sum(yj, axis=1) * inv_n
    vbar_j = wv_j * ybar_j
    offj = b * C + cj
    g_j = tl.load(gate_ptr + offj, mask=cmj, other=0.0)
    do_j = tl.load(dgate_ptr + offj, mask=cmj, other=0.0) * g_j * (1.0 - g_j)
    o_j = tl.load(o_ptr + offj, mask=cmj, other=0.0)
    lse_j = tl.load(lse_ptr + offj, mask=cmj, other=0.0)
    acc = tl.zeros([CB, NB], dtype=tl.float32)
    dwq = tl.zeros([CB], dtype=tl.float32)
    dwk = tl.zeros([CB], dtype=tl.float32)
    dvbar = tl.zeros([CB], dtype=tl.float32)
    for d0 in range(0, C, CB):
        ci, cmi, yi, _ = pcsa_tokens(pooled_ptr, gam_ptr, bet_ptr, b, d0, mean, rstd, N, C, CB, NB)
        wq_i = tl.load(wq_ptr + ci, mask=cmi, other=0.0).to(tl.float32) * alpha
        wk_i = tl.load(wk_ptr + ci, mask=cmi, other=0.0).to(tl.float32)
        wv_i = tl.load(wv_ptr + ci, mask=cmi, other=0.0).to(tl.float32)
        vbar_i = wv_i * (tl.sum(yi, axis=1) * inv_n)
        offi = b * C + ci
        g_i = tl.load(gate_ptr + offi, mask=cmi, other=0.0)
        do_i = tl.load(dgate_ptr + offi, mask=cmi, other=0.0) * g_i * (1.0 - g_i)
        o_i = tl.load(o_ptr + offi, mask=cmi, other=0.0)
        lse_i = tl.load(lse_ptr + offi, mask=cmi, other=0.0)
        gram = tl.dot(yj, tl.trans(yi), input_precision=PREC)  # <y_j, y_i>, (CB_J, CB_I)
        pair = cmj[:, None] & cmi[None, :]
        # J as queries, I as keys.
        p_row = tl.where(pair, tl.exp(wq_j[:, None] * wk_i[None, :] * gram - lse_j[:, None]), 0.0)
        ds_k = do_j[:, None] * p_row * (vbar_i[None, :] - o_j[:, None]) * wk_i[None, :]
        acc += wq_j[:, None] * tl.dot(ds_k, yi, input_precision=PREC)
        dwq += tl.sum(ds_k * gram, axis=1)
        # I as queries, J as keys (element [j, i] is S[i, j]).
        p_col = tl.where(pair, tl.exp(wk_j[:, None] * wq_i[None, :] * gram - lse_i[None, :]), 0.0)
        ds_q = do_i[None, :] * p_col * (vbar_j[:, None] - o_i[None, :]) * wq_i[None, :]
        acc += wk_j[:, None] * tl.dot(ds_q, yi, input_precision=PREC)
        dwk += tl.sum(ds_q * gram, axis=1)
        dvbar += tl.sum(p_col * do_i[None, :], axis=1)
    n = tl.arange(0, NB)
    valid = cmj[:, None] & (n < N)[None, :]
    dy = tl.where(valid, acc + (wv_j * dvbar * inv_n)[:, None], 0.0)
    gam_j = tl.load(gam_ptr + cj, mask=cmj, other=0.0).to(tl.float32)
    dyhat = dy * gam_j[:, None]
    tl.store(dyhat_ptr + offj[:, None] * N + n[None, :], dyhat, mask=valid)
    tl.store(s12_ptr + (2 * b) * C + cj, tl.sum(dyhat, axis=1), mask=cmj)
    tl.store(s12_ptr + (2 * b + 1) * C + cj, tl.sum(dyhat * yhat_j, axis=1), mask=cmj)
    prow = part_ptr + ((2 * b) * C + cj) * NSLOT  # plane 0 of (B, 2, C, NSLOT)
    tl.store(prow + SLOT_WQ, dwq * alpha, mask=cmj)
    tl.store(prow + SLOT_WK, dwk, mask=cmj)  # ds_q already carries alpha (in wq_i)
    tl.store(prow + SLOT_WV, dvbar * ybar_j, mask=cmj)
    tl.store(prow + SLOT_GAM_P, tl.sum(dy * yhat_j, axis=1), mask=cmj)
    tl.store(prow + SLOT_BET_P, tl.sum(dy, axis=1), mask=cmj)


@size_jit
def bwd_gate_kernel(
    xh_ptr, xw_ptr, gh_ptr, gw_ptr, rp_ptr, cq_ptr, pooled_ptr, stats_ptr, dyhat_ptr, s12_ptr,
    dps_ptr, dxh_ptr, dxw_ptr, scr_h_ptr, scr_w_ptr, part_ptr,
    w0, w1, w2, w3, bias0, bias1, bias2, bias3, k0, k1, k2, k3,
    gam_h_ptr, bet_h_ptr, gam_w_ptr, bet_w_ptr, eps_h, eps_w, hq, wq, nq, HP, WP, inv_h, inv_w, inv_cn,
    C: tl.constexpr, Cg: tl.constexpr, WH: tl.constexpr, WW: tl.constexpr, NSLOT: tl.constexpr,
    NG: tl.constexpr, CGB: tl.constexpr, LB: tl.constexpr, CFB: tl.constexpr, NBP: tl.constexpr,
    KMAX: tl.constexpr, GAL: tl.constexpr, NAL: tl.constexpr,
):
    """SMSA backward of one (sample, channel group, axis); grid (B * NG * 2,), program
    ``(b * NG + g) * 2 + axis`` (axis 0: the H gate, 1: the W gate).

    1. dP, the gradient of the pooled tokens, from the GroupNorm(1) backward:
       dP = rstd * (d y_hat - mean(d y_hat) - y_hat * mean(d y_hat * y_hat)), means over
       the sample (from the per-channel sums). The H program stores dP / area for dx.
    2. d a_h[h] = G_H[h] + sum_j dP[i(h), j] / area * R[h, j]  (axis 0, R from the
       prefix sums RP), or d a_w[w] = G_W[w] + sum_i dP[i, j(w)] / area * CQ[i, w].
    3. sigmoid and GroupNorm backward -> du (conv output gradient), via scratch to the
       conv backward: dX[m] = sum_t w[t] du[m - t + P], dw[t] = sum_l du[l] X[l + t - P].

    Parameter gradients go to part (B, 2, C, NSLOT): plane 0 holds the PCSA slots (written
    by the PCSA backward) and the H gate's, plane 1 the W gate's; every slot a plane does
    not own is written as zero here, so one sum over (B, 2) gives the totals.
    """
    pid = tl.program_id(0)
    H = hq * GAL
    W = wq * GAL
    N = nq * NAL
    axis = pid % 2
    b = pid // 2 // NG
    g = pid // 2 % NG
    h_axis = axis == 0
    inv_area = 1.0 / (WH * WW)
    # Per-axis geometry: L the axis length, WL its window, LP its window count, M the
    # window count of the other axis; token n = (l // WL) * sn_l + m * sn_m; the window
    # partial sums (RP or CQ) of (c, l, m) at c * ps_c + l * ps_l + m * ps_m.
    L = tl.where(h_axis, H, W)
    WL = tl.where(h_axis, WH, WW)
    LP = tl.where(h_axis, HP, WP)
    M = tl.where(h_axis, WP, HP)
    sn_l = tl.where(h_axis, WP, 1)
    sn_m = tl.where(h_axis, 1, WP)
    ps_c = tl.where(h_axis, H * WP, HP * W)
    ps_l = tl.where(h_axis, WP, 1)
    ps_m = tl.where(h_axis, 1, W)
    win_ptr = tl.where(h_axis, rp_ptr, cq_ptr)
    src_ptr = tl.where(h_axis, xh_ptr, xw_ptr)
    scr_ptr = tl.where(h_axis, scr_h_ptr, scr_w_ptr)
    # Sample-wide means of the GroupNorm(1) backward, from the per-channel sums.
    cf = tl.arange(0, CFB)
    m1 = tl.sum(tl.load(s12_ptr + (2 * b) * C + cf, mask=cf < C, other=0.0), axis=0) * inv_cn
    m2 = tl.sum(tl.load(s12_ptr + (2 * b + 1) * C + cf, mask=cf < C, other=0.0), axis=0) * inv_cn
    mean = tl.load(stats_ptr + 2 * b)
    rstd = tl.load(stats_ptr + 2 * b + 1)
    cl = tl.arange(0, CGB)
    cm = cl < Cg
    rowc = b * C + g * Cg + cl
    if axis == 0:
        n = tl.arange(0, NBP)
        mt = cm[:, None] & (n < N)[None, :]
        offs = rowc[:, None] * N + n[None, :]
        y_hat = (tl.load(pooled_ptr + offs, mask=mt, other=0.0) - mean) * rstd
        dyh = tl.load(dyhat_ptr + offs, mask=mt, other=0.0)
        tl.store(dps_ptr + offs, rstd * (dyh - m1 - y_hat * m2) * inv_area, mask=mt)
    # d a along this axis.
    pos = tl.arange(0, LB)
    valid = cm[:, None] & (pos < L)[None, :]
    g_sum = tl.where(h_axis, gh_ptr, gw_ptr)
    da = tl.load(g_sum + rowc[:, None] * L + pos[None, :], mask=valid, other=0.0)
    in_win = valid & (pos < LP * WL)[None, :]
    tok_l = rowc[:, None] * N + ((pos // WL) * sn_l)[None, :]
    win_l = win_ptr + rowc[:, None] * ps_c + (pos * ps_l)[None, :]
    for m in range(M):
        tok = tok_l + m * sn_m
        y_hat = (tl.load(pooled_ptr + tok, mask=in_win, other=0.0) - mean) * rstd
        dyh = tl.load(dyhat_ptr + tok, mask=in_win, other=0.0)
        dp = rstd * (dyh - m1 - y_hat * m2) * inv_area
        part_sum = tl.load(win_l + m * ps_m, mask=in_win, other=0.0)
        # Along H the window sums are stored as prefix sums over the window columns.
        part_sum -= tl.load(win_l + (m - 1) * ps_m, mask=in_win & (h_axis & (m > 0)), other=0.0)
        da += dp * part_sum
    # Gate backward: sigmoid, then the group's GroupNorm.
    w_ptr = select4(g, w0, w1, w2, w3)
    ks = select4(g, k0, k1, k2, k3)
    u_hat, rstd_u, gam, a = gate_recompute(
        src_ptr, b, L, g, w_ptr, select4(g, bias0, bias1, bias2, bias3), ks,
        tl.where(h_axis, gam_h_ptr, gam_w_ptr), tl.where(h_axis, bet_h_ptr, bet_w_ptr), tl.where(h_axis, eps_h, eps_w),
        C, Cg, CGB, LB, KMAX,
    )
    dz = tl.where(valid, da * a * (1.0 - a), 0.0)
    du_hat = dz * gam[:, None]
    count = Cg * L
    mu1 = tl.sum(tl.sum(du_hat, axis=1), axis=0) / count
    mu2 = tl.sum(tl.sum(du_hat * u_hat, axis=1), axis=0) / count
    du = tl.where(valid, rstd_u * (du_hat - mu1 - u_hat * mu2), 0.0)
    row = rowc[:, None] * L
    tl.store(scr_ptr + row + pos[None, :], du, mask=valid)
    # Parameter gradients of this axis into plane `axis`; zeros where the plane does not own.
    prow = part_ptr + ((2 * b + axis) * C + g * Cg + cl) * NSLOT
    zero = tl.zeros([CGB], dtype=tl.float32)
    dgam = tl.sum(dz * u_hat, axis=1)
    dbet = tl.sum(dz, axis=1)
    tl.store(prow + SLOT_GAM_H, tl.where(h_axis, dgam, zero), mask=cm)
    tl.store(prow + SLOT_BET_H, tl.where(h_axis, dbet, zero), mask=cm)
    tl.store(prow + SLOT_GAM_W, tl.where(h_axis, zero, dgam), mask=cm)
    tl.store(prow + SLOT_BET_W, tl.where(h_axis, zero, dbet), mask=cm)
    tl.store(prow + SLOT_CONV_BIAS, tl.sum(du, axis=1), mask=cm)
    if axis == 1:
        tl.store(prow + SLOT_WQ, zero, mask=cm)
        tl.store(prow + SLOT_WK, zero, mask=cm)
        tl.store(prow + SLOT_WV, zero, mask=cm)
        tl.store(prow + SLOT_GAM_P, zero, mask=cm)
        tl.store(prow + SLOT_BET_P, zero, mask=cm)
    tl.debug_barrier()  # du in scratch is read back shifted, by other threads
    dsrc = tl.zeros([CGB, LB], dtype=tl.float32)
    pad = ks // 2
    for t in range(ks):
        wt = tl.load(w_ptr + cl * ks + t, mask=cm, other=0.0).to(tl.float32)
        back = pos - (t - pad)
        dsrc += wt[:, None] * tl.load(scr_ptr + row + back[None, :],
                                      mask=cm[:, None] & ((back >= 0) & (back < L))[None, :], other=0.0)
        fwd = pos + (t - pad)
        xs = tl.load(src_ptr + row + fwd[None, :], mask=cm[:, None] & ((fwd >= 0) & (fwd < L))[None, :], other=0.0)
        tl.store(prow + SLOT_CONV_W + t, tl.sum(du * xs, axis=1), mask=cm)
    dst = tl.where(h_axis, dxh_ptr, dxw_ptr)
    tl.store(dst + row + pos[None, :], dsrc * tl.where(h_axis, inv_w, inv_h), mask=valid)


@size_jit
def bwd_dx_kernel(
    dout_ptr, ah_ptr, aw_ptr, gate_ptr, dps_ptr, dxh_ptr, dxw_ptr, dx_ptr, n_cblocks,
    hq, wq, sdb, sdc, sdh, sdw, sxb, sxc, sxh, sxw, HP, WP,
    C: tl.constexpr, DU: tl.constexpr, XU: tl.constexpr, AL: tl.constexpr, WH: tl.constexpr, WW: tl.constexpr,
    CB: tl.constexpr, BH: tl.constexpr, BW: tl.constexpr, ONE: tl.constexpr,
):
    """dx = a_h a_w (dout * gate + dP/area) + dX_H/W + dX_W/H (the /area, /W, /H already
    applied by the gate backward). sx.. and XU describe dx."""
    pid = tl.program_id(0)
    H = hq * AL
    W = wq * AL
    SDB, SDC, SDH, SDW = strides4(sdb, sdc, sdh, sdw, DU, AL)
    SXB, SXC, SXH, SXW = strides4(sxb, sxc, sxh, sxw, XU, AL)
    b = pid // n_cblocks
    c = (pid % n_cblocks) * CB + tl.arange(0, CB)
    cm = c < C
    rowc = b * C + c
    w = tl.arange(0, BW)
    wm = w < W
    rows = tl.arange(0, BH)
    gate = tl.load(gate_ptr + rowc, mask=cm, other=0.0)
    mcw = cm[:, None] & wm[None, :]
    aw_t = tl.load(aw_ptr + rowc[:, None] * W + w[None, :], mask=mcw, other=0.0)
    dxw_t = tl.load(dxw_ptr + rowc[:, None] * W + w[None, :], mask=mcw, other=0.0)
    w_in = w < WP * WW
    tok = dps_ptr + rowc[:, None, None] * (HP * WP) + (w // WW)[None, None, :]
    src = dout_ptr + b * SDB + c[:, None, None] * SDC + w[None, None, :] * SDW
    dst = dx_ptr + b * SXB + c[:, None, None] * SXC + w[None, None, :] * SXW
    for step in range(0, 1 if ONE else tl.cdiv(H, BH)):  # ONE: the whole height in one block
        h = step * BH + rows
        hm = h < H
        mch = cm[:, None] & hm[None, :]
        m = mch[:, :, None] & wm[None, None, :]
        ah_t = tl.load(ah_ptr + rowc[:, None] * H + h[None, :], mask=mch, other=0.0)
        dxh_t = tl.load(dxh_ptr + rowc[:, None] * H + h[None, :], mask=mch, other=0.0)
        dv = tl.load(src + h[None, :, None] * SDH, mask=m, other=0.0).to(tl.float32)
        pm = m & (h < HP * WH)[None, :, None] & w_in[None, None, :]
        dp = tl.load(tok + ((h // WH) * WP)[None, :, None], mask=pm, other=0.0)
        res = ah_t[:, :, None] * aw_t[:, None, :] * (dv * gate[:, None, None] + dp) \
            + dxh_t[:, :, None] + dxw_t[:, None, :]
        tl.store(dst + h[None, :, None] * SXH, res.to(dx_ptr.dtype.element_ty), mask=m)


@size_jit
def bwd_param_kernel(
    part_ptr, out_ptr, n_rows, k0, k1, k2, k3,
    C: tl.constexpr, Cg: tl.constexpr, NSLOT: tl.constexpr,
    OFF_W1: tl.constexpr, OFF_W2: tl.constexpr, OFF_W3: tl.constexpr, OFF_B: tl.constexpr,
    CBLK: tl.constexpr, SB: tl.constexpr, RBLK: tl.constexpr,
):
    """Sum the per-sample parameter gradients part (n_rows = 2B, C, NSLOT) over rows and
    write them, cast to the parameters' dtype, into one flat buffer laid out like the
    parameter list: conv weights of groups 0..3 (offsets 0, OFF_W1.., each (Cg, 1, k)),
    conv biases (OFF_B, C), then norm_h w/b, norm_w w/b, norm_pcsa w/b, q, k, v (C each).
    """
    c = tl.program_id(0) * CBLK + tl.arange(0, CBLK)
    cm = c < C
    s = tl.arange(0, SB)
    rr = tl.arange(0, RBLK)
    cs = c[:, None] * NSLOT + s[None, :]
    m2 = cm[:, None] & (s < NSLOT)[None, :]
    acc = tl.zeros([CBLK, SB], dtype=tl.float32)
    for r0 in range(0, n_rows, RBLK):
        rows = r0 + rr
        v = tl.load(part_ptr + rows[:, None, None] * (C * NSLOT) + cs[None, :, :],
                    mask=(rows < n_rows)[:, None, None] & m2[None, :, :], other=0.0)
        acc += tl.sum(v, axis=0)
    g = c // Cg
    cl = c - g * Cg
    ks = tl.where(g == 0, k0, tl.where(g == 1, k1, tl.where(g == 2, k2, k3)))
    w_off = tl.where(g == 0, 0, tl.where(g == 1, OFF_W1, tl.where(g == 2, OFF_W2, OFF_W3)))
    tap = s[None, :] - SLOT_CONV_W
    dest = (w_off + cl * ks)[:, None] + tap  # conv weight taps
    ok = (tap >= 0) & (tap < ks[:, None])
    # Per-channel slots: bias, then the 9 vectors of C in parameter-list order.
    block = tl.zeros([SB], dtype=tl.int32)  # SLOT_CONV_BIAS -> 0
    block = tl.where(s == SLOT_GAM_H, 1, block)
    block = tl.where(s == SLOT_BET_H, 2, block)
    block = tl.where(s == SLOT_GAM_W, 3, block)
    block = tl.where(s == SLOT_BET_W, 4, block)
    block = tl.where(s == SLOT_GAM_P, 5, block)
    block = tl.where(s == SLOT_BET_P, 6, block)
    block = tl.where(s == SLOT_WQ, 7, block)
    block = tl.where(s == SLOT_WK, 8, block)
    block = tl.where(s == SLOT_WV, 9, block)
    per_c = OFF_B + c[:, None] + C * block[None, :]
    dest = tl.where(s[None, :] < SLOT_CONV_W, per_c, dest)
    ok = ok | (s[None, :] < SLOT_CONV_W)
    tl.store(out_ptr + dest, acc.to(out_ptr.dtype.element_ty), mask=m2 & ok)
