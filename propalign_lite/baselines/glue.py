r"""scGLUE baseline: a graph-linked VAE for RNA + protein, through the optional ``scglue`` package.

GLUE (Cao & Gao, 2022) gives every modality its own VAE but ties their *decoders* together
through a **guidance graph** whose nodes are the features of all modalities: a feature's decoder
weights are an embedding :math:`v_f` learned on the graph (neighbouring features get similar
embeddings), and the reconstruction of feature :math:`f` from a cell latent :math:`u` depends on
:math:`u^\top v_f`. A discriminator additionally pushes the cell latents of the two modalities to
be indistinguishable. Unlike the propensity score and the cross-modal VAE it never sees the
treatment / cell-type label; it relies on prior knowledge: which protein is encoded by which gene.

What the paper's official run did (reproduced by :func:`fit_scglue` with its defaults)
--------------------------------------------------------------------------------------
* Input: the GEO CITE-seq AnnData (GEX then ADT columns, ``var["feature_types"]``,
  ``layers["counts"]`` raw counts, ``obs["batch"]``), **all cells** of all splits.
* RNA: ``X`` := raw counts, ``normalize_total``, ``log1p``, ``scale`` (no clipping), PCA with 200
  components (``svd_solver="auto"``); ``configure_dataset(rna, "NB", use_highly_variable=False,
  use_batch="batch", use_layer="counts", use_rep="X_pca")`` -- a negative-binomial decoder of the
  counts, an encoder fed with the PCs.
* ADT: ``configure_dataset(adt, "Normal", use_highly_variable=False, use_batch="batch",
  use_layer="counts")`` -- the raw protein counts modelled as Normal.
* Guidance graph: variable names get the suffixes ``_rna`` and ``_prot`` (so a protein and a
  gene of the same name stay two nodes); an edge (weight 1, sign +1) joins protein *p* and gene
  *g* whenever their original names are equal; every node has a self-loop (weight 1, sign +1).
* ``fit_SCGLUE`` with default hyper-parameters (pre-training, balancing weights, fine-tuning;
  learning-rate reduction and early stopping on a 10 % validation split), then
  ``encode_data`` (posterior means) for both modalities. Matching used RNA as modality 1 and ADT
  as modality 2 (the reverse of the propensity-score runs).

For a laptop, ``max_epochs``, ``n_pcs``, ``latent_dim`` and ``h_dim`` shrink the run (scGLUE
needs ``n_pcs >= latent_dim``, default latent 50). ``protein_to_gene`` optionally adds edges for
proteins whose gene has another name (e.g. ``{"CD3": "CD3E"}``); the official run used exact
name matches only.

Installing
----------
``scglue`` is optional (not needed by the rest of the package): ``pip install scglue==0.4.1 pynvml==11.5.3``.
With ``torch`` already installed it resolves from PyPI with binary wheels only and adds about
20 packages (pyro-ppl, pytorch-ignite, tensorboardX, muon/mudata, pybedtools, pysam, leidenalg,
igraph, sparse, dill, parse, pynvml...).

Example
-------
>>> res = fit_scglue(adata, n_pcs=60, max_epochs=20, random_state=0)   # doctest: +SKIP
>>> res.rna.shape == (adata.n_obs, 50), res.adt.shape == (adata.n_obs, 50)  # doctest: +SKIP
(True, True)
>>> from propalign_lite.matchers import match_groups                     # doctest: +SKIP
>>> t = res.obs["cell_type"].to_numpy()                                    # doctest: +SKIP
>>> couplings = match_groups(res.rna, t, res.adt, t, method="ot")          # doctest: +SKIP

References
----------
Cao, Gao (2022). *Multi-omics single-cell data integration and regulatory inference with
graph-linked embedding.* Nature Biotechnology 40, 1458-1466.
Xi, Osea, Xu, Hartford (2024). *Propensity score alignment of unpaired multimodal data.* NeurIPS.
"""
from __future__ import annotations

import contextlib
import logging
import tempfile
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import sparse

from .._validation import check_random_state

__all__ = ["fit_scglue", "build_guidance_graph", "split_citeseq", "GlueResult",
           "import_scglue", "ADT_SUFFIX", "RNA_SUFFIX"]

RNA_SUFFIX = "_rna"
ADT_SUFFIX = "_prot"


def import_scglue():
    """Import ``scglue`` or raise an :class:`ImportError` that says how to install it."""
    try:
        import scglue
    except ImportError as err:
        raise ImportError(
            "the scGLUE baseline needs the optional package 'scglue' (tested with 0.4.1): "
            "pip install scglue==0.4.1 pynvml==11.5.3 (install the CPU torch wheel first so pip does not pull "
            f"CUDA torch). Original error: {err}") from err
    return scglue


@dataclass
class GlueResult:
    """Output of :func:`fit_scglue`.

    Attributes
    ----------
    rna, adt : (n_cells, latent_dim) arrays
        Cell embeddings (posterior means) of the RNA and the protein view, rows in the order of
        ``obs``; row ``i`` of both is the same cell.
    obs : pandas.DataFrame
        The cells' ``obs`` (cell type, batch, split...).
    graph : networkx.Graph
        The guidance graph used.
    model : scglue model or None
        The fitted model when ``keep_model=True``.
    """

    rna: np.ndarray
    adt: np.ndarray
    obs: Any
    graph: Any
    model: Any = None
    settings: dict = field(default_factory=dict)


def split_citeseq(adata, *, feature_types_key: str = "feature_types", gex: str = "GEX",
                  adt: str = "ADT", counts_layer: str = "counts"):
    """Split a CITE-seq AnnData into an RNA and an ADT AnnData (copies).

    Checks the layout: ``var[feature_types_key]`` with both values, ``layers[counts_layer]``,
    feature names unique within each modality (a protein may share its name with a gene).

    Returns
    -------
    (rna, adt) : AnnData, AnnData
    """
    for attr in ("var", "obs", "layers", "n_obs"):
        if not hasattr(adata, attr):
            raise TypeError(f"expected an AnnData, got {type(adata).__name__}")
    if feature_types_key not in adata.var:
        raise KeyError(f"adata.var has no column {feature_types_key!r} (the feature type of "
                       f"every column, e.g. {gex!r} / {adt!r}); columns: {list(adata.var)}")
    if counts_layer not in adata.layers:
        raise KeyError(f"adata.layers has no {counts_layer!r} layer (raw counts); layers: "
                       f"{list(adata.layers)}")
    kinds = adata.var[feature_types_key].astype(str).to_numpy()
    for want in (gex, adt):
        if not (kinds == want).any():
            raise ValueError(f"no column of adata has {feature_types_key} == {want!r}; "
                             f"found {sorted(set(kinds))}")
    # a protein may share its name with a gene (as in the GEO file), so names need only be
    # unique within each modality
    out = []
    for want in (gex, adt):
        part = adata[:, kinds == want].copy()
        if not part.var_names.is_unique:
            dup = part.var_names[part.var_names.duplicated()].tolist()
            raise ValueError(f"the {want} feature names are not unique: {dup[:5]}")
        out.append(part)
    return out[0], out[1]


def build_guidance_graph(rna_names, adt_names, *, protein_to_gene: dict | None = None,
                         rna_suffix: str = RNA_SUFFIX, adt_suffix: str = ADT_SUFFIX):
    """The protein-gene guidance graph of the official run.

    Nodes are ``name + rna_suffix`` for every gene and ``name + adt_suffix`` for every protein.
    Edges (attributes ``weight=1.0, sign=1``): protein -- gene when the protein's name (or its
    entry in ``protein_to_gene``) equals the gene's name, and a self-loop on every node.

    Example
    -------
    >>> g = build_guidance_graph(["CD4", "CD8A", "ACTB"], ["CD4", "CD8"],
    ...                          protein_to_gene={"CD8": "CD8A"})
    >>> sorted(tuple(sorted(e)) for e in g.edges if e[0] != e[1])
    [('CD4_prot', 'CD4_rna'), ('CD8A_rna', 'CD8_prot')]
    >>> g.number_of_edges() - 2  # self-loops
    5
    """
    import networkx as nx

    rna_names = [str(v) for v in rna_names]
    adt_names = [str(v) for v in adt_names]
    if rna_suffix == adt_suffix:
        raise ValueError("rna_suffix and adt_suffix must differ")
    protein_to_gene = dict(protein_to_gene or {})
    unknown = sorted(set(protein_to_gene) - set(adt_names))
    if unknown:
        raise ValueError(f"protein_to_gene names proteins that are not ADT features: {unknown[:5]}")
    genes = set(rna_names)
    g = nx.Graph()
    g.add_nodes_from(n + rna_suffix for n in rna_names)
    g.add_nodes_from(n + adt_suffix for n in adt_names)
    attrs = {"weight": 1.0, "sign": 1}
    for p in adt_names:
        targets = {p} | ({protein_to_gene[p]} if p in protein_to_gene else set())
        for gene in sorted(targets & genes):
            g.add_edge(p + adt_suffix, gene + rna_suffix, **attrs)
    for node in list(g.nodes):
        g.add_edge(node, node, **attrs)
    return g


def fit_scglue(adata, *, n_pcs: int = 200, batch_key: str | None = "batch",
               counts_layer: str = "counts", feature_types_key: str = "feature_types",
               protein_to_gene: dict | None = None, latent_dim: int = 50, h_dim: int = 256,
               max_epochs: int | None = None, data_batch_size: int = 128,
               init_kws: dict | None = None, compile_kws: dict | None = None,
               fit_kws: dict | None = None, keep_model: bool = False, random_state=0,
               verbose: bool = False) -> GlueResult:
    """Fit scGLUE on a CITE-seq AnnData as the official run did; return both cell embeddings.

    Parameters
    ----------
    adata : AnnData
        Cells x (GEX then ADT) features in the GEO layout: ``var[feature_types_key]`` in
        {"GEX", "ADT"}, ``layers[counts_layer]`` raw counts, ``obs[batch_key]``. Not modified.
    n_pcs : int
        RNA principal components fed to the RNA encoder (official: 200); ``>= latent_dim``.
    batch_key : str or None
        ``obs`` column used as scGLUE's batch covariate (official: ``"batch"``); ``None``
        disables it.
    counts_layer, feature_types_key : str
        Where the raw counts and the feature types are.
    protein_to_gene : dict, optional
        Extra protein -> gene name links for the guidance graph.
    latent_dim, h_dim : int
        scGLUE's latent size (default 50) and hidden width (default 256).
    max_epochs : int, optional
        Cap on the epochs of *each* of scGLUE's two stages (default: scGLUE's own automatic
        value, with early stopping). Use a small value on a CPU.
    data_batch_size : int
        Cells per mini-batch (scGLUE default 128).
    init_kws, compile_kws, fit_kws : dict, optional
        Passed on to ``scglue.models.fit_SCGLUE`` (override the above).
    keep_model : bool
        Keep the fitted model in the result.
    random_state : None, int or Generator
        Becomes scGLUE's ``random_seed`` (model initialisation and data order).
    verbose : bool
        Show scGLUE's log messages (hidden by default).

    Returns
    -------
    GlueResult
        ``rna`` and ``adt`` embeddings of every cell (rows in ``adata``'s order), ``obs``,
        ``graph`` (and ``model``).
    """
    scglue = import_scglue()
    import scanpy as sc
    import torch

    rna, adt = split_citeseq(adata, feature_types_key=feature_types_key, counts_layer=counts_layer)
    n_cells, n_genes = rna.shape
    if batch_key is not None and batch_key not in adata.obs:
        raise KeyError(f"adata.obs has no column {batch_key!r}; pass batch_key=None to fit "
                       "without a batch covariate")
    if batch_key is not None and adata.obs[batch_key].isna().any():
        raise ValueError(f"adata.obs[{batch_key!r}] has missing values")
    if not (isinstance(n_pcs, (int, np.integer)) and 1 <= n_pcs < min(n_cells, n_genes)):
        raise ValueError(f"n_pcs must be an integer in [1, {min(n_cells, n_genes) - 1}] for "
                         f"{n_cells} cells and {n_genes} genes, got {n_pcs!r}")
    if n_pcs < latent_dim:
        raise ValueError(f"scGLUE needs n_pcs >= latent_dim, got n_pcs={n_pcs} and "
                         f"latent_dim={latent_dim}")
    for name, layer in (("RNA", rna.layers[counts_layer]), ("ADT", adt.layers[counts_layer])):
        vals = layer.data if sparse.issparse(layer) else np.asarray(layer)
        if not np.isfinite(vals).all():
            raise ValueError(f"the {name} counts contain NaN or infinite values")
        if (vals < 0).any():
            raise ValueError(f"the {name} counts contain negative values; layers"
                             f"[{counts_layer!r}] must hold raw counts")
    seed = int(check_random_state(random_state).integers(2**31 - 1)) \
        if not isinstance(random_state, (int, np.integer)) else int(random_state)

    # RNA: counts -> library-size normalisation -> log1p -> scale -> PCA
    rna.X = rna.layers[counts_layer].copy()
    sc.pp.normalize_total(rna)
    sc.pp.log1p(rna)
    sc.pp.scale(rna)
    sc.tl.pca(rna, n_comps=n_pcs, svd_solver="auto", random_state=seed)

    graph = build_guidance_graph(rna.var_names, adt.var_names, protein_to_gene=protein_to_gene)
    rna.var_names = [f"{v}{RNA_SUFFIX}" for v in rna.var_names]
    adt.var_names = [f"{v}{ADT_SUFFIX}" for v in adt.var_names]

    scglue.models.configure_dataset(rna, "NB", use_highly_variable=False, use_batch=batch_key,
                                    use_layer=counts_layer, use_rep="X_pca")
    scglue.models.configure_dataset(adt, "Normal", use_highly_variable=False,
                                    use_batch=batch_key, use_layer=counts_layer)

    init = {"latent_dim": latent_dim, "h_dim": h_dim, "random_seed": seed, **(init_kws or {})}
    fit = {"data_batch_size": data_batch_size, **(fit_kws or {})}
    if max_epochs is not None:
        fit.setdefault("max_epochs", int(max_epochs))
    settings = {"n_pcs": n_pcs, "batch_key": batch_key, "init_kws": init,
                "compile_kws": dict(compile_kws or {}), "fit_kws": dict(fit)}

    old_level = scglue.log.console_log_level
    with contextlib.ExitStack() as stack:
        stack.enter_context(torch.random.fork_rng(devices=[]))   # scglue reseeds torch globally
        if not verbose:
            scglue.log.console_log_level = logging.WARNING
            stack.callback(setattr, scglue.log, "console_log_level", old_level)
        if "directory" not in fit:
            fit["directory"] = stack.enter_context(tempfile.TemporaryDirectory(prefix="glue_"))
        model = scglue.models.fit_SCGLUE({"rna": rna, "adt": adt}, graph, init_kws=init,
                                         compile_kws=compile_kws or {}, fit_kws=fit)
        emb_rna = model.encode_data("rna", rna)
        emb_adt = model.encode_data("adt", adt)
    return GlueResult(rna=np.asarray(emb_rna), adt=np.asarray(emb_adt), obs=adata.obs.copy(),
                      graph=graph, model=model if keep_model else None, settings=settings)
