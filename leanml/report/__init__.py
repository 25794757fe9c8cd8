"""Reports: figures, tables, the leaderboard, the evaluate summary and convergence overlays.

Kept free of imports: the trial engine imports `leanml.report.pareto`, which must stay light.
"""
