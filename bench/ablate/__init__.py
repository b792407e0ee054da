"""`bench ablate`: the paper's ablations as data (ablations/*.yaml), run as cached, resumable jobs
(spec.py: what a variant is; jobs.py: training, evaluation and offline scoring of one; tables.py: the
ablation's table, markdown and plot)."""
