"""Backward kernels of the fused SCSA: two passes over the big tensors plus two tiny kernels.

With s = a_h[h] * a_w[w] and out = x * s * gate, the gradient of x is

    dx = s * (dout * gate + dP[i(h), j(w)] / area) + dX_H[h] / W + dX_W[w] / H

(dP: gradient of the pooled tokens, zero outside the floor-rounded windows; dX_H, dX_W:
gradients of the two axis means). It needs no x, so the backward is

1. :func:`bwd_reduce_kernel` reads dout and x once and produces every reduction of
   ``dout * x`` the small graph needs: dgate (B, C), G_H (B, C, H), G_W (B, C, W), plus the
   window partial sums R (B, C, H, WP) = sum over a window's columns of x * a_w and
   Cc (B, C, HP, W) = sum over a window's rows of x * a_h (the pooling's share of
   d a_h / d a_w, needed once dP is known).
2. :func:`bwd_pcsa_kernel`   gradient through the channel attention -> d y_hat (B, C, N),
   per-channel parameter gradients, and per-channel sums for the GroupNorm(1) backward.
3. :func:`bwd_gate_kernel`   finishes dP, then d a_h, d a_w -> SMSA gate backward ->
   dX_H, dX_W and the SMSA parameter gradients.
4. :func:`bwd_dx_kernel`     reads dout once, writes dx.

Parameter gradients are written per sample into one (B, C, NSLOT) float32 buffer (slot
layout in :mod:`scsa_yolo.nn.scsa_fast`), which a single ``sum(0)`` reduces, so the result
is deterministic (no atomics).
"""

from __future__ import annotations

import triton
import triton.language as tl

from .forward import gate_recompute, pcsa_tokens

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


@triton.jit
def bwd_reduce_kernel(
    x_ptr, dout_ptr, ah_ptr, aw_ptr, gate_ptr,
    dgate_ptr, gh_ptr, gw_ptr, r_ptr, cc_ptr,
    C, H, W, sxb, sxc, sxh, sxw, sdb, sdc, sdh, sdw,
    WH, WW, HP, WP, NI, NJ, n_cblocks,
    CB: tl.constexpr, RB: tl.constexpr, JB: tl.constexpr, TB: tl.constexpr,
):
    """All reductions of dout and x for one (b, CB channels); grid (B * n_cblocks,).

    dgate[b, c]  = sum_hw dout * x * a_h * a_w
    G_H[b, c, h] = gate * sum_w dout * x * a_w
    G_W[b, c, w] = gate * sum_h dout * x * a_h
    R[b, c, h, j]  = sum_{w in window column j} x * a_w   (h < HP*WH, j < WP)
    Cc[b, c, i, w] = sum_{h in window row i} x * a_h       (i < HP, w < WP*WW)

    Tile (CB*RB, JB, TB) as in the pooling kernel, but covering the whole map: NI
    window rows and NJ window columns, the last ones possibly partial.
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
    colm = (j[:, None] < NJ) & (t[None, :] < WW) & (col < W)
    mq = cm[:, None, None] & colm[None, :, :]
    aw_t = tl.load(aw_ptr + (b * C + c)[:, None, None] * W + col[None, :, :], mask=mq, other=0.0)
    gate_q = tl.load(gate_ptr + b * C + c, mask=cm, other=0.0)
    # Flattened (JB*TB) column index for the per-channel (CB, JB*TB) results.
    cc = c0 + tl.arange(0, CB)
    ccm = cc < C
    k = tl.arange(0, JB * TB)
    kj = k // TB
    kt = k % TB
    kcol = kj * WW + kt
    kvalid = (kt < WW) & (kcol < W) & (kj < NJ)
    kwin = kvalid & (kj < WP)
    gw_acc = tl.zeros([CB, JB * TB], dtype=tl.float32)
    dg_acc = tl.zeros([CB * RB], dtype=tl.float32)
    rm0 = r < WH
    xbase = x_ptr + b * sxb + c[:, None, None] * sxc + col[None, :, :] * sxw
    dbase = dout_ptr + b * sdb + c[:, None, None] * sdc + col[None, :, :] * sdw
    for i in range(NI):
        h = i * WH + r
        rm = rm0 & (h < H)
        m = mq & rm[:, None, None]
        xv = tl.load(xbase + h[:, None, None] * sxh, mask=m, other=0.0).to(tl.float32)
        dv = tl.load(dbase + h[:, None, None] * sdh, mask=m, other=0.0).to(tl.float32)
        ah_q = tl.load(ah_ptr + (b * C + c) * H + h, mask=cm & rm, other=0.0)
        xa = xv * aw_t
        row = tl.sum(tl.sum(dv * xa, axis=2), axis=1)  # sum_w dout x a_w, (CB*RB,)
        tl.store(gh_ptr + (b * C + c) * H + h, row * gate_q, mask=cm & rm)
        dg_acc += row * ah_q
        xh_ = xv * ah_q[:, None, None]
        gw_acc += tl.sum(tl.reshape(dv * xh_, [CB, RB, JB * TB]), axis=1)
        if i < HP:
            rj = tl.sum(xa, axis=2)  # (CB*RB, JB)
            tl.store(r_ptr + ((b * C + c) * H + h)[:, None] * WP + j[None, :], rj,
                     mask=(cm & rm)[:, None] & (j < WP)[None, :])
            ci = tl.sum(tl.reshape(xh_, [CB, RB, JB * TB]), axis=1)  # (CB, JB*TB)
            tl.store(cc_ptr + ((b * C + cc) * HP + i)[:, None] * W + kcol[None, :], ci,
                     mask=ccm[:, None] & kwin[None, :])
    gate_c = tl.load(gate_ptr + b * C + cc, mask=ccm, other=0.0)
    tl.store(gw_ptr + (b * C + cc)[:, None] * W + kcol[None, :], gw_acc * gate_c[:, None],
             mask=ccm[:, None] & kvalid[None, :])
    tl.store(dgate_ptr + b * C + cc, tl.sum(tl.reshape(dg_acc, [CB, RB]), axis=1), mask=ccm)


@triton.jit
def bwd_pcsa_kernel(
    pooled_ptr, stats_ptr, gam_ptr, bet_ptr, wq_ptr, wk_ptr, wv_ptr,
    gate_ptr, o_ptr, lse_ptr, dgate_ptr,
    dyhat_ptr, s12_ptr, part_ptr,
    C, N, alpha, inv_n, NSLOT, n_cblocks,
    CB: tl.constexpr, NB: tl.constexpr, PREC: tl.constexpr,
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
    b = pid // n_cblocks
    blk = pid % n_cblocks
    mean = tl.load(stats_ptr + 2 * b)
    rstd = tl.load(stats_ptr + 2 * b + 1)
    cj, cmj, yj, yhat_j = pcsa_tokens(pooled_ptr, gam_ptr, bet_ptr, b, blk * CB, C, N, mean, rstd, CB, NB)
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
        ci, cmi, yi, _ = pcsa_tokens(pooled_ptr, gam_ptr, bet_ptr, b, d0, C, N, mean, rstd, CB, NB)
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
    prow = part_ptr + offj * NSLOT
    tl.store(prow + SLOT_WQ, dwq * alpha, mask=cmj)
    tl.store(prow + SLOT_WK, dwk, mask=cmj)  # ds_q already carries alpha (in wq_i)
    tl.store(prow + SLOT_WV, dvbar * ybar_j, mask=cmj)
    tl.store(prow + SLOT_GAM_P, tl.sum(dy * yhat_j, axis=1), mask=cmj)
    tl.store(prow + SLOT_BET_P, tl.sum(dy, axis=1), mask=cmj)


@triton.jit
def _gate_bwd_axis(
    src_ptr, scratch_ptr, da, b, C, L, Cg, g, w_ptr, bias_ptr, gam_ptr, bet_ptr, eps,
    KS: tl.constexpr, CGB: tl.constexpr, LB: tl.constexpr,
):
    """From d a (CGB, LB) to d u (gradient of the conv output), through sigmoid and the
    group's GroupNorm. Stores d u into scratch (for the shifted reads of the conv
    backward); returns (du, dgamma, dbeta)."""
    cl = tl.arange(0, CGB)
    cm = cl < Cg
    c = g * Cg + cl
    pos = tl.arange(0, LB)
    valid = cm[:, None] & (pos < L)[None, :]
    u_hat, rstd, gam, a = gate_recompute(src_ptr, b, C, L, Cg, g, w_ptr, bias_ptr, gam_ptr, bet_ptr, eps,
                                         KS, CGB, LB)
    dz = tl.where(valid, da * a * (1.0 - a), 0.0)
    dgam = tl.sum(dz * u_hat, axis=1)
    dbet = tl.sum(dz, axis=1)
    du_hat = dz * gam[:, None]
    count = Cg * L
    m1 = tl.sum(tl.sum(du_hat, axis=1), axis=0) / count
    m2 = tl.sum(tl.sum(du_hat * u_hat, axis=1), axis=0) / count
    du = tl.where(valid, rstd * (du_hat - m1 - u_hat * m2), 0.0)
    tl.store(scratch_ptr + (b * C + c)[:, None] * L + pos[None, :], du, mask=valid)
    return du, dgam, dbet


@triton.jit
def _gate_bwd_group(
    xh_ptr, xw_ptr, gh_ptr, gw_ptr, r_ptr, cc_ptr, dps_ptr, scr_h_ptr, scr_w_ptr,
    dxh_ptr, dxw_ptr, part_ptr, w_ptr, bias_ptr,
    gam_h_ptr, bet_h_ptr, gam_w_ptr, bet_w_ptr,
    b, g, C, H, W, Cg, N, HP, WP, WH, WW, inv_w, inv_h, eps_h, eps_w, NSLOT,
    KS: tl.constexpr, CGB: tl.constexpr, HB: tl.constexpr, WB: tl.constexpr,
):
    cl = tl.arange(0, CGB)
    cm = cl < Cg
    c = g * Cg + cl
    rowc = b * C + c
    tok = rowc[:, None] * N
    # d a_h = G_H + sum_j dP[i(h), j] / area * R[h, j]   (dps already holds dP / area)
    hh = tl.arange(0, HB)
    vh = cm[:, None] & (hh < H)[None, :]
    da_h = tl.load(gh_ptr + rowc[:, None] * H + hh[None, :], mask=vh, other=0.0)
    in_h = vh & (hh < HP * WH)[None, :]
    ih = (hh // WH) * WP
    for jj in range(WP):
        dp = tl.load(dps_ptr + tok + (ih + jj)[None, :], mask=in_h, other=0.0)
        rr = tl.load(r_ptr + (rowc[:, None] * H + hh[None, :]) * WP + jj, mask=in_h, other=0.0)
        da_h += dp * rr
    # d a_w = G_W + sum_i dP[i, j(w)] / area * Cc[i, w]
    ww = tl.arange(0, WB)
    vw = cm[:, None] & (ww < W)[None, :]
    da_w = tl.load(gw_ptr + rowc[:, None] * W + ww[None, :], mask=vw, other=0.0)
    in_w = vw & (ww < WP * WW)[None, :]
    jw = ww // WW
    for ii in range(HP):
        dp = tl.load(dps_ptr + tok + (ii * WP + jw)[None, :], mask=in_w, other=0.0)
        cv = tl.load(cc_ptr + (rowc[:, None] * HP + ii) * W + ww[None, :], mask=in_w, other=0.0)
        da_w += dp * cv
    du_h, dgam_h, dbet_h = _gate_bwd_axis(xh_ptr, scr_h_ptr, da_h, b, C, H, Cg, g, w_ptr, bias_ptr,
                                          gam_h_ptr, bet_h_ptr, eps_h, KS, CGB, HB)
    du_w, dgam_w, dbet_w = _gate_bwd_axis(xw_ptr, scr_w_ptr, da_w, b, C, W, Cg, g, w_ptr, bias_ptr,
                                          gam_w_ptr, bet_w_ptr, eps_w, KS, CGB, WB)
    prow = part_ptr + rowc * NSLOT
    tl.store(prow + SLOT_GAM_H, dgam_h, mask=cm)
    tl.store(prow + SLOT_BET_H, dbet_h, mask=cm)
    tl.store(prow + SLOT_GAM_W, dgam_w, mask=cm)
    tl.store(prow + SLOT_BET_W, dbet_w, mask=cm)
    tl.store(prow + SLOT_CONV_BIAS, tl.sum(du_h, axis=1) + tl.sum(du_w, axis=1), mask=cm)
    tl.debug_barrier()  # d u in scratch is read back shifted, by other threads
    # Conv backward: u[l] = sum_t w[t] X[l + t - P] + bias  =>
    #   dX[m] = sum_t w[t] du[m - t + P],  dw[t] = sum_l du[l] X[l + t - P].
    dxh = tl.zeros([CGB, HB], dtype=tl.float32)
    dxw = tl.zeros([CGB, WB], dtype=tl.float32)
    for t in tl.static_range(KS):
        wt = tl.load(w_ptr + cl * KS + t, mask=cm, other=0.0).to(tl.float32)
        sh = hh - (t - KS // 2)
        dxh += wt[:, None] * tl.load(scr_h_ptr + rowc[:, None] * H + sh[None, :],
                                     mask=cm[:, None] & ((sh >= 0) & (sh < H))[None, :], other=0.0)
        sw = ww - (t - KS // 2)
        dxw += wt[:, None] * tl.load(scr_w_ptr + rowc[:, None] * W + sw[None, :],
                                     mask=cm[:, None] & ((sw >= 0) & (sw < W))[None, :], other=0.0)
        fh = hh + (t - KS // 2)
        xs_h = tl.load(xh_ptr + rowc[:, None] * H + fh[None, :], mask=cm[:, None] & ((fh >= 0) & (fh < H))[None, :],
                       other=0.0)
        fw = ww + (t - KS // 2)
        xs_w = tl.load(xw_ptr + rowc[:, None] * W + fw[None, :], mask=cm[:, None] & ((fw >= 0) & (fw < W))[None, :],
                       other=0.0)
        tl.store(prow + SLOT_CONV_W + t, tl.sum(du_h * xs_h, axis=1) + tl.sum(du_w * xs_w, axis=1), mask=cm)
    tl.store(dxh_ptr + rowc[:, None] * H + hh[None, :], dxh * inv_w, mask=vh)
    tl.store(dxw_ptr + rowc[:, None] * W + ww[None, :], dxw * inv_h, mask=vw)


@triton.jit
def bwd_gate_kernel(
    xh_ptr, xw_ptr, gh_ptr, gw_ptr, r_ptr, cc_ptr, pooled_ptr, stats_ptr, dyhat_ptr, s12_ptr,
    dps_ptr, dxh_ptr, dxw_ptr, scr_h_ptr, scr_w_ptr, part_ptr,
    w0, w1, w2, w3, bias0, bias1, bias2, bias3,
    gam_h_ptr, bet_h_ptr, gam_w_ptr, bet_w_ptr,
    C, H, W, Cg, N, HP, WP, WH, WW, inv_area, inv_w, inv_h, inv_cn, eps_h, eps_w, NSLOT,
    K0: tl.constexpr, K1: tl.constexpr, K2: tl.constexpr, K3: tl.constexpr, NG: tl.constexpr,
    CGB: tl.constexpr, HB: tl.constexpr, WB: tl.constexpr, CFB: tl.constexpr, NBP: tl.constexpr,
):
    """SMSA backward for one (sample, channel group); grid (B * NG,).

    First completes the GroupNorm(1) backward of the pooled tokens for the group,
    dP = rstd * (d y_hat - mean(d y_hat) - y_hat * mean(d y_hat * y_hat)) (means over
    the whole sample, from the per-channel sums), and stores dP / area for the dx pass;
    then d a_h, d a_w, the gate backward and the conv backward.
    """
    pid = tl.program_id(0)
    b = pid // NG
    g = pid % NG
    cf = tl.arange(0, CFB)
    s1 = tl.load(s12_ptr + (2 * b) * C + cf, mask=cf < C, other=0.0)
    s2 = tl.load(s12_ptr + (2 * b + 1) * C + cf, mask=cf < C, other=0.0)
    m1 = tl.sum(s1, axis=0) * inv_cn
    m2 = tl.sum(s2, axis=0) * inv_cn
    mean = tl.load(stats_ptr + 2 * b)
    rstd = tl.load(stats_ptr + 2 * b + 1)
    cl = tl.arange(0, CGB)
    cm = cl < Cg
    rowc = b * C + g * Cg + cl
    n = tl.arange(0, NBP)
    m = cm[:, None] & (n < N)[None, :]
    offs = rowc[:, None] * N + n[None, :]
    y_hat = (tl.load(pooled_ptr + offs, mask=m, other=0.0) - mean) * rstd
    dyh = tl.load(dyhat_ptr + offs, mask=m, other=0.0)
    tl.store(dps_ptr + offs, rstd * (dyh - m1 - y_hat * m2) * inv_area, mask=m)
    tl.debug_barrier()  # dps is read back by other threads of this program
    if g == 0:
        _gate_bwd_group(xh_ptr, xw_ptr, gh_ptr, gw_ptr, r_ptr, cc_ptr, dps_ptr, scr_h_ptr, scr_w_ptr,
                        dxh_ptr, dxw_ptr, part_ptr, w0, bias0, gam_h_ptr, bet_h_ptr, gam_w_ptr, bet_w_ptr,
                        b, g, C, H, W, Cg, N, HP, WP, WH, WW, inv_w, inv_h, eps_h, eps_w, NSLOT, K0, CGB, HB, WB)
    if NG > 1:
        if g == 1:
            _gate_bwd_group(xh_ptr, xw_ptr, gh_ptr, gw_ptr, r_ptr, cc_ptr, dps_ptr, scr_h_ptr, scr_w_ptr,
                            dxh_ptr, dxw_ptr, part_ptr, w1, bias1, gam_h_ptr, bet_h_ptr, gam_w_ptr, bet_w_ptr,
                            b, g, C, H, W, Cg, N, HP, WP, WH, WW, inv_w, inv_h, eps_h, eps_w, NSLOT, K1, CGB, HB, WB)
    if NG > 2:
        if g == 2:
            _gate_bwd_group(xh_ptr, xw_ptr, gh_ptr, gw_ptr, r_ptr, cc_ptr, dps_ptr, scr_h_ptr, scr_w_ptr,
                            dxh_ptr, dxw_ptr, part_ptr, w2, bias2, gam_h_ptr, bet_h_ptr, gam_w_ptr, bet_w_ptr,
                            b, g, C, H, W, Cg, N, HP, WP, WH, WW, inv_w, inv_h, eps_h, eps_w, NSLOT, K2, CGB, HB, WB)
    if NG > 3:
        if g == 3:
            _gate_bwd_group(xh_ptr, xw_ptr, gh_ptr, gw_ptr, r_ptr, cc_ptr, dps_ptr, scr_h_ptr, scr_w_ptr,
                            dxh_ptr, dxw_ptr, part_ptr, w3, bias3, gam_h_ptr, bet_h_ptr, gam_w_ptr, bet_w_ptr,
                            b, g, C, H, W, Cg, N, HP, WP, WH, WW, inv_w, inv_h, eps_h, eps_w, NSLOT, K3, CGB, HB, WB)


@triton.jit
def bwd_dx_kernel(
    dout_ptr, ah_ptr, aw_ptr, gate_ptr, dps_ptr, dxh_ptr, dxw_ptr, dx_ptr,
    C, H, W, sdb, sdc, sdh, sdw, sxb, sxc, sxh, sxw, WH, WW, HP, WP, n_cblocks,
    CB: tl.constexpr, BH: tl.constexpr, BW: tl.constexpr,
):
    """dx = a_h a_w (dout * gate + dP/area) + dX_H/W + dX_W/H (the /W, /H already applied)."""
    pid = tl.program_id(0)
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
    jw = w // WW
    w_in = w < WP * WW
    tok = dps_ptr + rowc[:, None, None] * (HP * WP) + jw[None, None, :]
    src = dout_ptr + b * sdb + c[:, None, None] * sdc + w[None, None, :] * sdw
    dst = dx_ptr + b * sxb + c[:, None, None] * sxc + w[None, None, :] * sxw
    for h0 in range(0, H, BH):
        h = h0 + rows
        hm = h < H
        mch = cm[:, None] & hm[None, :]
        m = mch[:, :, None] & wm[None, None, :]
        ah_t = tl.load(ah_ptr + rowc[:, None] * H + h[None, :], mask=mch, other=0.0)
        dxh_t = tl.load(dxh_ptr + rowc[:, None] * H + h[None, :], mask=mch, other=0.0)
        dv = tl.load(src + h[None, :, None] * sdh, mask=m, other=0.0).to(tl.float32)
        pm = m & (h < HP * WH)[None, :, None] & w_in[None, None, :]
        dp = tl.load(tok + ((h // WH) * WP)[None, :, None], mask=pm, other=0.0)
        res = ah_t[:, :, None] * aw_t[:, None, :] * (dv * gate[:, None, None] + dp) \
            + dxh_t[:, :, None] + dxw_t[:, None, :]
        tl.store(dst + h[None, :, None] * sxh, res.to(dx_ptr.dtype.element_ty), mask=m)
