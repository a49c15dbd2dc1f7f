"""AP against throughput, one point per method and model (mean over seeds), one panel per dataset.

Throughput timed on a CPU is noise on a machine of a few shared cores: such a panel says
"CPU, not comparable" on its axis and title, and the PNG's Description says it too. So does
a panel whose throughput a bench timed while several of its runs trained on one GPU
("shared GPU, not comparable").
"""
from __future__ import annotations

from pathlib import Path

from scsa_yolo.atomic import write_file_atomic
from scsa_yolo.report.tables import ReportError, _model_sort_key, aggregate, prepare_frame

MARKERS = "osD^vP*Xh"
#: Legend entries per column (about the height of a panel).
LEGEND_ROWS = 18


CPU_CAVEAT = "CPU, not comparable"
SHARED_CAVEAT = "shared GPU, not comparable"


def _legend_label(method: str) -> str:
    """``-`` -> ``plain``, ``- (ft)`` -> ``plain (ft)``; attention labels as they are."""
    return "plain" + method[1:] if method.startswith("-") else method


def throughput_label(cpu: bool, shared_runs: int = 1) -> str:
    """The x-axis label; CPU timings carry :data:`CPU_CAVEAT` on a second line (one line
    would be wider than a panel), timings of ``shared_runs`` bench runs on one GPU
    :data:`SHARED_CAVEAT`."""
    if cpu:
        return f"throughput (images/s)\n{CPU_CAVEAT}: noise on a few shared cores"
    if shared_runs > 1:
        return f"throughput (images/s)\n{SHARED_CAVEAT}: {shared_runs} runs at once"
    return "throughput (images/s)"


def plot_ap_vs_throughput(rows: list[dict], path: str | Path) -> Path:
    """Write a PNG: x = throughput (images/s), y = AP (%), colour = method, marker = model.

    Raises:
        ReportError: no row has both AP and throughput.
    """
    import matplotlib.pyplot as plt

    fig, description = ap_vs_throughput_figure(rows)
    try:
        # the tight box crops to what is drawn, labels and legend included, whatever the layout did
        return write_file_atomic(path, lambda tmp: fig.savefig(
            tmp, dpi=120, metadata={"Description": description}, bbox_inches="tight", pad_inches=0.1))
    finally:
        plt.close(fig)


def ap_vs_throughput_figure(rows: list[dict]):
    """The figure of :func:`plot_ap_vs_throughput` (the caller closes it) and its PNG description.

    Raises:
        ReportError: no row has both AP and throughput.
    """
    import matplotlib

    matplotlib.use("Agg")  # no display, no GUI toolkit
    import matplotlib.pyplot as plt

    frame = prepare_frame(rows)
    frame = frame.dropna(subset=["AP", "throughput"])
    if frame.empty:
        raise ReportError("nothing to plot: no run has both AP and throughput")
    agg = aggregate(frame, ["block", "model", "method", "method_order"])
    cpu_blocks = set(agg.loc[agg["cpu_timing"].astype(bool), "block"]) if "cpu_timing" in agg else set()
    # per block, the most bench runs that shared a GPU while its throughputs were timed
    shared = agg.groupby("block")["shared_device_slots"].max() if "shared_device_slots" in agg else {}
    shared_blocks = {block: int(n) for block, n in dict(shared).items() if n > 1 and block not in cpu_blocks}
    blocks = list(dict.fromkeys(agg["block"]))
    models = sorted(agg["model"].unique(), key=_model_sort_key)
    methods = list(dict.fromkeys(agg.sort_values("method_order")["method"]))
    colours = {m: plt.get_cmap("tab10")(i % 10) for i, m in enumerate(methods)}
    markers = {m: MARKERS[i % len(MARKERS)] for i, m in enumerate(models)}

    # Constrained layout sizes the panels so that titles, axis labels and the legend outside
    # the panels all fit in the figure (tight_layout with a fixed legend margin clipped a long
    # x label on the left).
    legend_columns = -(-(len(models) + len(methods)) // LEGEND_ROWS)  # a long legend in columns, not taller
    fig, axes = plt.subplots(1, len(blocks), figsize=(5.5 * len(blocks) + 1.8 * legend_columns, 4.2), squeeze=False,
                             layout="constrained")
    for ax, block in zip(axes[0], blocks):
        part = agg[agg["block"] == block]
        for _, rec in part.iterrows():
            ap = 100 * rec["AP_mean"]
            err = 100 * rec["AP_std"] if rec["n"] > 1 and rec["AP_std"] == rec["AP_std"] else None
            ax.errorbar(rec["throughput_mean"], ap, yerr=err, marker=markers[rec["model"]], color=colours[rec["method"]],
                        markersize=8, linestyle="none", capsize=3)
            ax.annotate(_legend_label(rec["method"]), (rec["throughput_mean"], ap), textcoords="offset points", xytext=(5, 4), fontsize=8)
        caveat = CPU_CAVEAT if block in cpu_blocks else SHARED_CAVEAT if block in shared_blocks else None
        ax.set_title(f"{block} ({caveat})" if caveat else block)
        ax.set_xlabel(throughput_label(block in cpu_blocks, shared_blocks.get(block, 1)))
        ax.set_ylabel("AP (%)")
        ax.margins(x=0.15, y=0.1)  # room for the point labels inside the panel
        ax.grid(alpha=0.3)
    handles = [plt.Line2D([], [], marker=markers[m], color="grey", linestyle="none", label=m) for m in models]
    handles += [plt.Line2D([], [], marker="s", color=colours[m], linestyle="none", label=_legend_label(m)) for m in methods]
    fig.legend(handles=handles, loc="outside right center", fontsize=8, frameon=False, ncols=legend_columns)
    description = "AP (%) against throughput (images/s), mean over seeds per method and model"
    if cpu_blocks:
        description += f"; throughput of {', '.join(sorted(cpu_blocks))} timed on a CPU: {CPU_CAVEAT}, no winner"
    if shared_blocks:
        description += (f"; throughput of {', '.join(sorted(shared_blocks))} timed while several bench runs shared "
                        f"the GPU: {SHARED_CAVEAT}, no winner")
    return fig, description
