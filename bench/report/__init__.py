"""`bench report`: one PDF (and a markdown twin) with every committed result (gather.py reads them into
sections, figures.py plots, build.py typesets through reports/report.typ)."""
