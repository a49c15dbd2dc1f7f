"""Reports: run records -> the paper's table styles as Markdown, LaTeX, HTML and CSV, plus a plot.

:mod:`.load` reads records into rows, :mod:`.tables` builds a style's table (pandas),
:mod:`.stats` gives the intervals, :mod:`.render` writes a format, :mod:`.plot` draws,
:mod:`.build` does all of it. The style and format names live here, without pandas, so
``scsa-yolo report --help`` starts fast.
"""

#: report styles: the paper's Table 4, 3, 2 and the SCSA ablation (its Table 1), and the
#: learned gates of the placements that have them
STYLES = ("table4", "table3", "table2", "ablation", "gates")
#: output formats
FORMATS = ("md", "latex", "html", "csv")
