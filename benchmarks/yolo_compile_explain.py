"""Graph breaks of a YOLO model under torch.compile, as Ultralytics' trainer compiles it
(``compile=True``: the model's forward on the image batch, training mode, under AMP autocast;
the loss is computed outside the compiled module). ``torch._dynamo.explain`` traces with
Dynamo only (no Inductor), so this takes seconds, not the minutes of a real compile.

For each model prints the number of graphs and breaks and, per distinct break, its reason
and the user frames above it; in three states: a fresh process (nothing ran eagerly on the
device yet, as in the trainer), without autocast, and after one eager call.

    python3 benchmarks/yolo_compile_explain.py [--models yolov8n.yaml,yolov8n-scsa.yaml] [--imgsz 640]

``--inference``: the model in eval mode under no_grad (what ``yolo val/predict compile=True``
compiles), fresh (as Ultralytics compiles it, before any eager call) and after one eager
batch of the same shape (``yolo_e2e.py --prime``): Ultralytics' head computes its anchors,
the graph break, only when the map sizes change.
"""
from __future__ import annotations

import argparse
import sys

import torch


def explain(model, x, autocast: bool) -> list[str]:
    torch._dynamo.reset()
    with torch.autocast(x.device.type, dtype=torch.float16 if x.device.type == "cuda" else torch.bfloat16,
                        enabled=autocast), torch.set_grad_enabled(model.training):
        ex = torch._dynamo.explain(model)(x)
    lines = [f"graphs {ex.graph_count}, breaks {ex.graph_break_count}"]
    seen: dict[str, int] = {}
    for b in ex.break_reasons:
        frames = " <- ".join(f"{f.filename.split('site-packages/')[-1]}:{f.lineno} {f.name}"
                             for f in reversed(b.user_stack[-4:]))
        key = f"{b.reason.strip().splitlines()[0][:300]}\n      at {frames}"
        seen[key] = seen.get(key, 0) + 1
    lines += [f"  {n} x {k}" for k, n in seen.items()]
    return lines


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default="yolov8n.yaml,yolov8n-scsa.yaml")
    ap.add_argument("--imgsz", type=int, default=640)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--inference", action="store_true", help="eval mode: fresh, then after one eager batch")
    args = ap.parse_args()
    from ultralytics import YOLO

    print(f"torch {torch.__version__}, device {args.device}", flush=True)
    x = torch.rand(args.batch, 3, args.imgsz, args.imgsz, device=args.device)
    for name in args.models.split(","):
        try:
            model = YOLO(name).model.to(args.device).train()
        except (FileNotFoundError, KeyError, ValueError) as exc:
            ap.error(f"--models: {name}: {exc}")
        if args.inference:
            model.eval()
            print(f"{name} [inference, fresh]: " + "\n".join(explain(model, x, False)), flush=True)
            with torch.no_grad():
                model(x)
            print(f"{name} [inference, after one eager batch]: " + "\n".join(explain(model, x, False)), flush=True)
            continue
        for p in model.parameters():
            p.requires_grad_(True)
        for state, autocast, eager_first in (("fresh, autocast", True, False), ("no autocast", False, False),
                                             ("after an eager call, autocast", True, True)):
            if eager_first:
                with torch.autocast(args.device, dtype=torch.float16, enabled=args.device == "cuda"):
                    model(x)
            print(f"{name} [{state}]: " + "\n".join(explain(model, x, autocast)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
