"""Compile the fused SCSA kernels offline (no GPU) for sm_90 and summarise each kernel's
global loads and stores (PTX vector widths), registers and stack (cuobjdump), to compare two
trees without device time (issue 28: did the run-time sizes cost vector loads or registers?).

Uses the Triton on this machine (its ptxas and cuobjdump); the device may run another
Triton version, so read the figures as a comparison between trees, not as the device's.

    PYTHONPATH=OLD python3 benchmarks/scsa_ptx_offline.py 32x64x80x80,32x128x40x40 fp16 > old.json
    PYTHONPATH=.   python3 benchmarks/scsa_ptx_offline.py 32x64x80x80,32x128x40x40 fp16 > new.json
    python3 benchmarks/scsa_ptx_offline.py --compare old.json new.json
"""
import collections, json, os, re, subprocess, sys, tempfile, time
import torch
import triton
from triton.backends.compiler import GPUTarget
from scsa_yolo.nn import scsa_fast
from scsa_yolo.nn.scsa import SCSA

BIN = os.path.join(os.path.dirname(triton.__file__), "backends/nvidia/bin")
TYPES = {torch.float16: "*fp16", torch.bfloat16: "*bf16", torch.float32: "*fp32"}

def sig_of(fn, args, consts, sizes):
    sig, cx, attrs = {}, {}, {}
    names = fn.arg_names
    for i, (name, a) in enumerate(zip(names, args)):
        if isinstance(a, scsa_fast._Seg):
            sig[name] = "*fp32"; attrs[(i,)] = [["tt.divisibility", 16]]
        elif isinstance(a, torch.Tensor):
            sig[name] = TYPES[a.dtype]; attrs[(i,)] = [["tt.divisibility", 16]]
        elif isinstance(a, float):
            sig[name] = "fp32"
        else:
            if name not in sizes and a == 1:
                sig[name] = "constexpr"; cx[name] = 1
            else:
                sig[name] = "i32"
                if name not in sizes and a % 16 == 0:
                    attrs[(i,)] = [["tt.divisibility", 16]]
    opts = {}
    for name in names[len(args):]:
        sig[name] = "constexpr"; cx[name] = consts[name]
    return sig, cx, attrs, {"num_warps": consts.get("num_warps", 4)}

def launches(shape, dtype, cl):
    layer = SCSA(shape[1])
    cfg = scsa_fast._config(layer)
    x = torch.empty(shape, dtype=dtype, device="meta")
    if cl:
        x = x.to(memory_format=torch.channels_last)
    p = scsa_fast._Plan(cfg, x, torch.float32)
    prm = scsa_fast._Params(tuple(t.to("meta") for t in scsa_fast._params(layer)), len(cfg.kernel_sizes))
    out = torch.empty_like(x)
    k = scsa_fast._kernels()
    res = [(getattr(k.fwd, n), a, c) for (n, g, c), a in zip(p.split, scsa_fast._split_args(cfg, x, out, prm, p))]
    fw, g = p.fws_in_bwd, p.bws
    dout = torch.empty_like(x)
    sd = tuple(dout.stride())
    if hasattr(p, "bwd_for"):
        bd = p.bwd_for(sd)
        kb, bs, kd, ds = bd["k_bred"], bd["bred_sizes"], bd["k_dx"], bd["dx_sizes"]
        ps, gs = p.bpcsa_sizes, p.bgate_sizes
    else:
        sdd = dict(SDB=sd[0], SDC=sd[1], SDH=sd[2], SDW=sd[3])
        kb, bs = {**p.k_bred, **sdd}, []
        sx = p.so
        kd, ds = dict(C=p.C, H=p.H, W=p.W, **sdd, SXB=sx[0], SXC=sx[1], SXH=sx[2], SXW=sx[3], **p.dx_tiles), []
        ps, gs = [], []
    res.append((k.bwd.bwd_reduce_kernel, [x, dout, fw["ah"], fw["aw"], fw["gate"], g["dgate"], g["gh"], g["gw"], g["rp"], g["cq"], p.ncb_bred, *bs], kb))
    res.append((k.bwd.bwd_pcsa_kernel, [fw["pooled"], fw["stats"], prm.gam_p, prm.bet_p, prm.wq, prm.wk, prm.wv, fw["gate"], fw["o"], fw["lse"],
             g["dgate"], g["dyhat"], g["s12"], g["part"], p.alpha, p.ncb_btok, *ps], p.k_bpcsa))
    res.append((k.bwd.bwd_gate_kernel, [fw["xh"], fw["xw"], g["gh"], g["gw"], g["rp"], g["cq"], fw["pooled"], fw["stats"], g["dyhat"], g["s12"],
             g["dps"], g["dxh"], g["dxw"], g["scr_h"], g["scr_w"], g["part"], *prm.conv_w, *prm.conv_b, *p.ks,
             prm.gam_h, prm.bet_h, prm.gam_w, prm.bet_w, 1e-5, 1e-5, *gs], p.k_bgate))
    res.append((k.bwd.bwd_dx_kernel, [dout, fw["ah"], fw["aw"], fw["gate"], g["dps"], g["dxh"], g["dxw"], dout, p.ncb_dx, *ds], kd))
    flat = torch.empty(p.param_numel, device="meta", dtype=p.pdtype)
    res.append((k.bwd.bwd_param_kernel, [g["part"], flat, 2 * p.B, *p.ks], p.k_param))
    return res

def compile_sm90(job) -> None:
    """Compile one (kernel, args, constexprs) of :func:`launches` for sm_90 into Triton's
    cache folder, as a GPU's first launch would (the offline compile benchmarks' unit)."""
    fn, args, consts = job
    sizes = getattr(scsa_fast._kernels().fwd, "SIZE_ARGS", ())
    sig, cx, attrs, opts = sig_of(fn, args, dict(consts), sizes)
    triton.compile(triton.compiler.ASTSource(fn=fn, signature=sig, constexprs=cx, attrs=attrs),
                   target=GPUTarget("cuda", 90, 32), options=opts)


def publish(text: str, out, name: str) -> None:
    """Print a benchmark's Markdown and, given an output folder, write it there as ``name``."""
    print(text)
    if out:
        out.mkdir(parents=True, exist_ok=True)
        (out / name).write_text(text)


def summarise(ptx):
    return dict(collections.Counter(re.findall(r"(?:ld|st)\.global[.\w]*", ptx)))

def compare(old_path: str, new_path: str) -> None:
    a, b = json.load(open(old_path)), json.load(open(new_path))
    print("| shape:kernel | registers old / new | stack old / new | global loads/stores |")
    print("|---|---|---|---|")
    for k in a:
        same = "same" if a[k]["mem"] == b[k]["mem"] else f"old {a[k]['mem']}; new {b[k]['mem']}"
        print(f"| {k} | {a[k]['regs'][0]} / {b[k]['regs'][0]} | {a[k]['regs'][1]} / {b[k]['regs'][1]} | {same} |")


def main():
    if sys.argv[1] == "--compare":
        compare(sys.argv[2], sys.argv[3])
        return
    shapes = [tuple(int(v) for v in s.split("x")) for s in sys.argv[1].split(",")]
    dtype = {"fp16": torch.float16, "fp32": torch.float32}[sys.argv[2]]
    cl = len(sys.argv) > 3 and sys.argv[3] == "cl"
    sizes = getattr(scsa_fast._kernels().fwd, "SIZE_ARGS", ())
    out = {}
    for shape in shapes:
        for fn, args, consts in launches(shape, dtype, cl):
            consts = dict(consts)
            sig, cx, attrs, opts = sig_of(fn, args, consts, sizes)
            src = triton.compiler.ASTSource(fn=fn, signature=sig, constexprs=cx, attrs=attrs)
            t0 = time.time()
            c = triton.compile(src, target=GPUTarget("cuda", 90, 32), options=opts)
            dt = time.time() - t0
            with tempfile.NamedTemporaryFile(suffix=".cubin") as f:
                f.write(c.asm["cubin"]); f.flush()
                ru = subprocess.run([f"{BIN}/cuobjdump", "--dump-resource-usage", f.name], capture_output=True, text=True).stdout
            regs = re.search(r"REG:(\d+)", ru); stack = re.search(r"STACK:(\d+)", ru)
            out[f"{'x'.join(map(str, shape))}:{fn.fn.__name__}"] = dict(mem=summarise(c.asm["ptx"]), regs=(int(regs.group(1)) if regs else None, int(stack.group(1)) if stack else None), compile_s=round(dt, 2))
    print(json.dumps(out))

if __name__ == "__main__":
    main()
