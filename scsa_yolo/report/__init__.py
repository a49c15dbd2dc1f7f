"""Reports: run records -> the paper's table styles as Markdown, LaTeX, HTML and CSV, plus a plot.

:mod:`.load` reads records into rows, :mod:`.tables` builds a style's table (pandas),
:mod:`.stats` gives the intervals, :mod:`.render` writes a format, :mod:`.plot` draws,
:mod:`.build` does all of it. The style and format names live here, without pandas, so
``scsa-yolo report --help`` starts fast.
"""

#: report styles: the paper's Table 4, 3, 2, the SCSA ablation (its Table 1), Table 6
#: (instance segmentation: box and mask AP) and the learned gates of the placements that have them
STYLES = ("table4", "table3", "table2", "ablation", "table6", "gates")
#: The paper's table names that differ from our style names (its Table 1 is the ablation study).
STYLE_ALIASES = {"table1": "ablation"}
#: Every name a user may give for a style: each style followed by its aliases.
STYLE_NAMES = tuple(name for style in STYLES
                    for name in (style, *(alias for alias, target in STYLE_ALIASES.items() if target == style)))
#: output formats
FORMATS = ("md", "latex", "html", "csv")
