"""Re-runs of the experiments of Nielsen et al. (NeurIPS 2025); CLI: ``repscope paper …``.

* :mod:`.table1` — KL → 0 with dissimilar representations (Table 1);
* :mod:`.width_sweep` — trained MLPs of growing width (Fig. 3 right, Fig. 16 right);
* :mod:`.perturbed` — perturbed constructed models (Fig. 16 left);
* :mod:`.cifar10` — ResNet-18 on CIFAR-10 (Fig. 3 left, Fig. 5).

Every experiment writes tidy, resumable CSV tables (one row per model pair)
and PNG + SVG figures into an output directory; a re-run skips finished work.
Modules are imported lazily so that ``import repscope.identifiability`` stays
free of torch and matplotlib.
"""
