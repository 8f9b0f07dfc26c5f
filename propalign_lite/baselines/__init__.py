"""Baselines the paper compares against: SCOT, the cross-modal VAE and scGLUE.

* :func:`scot_match` / :func:`scot_match_groups` -- Gromov-Wasserstein OT on the raw data
  (:mod:`propalign_lite.baselines.scot`); returns couplings directly.
* :class:`CrossModalVAE` -- two VAEs with a shared latent space, a treatment classifier and a
  modality classifier on the latent (:mod:`propalign_lite.baselines.vae`); returns embeddings,
  to be matched with :func:`propalign_lite.matchers.match`.
* :func:`fit_scglue` -- the scGLUE graph-linked VAE through the optional ``scglue`` package
  (:mod:`propalign_lite.baselines.glue`); returns embeddings.
"""
from .glue import GlueResult, build_guidance_graph, fit_scglue, split_citeseq
from .scot import (SCOTConvergenceError, default_k, scot_graph_distances, scot_match,
                   scot_match_groups)
from .vae import CrossModalVAE

__all__ = ["scot_match", "scot_match_groups", "scot_graph_distances", "default_k",
           "SCOTConvergenceError", "CrossModalVAE", "fit_scglue", "build_guidance_graph",
           "split_citeseq", "GlueResult"]
