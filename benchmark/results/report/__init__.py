"""Publishing the results: one figure style (palette, axes, saving) and the LaTeX and HTML table writers.

Kept free of torch; matplotlib is imported only where a figure is drawn, so writing a table stays light.
"""
