"""The CITE-seq simulator's modality-specific variation (RNA programs, ADT ambient level)."""
import numpy as np
import pytest

from propalign_lite.datasets import simulate_cite_seq
from propalign_lite.datasets.citeseq import _programs as programs

KW = dict(n_cell_types=12, n_genes=2000, n_proteins=40, batches=3)


@pytest.fixture(scope="module")
def sims():
    return {s: simulate_cite_seq(3000, specific_strength=s, random_state=11, return_latent=True,
                                 **KW) for s in (0.0, 1.0)}


def _gex_counts(adata):
    ft = adata.var["feature_types"].astype(str).to_numpy()
    return adata.layers["counts"][:, np.flatnonzero(ft == "GEX")], adata.var_names[ft == "GEX"]


def test_program_genes_are_named_and_sized(sims):
    adata, _ = sims[1.0]
    _, names = _gex_counts(adata)
    assert names.str.startswith("MT-").sum() == 2          # 13 * 2000 / 13953 -> 2
    assert names.str.match(r"^RP[LS]").sum() == 11         # 76 * 2000 / 13953 -> 11
    assert {"MKI67", "PCNA"} & set(names) or names.isin(programs.S_GENES).sum() == 7


def test_umi_shares_and_phase_as_documented(sims):
    adata, _ = sims[1.0]
    counts, names = _gex_counts(adata)
    total = np.asarray(counts.sum(axis=1)).ravel()
    ribo = np.asarray(counts[:, np.flatnonzero(names.str.match(r"^RP[LS]"))].sum(axis=1)).ravel()
    assert 0.15 <= np.median(ribo / total) <= 0.25                 # documented: about 20 %
    mt = adata.obs["GEX_pct_counts_mt"].to_numpy()
    assert 2.0 <= np.median(mt) <= 6.0                              # documented: about 4 %
    phase = adata.obs["GEX_phase"].astype(str)
    cycling = (phase != "G1").groupby(adata.obs["cell_type"], observed=True).mean()
    assert cycling["HSC"] > 0.25 and cycling["CD14+ Mono"] < 0.08  # 0.4 vs 0.03


def test_strength_zero_removes_the_per_cell_programs(sims):
    # with strength 0 the ribosomal share only varies by sampling noise and cell state
    sd = {}
    for s, (adata, _) in sims.items():
        counts, names = _gex_counts(adata)
        total = np.asarray(counts.sum(axis=1)).ravel()
        ribo = np.asarray(counts[:, np.flatnonzero(names.str.match(r"^RP[LS]"))].sum(axis=1))
        sd[s] = np.std(np.log((ribo.ravel() + 1.0) / total))
    # the program adds a per-cell log-fold of sd 0.3 on top of what the cell state gives
    added = np.sqrt(sd[1.0] ** 2 - sd[0.0] ** 2)
    assert 0.15 < added < 0.45, added
    # the shared latent state does not depend on the strength (same seed)
    np.testing.assert_array_equal(sims[0.0][1], sims[1.0][1])


def test_program_variation_is_independent_of_the_shared_state(sims):
    adata, z = sims[1.0]
    cycling = (adata.obs["GEX_phase"].astype(str) != "G1").to_numpy()
    for k in adata.obs["cell_type"].cat.categories:
        rows = (adata.obs["cell_type"] == k).to_numpy()
        if cycling[rows].sum() >= 10 and (~cycling[rows]).sum() >= 10:
            gap = np.abs(z[rows & cycling].mean(0) - z[rows & ~cycling].mean(0))
            assert gap.max() < 0.6          # same within-type state distribution


def test_ambient_level_drives_isotypes():
    a = simulate_cite_seq(1500, specific_strength=2.0, random_state=4, **KW)
    b = simulate_cite_seq(1500, specific_strength=0.0, random_state=4, **KW)
    spread = [np.std(np.log(x.obs["ADT_iso_count"].to_numpy() + 1)) for x in (a, b)]
    assert spread[0] > spread[1]


def test_choose_program_genes_small_and_excluded():
    rng = np.random.default_rng(0)
    tiny = programs.choose_program_genes(rng, 15, exclude=[])
    assert all(v.size == 0 for v in tiny.values())
    genes = programs.choose_program_genes(rng, 2000, exclude=np.arange(100))
    allg = np.concatenate(list(genes.values()))
    assert allg.min() >= 100 and len(np.unique(allg)) == len(allg)


def test_strength_must_be_non_negative():
    with pytest.raises(ValueError, match="specific_strength"):
        simulate_cite_seq(200, n_cell_types=4, n_genes=50, n_proteins=5, batches=2,
                          specific_strength=-1.0)
