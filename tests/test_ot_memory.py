"""The memory model of propalign_lite.ot_memory."""
import pytest

from propalign_lite.ot_memory import BYTES_PER_PAIR, estimate_memory


def test_grows_with_size_and_support():
    small = estimate_memory(1000, 1000, 12)
    assert small < estimate_memory(10 ** 5, 10 ** 5, 12) < estimate_memory(10 ** 6, 10 ** 6, 12)
    assert estimate_memory(10 ** 5, 10 ** 5, 12, nnz_per_row=8) \
        < estimate_memory(10 ** 5, 10 ** 5, 12, nnz_per_row=16)


def test_measured_point_of_the_plain_sinkhorn_regime():
    # n = 10,000 at reg 0.3: 5,536 pairs a row, 3.1 GB more resident memory at the peak
    est = estimate_memory(10 ** 4, 10 ** 4, 12, nnz_per_row=5536.5) / 2 ** 30
    assert 3.1 < est < 3.6
    # the Newton regime counts more bytes a pair
    assert BYTES_PER_PAIR["newton"] > BYTES_PER_PAIR["sinkhorn"]


@pytest.mark.parametrize("bad", [dict(n1=0), dict(d=1.5), dict(nnz_per_row=float("nan"))])
def test_bad_input(bad):
    args = dict(n1=10, n2=10, d=2, nnz_per_row=4.0) | bad
    with pytest.raises(ValueError):
        estimate_memory(args.pop("n1"), args.pop("n2"), args.pop("d"), **args)
