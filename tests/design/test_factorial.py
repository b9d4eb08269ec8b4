"""Tests for ablate.design.factorial: run counts, balance, orthogonality, resolution, aliasing, errors."""

from __future__ import annotations

import itertools
import re
import time

import numpy as np
import pytest

from ablate.errors import DesignError
from ablate.design.factorial import (
    PB_ALIAS_MIN_CORR,
    TwoLevelDesign,
    design_resolution,
    fractional_factorial,
    full_factorial,
    plackett_burman,
)

TRICKS = [f"trick{i}" for i in range(52)]


def names(k: int) -> list[str]:
    return TRICKS[:k]


def brute_resolution(matrix: np.ndarray) -> int | None:
    """Fewest columns whose elementwise product is constant, by trying every subset."""
    x = np.asarray(matrix, dtype=np.int64)
    for r in range(1, x.shape[1] + 1):
        for cols in itertools.combinations(range(x.shape[1]), r):
            prod = x[:, cols].prod(axis=1)
            if np.all(prod == prod[0]):
                return r
    return None


def column(d: TwoLevelDesign, term: tuple[str, ...]) -> np.ndarray:
    idx = [d.factors.index(t) for t in term]
    return d.matrix[:, idx].astype(np.int64).prod(axis=1)


def assert_balanced_orthogonal(d: TwoLevelDesign) -> None:
    x = d.matrix.astype(np.int64)
    assert d.matrix.dtype == np.int8
    assert set(np.unique(x)) <= {-1, 1}
    assert x.shape == (d.runs, len(d.factors))
    assert np.all(x.sum(axis=0) == 0)
    assert np.array_equal(x.T @ x, d.runs * np.eye(x.shape[1], dtype=np.int64))


def all_designs() -> list[TwoLevelDesign]:
    out = [full_factorial(names(k)) for k in (1, 2, 3, 5)]
    out += [fractional_factorial(names(k), resolution=r) for r, k in
            [(3, 3), (3, 5), (3, 7), (3, 10), (4, 4), (4, 7), (4, 9), (4, 12), (5, 5), (5, 8), (5, 11)]]
    out += [plackett_burman(names(k)) for k in (3, 7, 11, 19, 23)]
    return out


@pytest.mark.parametrize("k,resolution,runs", [
    (3, 3, 4), (4, 3, 8), (7, 3, 8), (8, 3, 16), (15, 3, 16), (16, 3, 32),
    (4, 4, 8), (6, 4, 16), (7, 4, 16), (8, 4, 16), (9, 4, 32), (12, 4, 32), (16, 4, 32), (17, 4, 64),
    (5, 5, 16), (6, 5, 32), (8, 5, 64), (11, 5, 128), (12, 5, 256),
])
def test_run_counts_are_the_smallest_known(k: int, resolution: int, runs: int) -> None:
    d = fractional_factorial(names(k), resolution=resolution)
    assert d.kind == "fractional_factorial"
    assert d.runs == runs
    assert d.resolution is not None and d.resolution >= resolution
    assert len(d.generators) == k - runs.bit_length() + 1
    assert len(d.defining_relation) == 2 ** len(d.generators) - 1


def test_half_fraction_of_five_factors_is_resolution_v() -> None:
    d = fractional_factorial(names(5), resolution=5)
    assert d.generators == ("E=ABCD",)
    assert d.defining_relation == ("ABCDE",)
    assert d.resolution == 5


@pytest.mark.parametrize("k,expected_words", [(6, 3), (7, 7), (8, 14)])
def test_sixteen_run_resolution_iv_designs_have_known_word_counts(k: int, expected_words: int) -> None:
    # Every 2^(6-2), 2^(7-3), 2^(8-4) resolution IV design has 3, 7, 14 words of length four.
    d = fractional_factorial(names(k))
    assert d.resolution == 4
    assert sum(len(w) == 4 for w in d.defining_relation) == expected_words


def test_minimum_aberration_prefers_the_higher_resolution() -> None:
    # 2^(8-2): minimum aberration is resolution V with words of lengths 5, 5, 6.
    d = fractional_factorial(names(8), resolution=4, runs=64)
    assert sorted(len(w) for w in d.defining_relation) == [5, 5, 6]
    # 2^(12-4) in 256 runs reaches resolution VI.
    assert fractional_factorial(names(12), resolution=5).resolution == 6


@pytest.mark.parametrize("design", all_designs(), ids=lambda d: f"{d.kind}-{len(d.factors)}")
def test_columns_are_balanced_orthogonal_and_read_only(design: TwoLevelDesign) -> None:
    assert_balanced_orthogonal(design)
    assert len(design.letters) == len(set(design.letters)) == len(design.factors)
    with pytest.raises(ValueError):
        design.matrix[0, 0] = 1


@pytest.mark.parametrize("resolution", [3, 4, 5])
@pytest.mark.parametrize("k", range(3, 11))
def test_resolution_matches_brute_force_on_the_matrix(k: int, resolution: int) -> None:
    try:
        d = fractional_factorial(names(k), resolution=resolution)
    except DesignError:
        assert resolution == 5 and k < 5 or resolution == 4 and k == 3
        return
    assert brute_resolution(d.matrix) == d.resolution
    assert design_resolution(d.matrix) == d.resolution


def test_matrix_is_in_yates_order_and_follows_the_generators() -> None:
    d = fractional_factorial(names(7))
    m = d.runs.bit_length() - 1
    for j in range(m):   # base factor j alternates in blocks of 2^j, starting low
        expected = np.where((np.arange(d.runs) >> j) & 1, 1, -1)
        assert np.array_equal(d.matrix[:, j], expected)
    assert np.all(d.matrix[0] == -1)
    for gen in d.generators:   # generated factors are the last ones and equal the product of their word
        lhs, rhs = gen.split("=")
        assert d.letters.index(lhs) >= m
        prod = np.prod([d.matrix[:, d.letters.index(c)].astype(np.int64) for c in rhs], axis=0)
        assert np.array_equal(d.matrix[:, d.letters.index(lhs)], prod)


@pytest.mark.parametrize("k,resolution", [(7, 4), (9, 3), (10, 5)])
def test_defining_relation_words_multiply_to_identity_and_are_sorted(k: int, resolution: int) -> None:
    d = fractional_factorial(names(k), resolution=resolution)
    words = d.defining_relation
    assert list(words) == sorted(words, key=lambda w: (len(w), w))
    assert len(set(words)) == len(words)
    for w in words:
        prod = np.prod([d.matrix[:, d.letters.index(c)].astype(np.int64) for c in w], axis=0)
        assert np.all(prod == 1)
    assert d.resolution == min(len(w) for w in words)


def test_resolution_iii_main_effects_are_aliased_with_two_factor_interactions() -> None:
    d = fractional_factorial(names(5), resolution=3)
    assert d.runs == 8 and d.resolution == 3
    main = [d.aliases((f,)) for f in d.factors]
    assert any(len(t) == 2 for al in main for t in al)


@pytest.mark.parametrize("k", [6, 7, 8, 12])
def test_resolution_iv_main_effects_are_clear_but_two_factor_interactions_are_not(k: int) -> None:
    d = fractional_factorial(names(k), resolution=4)
    for term, al in d.alias_table():
        if len(term) == 1:
            assert al == ()
    assert any(len(term) == 2 and al for term, al in d.alias_table())
    assert any(len(t) == 3 for t in d.aliases((d.factors[0],), max_order=3))


@pytest.mark.parametrize("k", [5, 8, 11])
def test_resolution_v_two_factor_interactions_are_clear(k: int) -> None:
    d = fractional_factorial(names(k), resolution=5)
    assert all(al == () for _, al in d.alias_table())


@pytest.mark.parametrize("k,resolution", [(5, 3), (7, 4), (9, 3)])
def test_aliases_agree_with_column_products(k: int, resolution: int) -> None:
    d = fractional_factorial(names(k), resolution=resolution)
    terms = [(f,) for f in d.factors] + list(itertools.combinations(d.factors, 2))
    for term, al in d.alias_table():
        expected = {t for t in terms if t != term and abs(column(d, term) @ column(d, t)) == d.runs}
        assert set(al) == expected


def test_full_factorial_has_no_aliases_and_all_runs() -> None:
    d = full_factorial(["mixup", "cosine", "label_smoothing"])
    assert d.kind == "full_factorial" and d.runs == 8
    assert d.resolution is None and d.generators == () and d.defining_relation == ()
    assert len({tuple(r) for r in d.matrix.tolist()}) == 8
    assert all(al == () for _, al in d.alias_table())
    assert design_resolution(d.matrix) is None
    assert "no aliasing" in d.describe()


def test_plackett_burman_12_runs_is_a_hadamard_design() -> None:
    d = plackett_burman(names(11))
    assert d.kind == "plackett_burman" and d.runs == 12 and d.resolution == 3
    h = np.concatenate([np.ones((12, 1), dtype=np.int64), d.matrix.astype(np.int64)], axis=1)
    assert np.array_equal(h.T @ h, 12 * np.eye(12, dtype=np.int64))
    # first run is Plackett & Burman's (1946) generator row, the last run has every trick off
    assert "".join("+" if v > 0 else "-" for v in d.matrix[0]) == "++-+++---+-"
    assert np.all(d.matrix[-1] == -1)
    assert design_resolution(d.matrix) is None   # non-regular: no complete confounding


@pytest.mark.parametrize("k,runs", [(1, 4), (3, 4), (4, 8), (7, 8), (11, 12), (12, 16), (19, 20),
                                    (23, 24), (24, 32), (31, 32), (39, 40), (43, 44), (47, 48), (52, 60)])
def test_plackett_burman_run_counts_and_orthogonality(k: int, runs: int) -> None:
    d = plackett_burman(names(k))
    assert d.runs == runs
    assert_balanced_orthogonal(d)


@pytest.mark.parametrize("n", [12, 20, 24])
def test_plackett_burman_generators_are_quadratic_residue_rows(n: int) -> None:
    q = n - 1
    residues = {i * i % q for i in range(1, q)}
    expected = "".join("+" if i == 0 or i in residues else "-" for i in range(q))
    d = plackett_burman(names(q))
    assert "".join("+" if v > 0 else "-" for v in d.matrix[0]) == expected


def test_plackett_burman_partial_aliasing() -> None:
    d = plackett_burman(names(11))
    al = d.aliases((d.factors[0],))
    assert len(al) == 45 and all(len(t) == 2 and d.factors[0] not in t for t in al)
    for t in al:
        assert abs(column(d, (d.factors[0],)) @ column(d, t)) / d.runs == pytest.approx(1 / 3)
    assert 1 / 3 >= PB_ALIAS_MIN_CORR
    text = d.describe()
    first = next(line for line in text.splitlines() if line.startswith("  A ~ "))
    words = re.findall(r"\b[B-K]{2}\b", first)
    assert len(words) == 45 == len(set(words)), "every partial alias of A is listed by name"
    for sign in ("+0.33", "-0.33"):
        assert f"~ {sign} x (" in first
    assert "assume no active two-factor interactions" in text and "foldover: true" in text
    partial = d.partial_aliases(d.factors[0])
    assert len(partial) == 45 and all(abs(r) == pytest.approx(1 / 3) for _, r in partial)
    assert fractional_factorial(names(5), resolution=3).partial_aliases(names(5)[0]) == ()


def test_plackett_burman_foldover_frees_main_effects() -> None:
    d = plackett_burman(names(8), foldover=True)
    assert d.runs == 24 and d.foldover and d.resolution == 4
    x = d.matrix.astype(int)
    assert np.array_equal(x[12:], -x[:12]) and len(np.unique(x, axis=0)) == 24
    for i in range(8):
        assert d.partial_aliases(d.factors[i]) == () and d.aliases(d.factors[i]) == ()
    text = d.describe()
    assert "with fold-over: 8 factors in 24 runs" in text and "  A: clear" in text
    assert "assume no active" not in text
    with pytest.raises(DesignError, match=r"a fold-over of 2 factor\(s\) repeats the runs of the full factorial"):
        plackett_burman(names(2), foldover=True)


def test_foldover_keeps_a_null_main_effects_false_star_rate_at_alpha() -> None:
    """The issue's case: 12-run Plackett-Burman of 11 tricks, one active A x B interaction
    (0.6 or 1.2 pp), noise SD 0.3 pp, 3 seeds; every main effect is null. Without the fold-over
    A x B's partial aliases put Holm stars on null main effects; with it (24 runs) the rate of
    any star among the 11 null main effects stays at alpha."""
    import warnings

    from ablate import stats

    rng = np.random.default_rng(19)

    def star_rate(design, ab: float, reps: int) -> float:
        x = design.matrix.astype(float)
        stars = 0
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            for _ in range(reps):
                y = (ab / 2) * (x[:, 0] * x[:, 1])[:, None] + rng.normal(0, 0.3, (design.runs, 3))
                # main effects only: what the report's fit falls back to in these designs (the
                # interactions make it rank-deficient), asked for directly to skip the rank test
                effects = stats.factorial_effects(x, y, max_order=1)
                p = stats.holm([e.p_value for e in effects], untestable=[e.zero_variance for e in effects])
                stars += bool((p < 0.05).any())
        return stars / reps

    pb, folded = plackett_burman(names(11)), plackett_burman(names(11), foldover=True)
    reps = 4_000
    limit = stats_binom_upper(0.05, reps)
    for ab in (0.6, 1.2):
        assert star_rate(pb, ab, 500) > 0.3, "the premise: without the fold-over null main effects get stars"
        assert star_rate(folded, ab, reps) <= limit


def stats_binom_upper(rate: float, reps: int) -> float:
    from scipy import stats as st

    return st.binom.ppf(0.9995, reps, rate) / reps


def test_describe_lists_generators_legend_and_alias_chains() -> None:
    tricks = ["mixup", "cutmix", "cosine", "warmup", "label_smoothing", "ema", "randaug"]
    d = fractional_factorial(tricks)
    text = d.describe()
    assert "16 runs" in text and "resolution IV" in text and "2^(7-3)" in text
    for gen in d.generators:
        assert gen in text
    assert "A = mixup" in text and "G = randaug" in text
    assert "I = " + " = ".join(d.defining_relation) in text
    chain = re.search(r"^\s+([A-Z]{2}) = ([A-Z]{2}) = ([A-Z]{2})$", text, re.MULTILINE)
    assert chain is not None
    # the chain shown is a real alias chain
    first = tuple(d.factors[d.letters.index(c)] for c in chain.group(1))
    second = tuple(d.factors[d.letters.index(c)] for c in chain.group(2))
    assert second in d.aliases(first)


def test_many_factors_get_distinct_letters() -> None:
    d = plackett_burman(names(40))
    assert len(set(d.letters)) == 40 and d.letters[:2] == ("A", "B") and d.letters[26] == "a"
    assert "a = trick26" in d.describe()


def test_generation_is_fast_and_deterministic() -> None:
    start = time.perf_counter()
    for k in range(3, 13):
        fractional_factorial(names(k), resolution=3)
        if k >= 4:
            fractional_factorial(names(k), resolution=4)
    assert time.perf_counter() - start < 5.0
    assert fractional_factorial(names(10)) == fractional_factorial(names(10))


def test_explicit_run_count_is_honoured() -> None:
    d = fractional_factorial(names(7), resolution=3, runs=8)
    assert d.runs == 8 and d.resolution == 3
    d = fractional_factorial(names(7), resolution=4, runs=32)
    assert d.runs == 32 and d.resolution == 4 and len(d.generators) == 2


def test_design_resolution_of_a_saturated_design() -> None:
    assert design_resolution(fractional_factorial(names(7), resolution=3).matrix) == 3
    with pytest.raises(DesignError):
        design_resolution(np.array([[0, 1], [1, -1]]))


@pytest.mark.parametrize("call,fragments", [
    (lambda: fractional_factorial(["a", "b"]), ["full_factorial", "factors=2"]),
    (lambda: fractional_factorial(names(4), resolution=5), ["resolution V", "16 runs", "full factorial",
                                                             "resolution=5", "factors=4"]),
    (lambda: fractional_factorial(names(3), resolution=4), ["resolution=4", "factors=3"]),
    (lambda: fractional_factorial(names(6), resolution=6), ["resolution=6"]),
    (lambda: fractional_factorial(names(6), resolution=2), ["resolution=2"]),
    (lambda: fractional_factorial(names(6), runs=12), ["power of two", "runs=12"]),
    (lambda: fractional_factorial(names(4), runs=16), ["runs=16", "full_factorial"]),
    (lambda: fractional_factorial(names(7), resolution=4, runs=8), ["at most resolution III", "16 runs",
                                                                     "runs=8", "resolution=4"]),
    (lambda: fractional_factorial(names(9), resolution=3, runs=8), ["at most 7 factors", "runs=8"]),
    (lambda: fractional_factorial(names(30), resolution=3), ["factors=30"]),
    (lambda: fractional_factorial(["mixup", "ema", "mixup"]), ["duplicates", "mixup"]),
    (lambda: fractional_factorial([]), ["empty"]),
    (lambda: full_factorial([]), ["empty"]),
    (lambda: plackett_burman([]), ["empty"]),
    (lambda: full_factorial("mixup"), ["single string", "mixup"]),
    (lambda: full_factorial(names(17)), ["17 factors", "131072 runs"]),
    (lambda: plackett_burman(TRICKS + ["one_too_many"]), ["53"]),
    (lambda: full_factorial(names(3)).aliases(("nope",)), ["nope"]),
    (lambda: full_factorial(names(3)).aliases((TRICKS[0],), max_order=0), ["max_order=0"]),
])
def test_errors_name_the_offending_values(call, fragments: list[str]) -> None:
    with pytest.raises(DesignError) as info:
        call()
    for fragment in fragments:
        assert fragment in str(info.value)


def test_popcount_fallback_for_numpy_1(monkeypatch: pytest.MonkeyPatch) -> None:
    # pyproject allows numpy 1.26, which has no np.bitwise_count: the lookup-table path must agree.
    import ablate.design.factorial as factorial

    values = np.array([0, 1, 3, 2**40 + 7, 2**63 + 1], dtype=np.uint64)
    monkeypatch.setattr(factorial, "_HAS_BITWISE_COUNT", False)
    assert factorial._popcount(values).tolist() == [int(v).bit_count() for v in values.tolist()]
    slow = fractional_factorial(names(9), resolution=4)
    slow_table = slow.alias_table(max_order=3)
    monkeypatch.setattr(factorial, "_HAS_BITWISE_COUNT", True)
    fast = fractional_factorial(names(9), resolution=4)
    assert fast == slow and fast.alias_table(max_order=3) == slow_table
    assert any(al for _, al in slow_table)
