"""Two-level screening designs for training tricks: full and fractional factorials, Plackett-Burman.

Each factor is a trick name; a run is a row of -1 (trick off) / +1 (trick on).  Factors get
letters A, B, ... (then a, b, ...) so that words and alias chains read as in the literature.

* Fractional factorials 2^(k-p), their generators, defining relation and resolution follow
  Box, G. E. P. & Hunter, J. S. (1961), "The 2^(k-p) fractional factorial designs", Parts I-II,
  Technometrics 3, 311-351 and 449-458.
* Among designs with the same run count we pick one of minimum aberration: lexicographically the
  fewest words of length 3, then of length 4, ... (Fries, A. & Hunter, W. G. (1980), "Minimum
  aberration 2^(k-p) designs", Technometrics 22, 601-608).  Generators are found by a
  branch-and-bound search, exhaustive for k <= 16 at resolution IV (and every k <= 12); larger
  cases stop after a fixed work budget and return the best design found (deterministically).
* The largest k with a resolution-V design in 2^m runs (5, 6, 8, 11, 17, 23, 33, 47 for
  m = 4..11; the longest binary linear codes of minimum distance 5 with m check bits) is the
  classic capacity table (e.g. Draper & Lin 1990, "Capacity considerations for two-level
  fractional factorial designs"); the search must still find such a design.
* Plackett, R. L. & Burman, J. P. (1946), "The design of optimum multifactorial experiments",
  Biometrika 33, 305-325: cyclic generator rows for N = 12, 20, 24 (these are quadratic-residue
  rows, which we also use for N = 44, 48, 60); powers of two come from Sylvester's construction.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from ablate.errors import DesignError

__all__ = ["TwoLevelDesign", "full_factorial", "fractional_factorial", "plackett_burman",
           "design_resolution", "PB_ALIAS_MIN_CORR"]

_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_MAX_LOG2_RUNS = 16        # 65,536 runs: beyond this nobody trains the runs anyway
_MAX_P = 16                # the defining relation (2^p - 1 words) is enumerated in full
_SEARCH_BUDGET = 100_000   # work units: one per search node plus one per 256 words touched
PB_ALIAS_MIN_CORR = 0.3    # Plackett-Burman: report terms whose columns have |r| >= this
_MAX_RES5 = {4: 5, 5: 6, 6: 8, 7: 11, 8: 17, 9: 23, 10: 33, 11: 47}
_PB_GENERATORS = {12: "++-+++---+-", 20: "++--++++-+-+----++-", 24: "+++++-+-++--++--+-+----"}


_HAS_BITWISE_COUNT = hasattr(np, "bitwise_count")   # numpy >= 2.0; pyproject still allows 1.26
_BYTE_BITS = np.array([bin(i).count("1") for i in range(256)], dtype=np.intp)


def _popcount(a: np.ndarray) -> np.ndarray:
    """Number of set bits of each uint64 (word lengths of words stored as factor bit masks)."""
    a = np.ascontiguousarray(a, dtype=np.uint64)
    if _HAS_BITWISE_COUNT:
        return np.bitwise_count(a).astype(np.intp)
    return _BYTE_BITS[a.view(np.uint8)].reshape(-1, 8).sum(axis=1)


def _roman(n: int) -> str:
    out = ""
    for value, sym in ((10, "X"), (9, "IX"), (5, "V"), (4, "IV"), (1, "I")):
        out += sym * (n // value)
        n %= value
    return out


@dataclass(frozen=True)
class TwoLevelDesign:
    """A two-level design; build it with `full_factorial`, `fractional_factorial` or `plackett_burman`."""

    kind: str
    factors: tuple[str, ...]
    matrix: np.ndarray = field(compare=False, repr=False)
    letters: tuple[str, ...]
    generators: tuple[str, ...]
    defining_relation: tuple[str, ...]
    resolution: int | None
    foldover: bool = False          # Plackett-Burman: the runs followed by their mirror image

    @property
    def runs(self) -> int:
        return int(self.matrix.shape[0])

    # -- aliasing -------------------------------------------------------------------------------
    def aliases(self, term: tuple[str, ...] | str, *, max_order: int = 2) -> tuple[tuple[str, ...], ...]:
        """Terms of order <= `max_order` confounded with `term` (a factor name or a tuple of names).

        Regular designs: exact confounding through the defining relation.  Plackett-Burman: a term
        is reported when its column correlates with `term`'s with |r| >= PB_ALIAS_MIN_CORR
        (r = x.y / N); in 12 runs every 2FI not containing a factor has |r| = 1/3 with it.
        """
        if isinstance(max_order, bool) or not isinstance(max_order, int) or max_order < 1:
            raise DesignError(f"max_order must be an integer >= 1; got max_order={max_order!r}")
        idx = self._term_indices(term)
        if self.kind == "plackett_burman":
            terms, corr = self._correlations(idx, max_order)
            return tuple(self._names(t) for t, r in zip(terms, corr) if abs(r) >= PB_ALIAS_MIN_CORR - 1e-9)
        mask = sum(1 << i for i in idx)
        words = self._word_masks
        hits = words[_popcount(words) <= max_order + len(idx)] ^ np.uint64(mask)
        hits = hits[(hits != 0) & (_popcount(hits) <= max_order)]
        found = sorted((_bits(int(h)) for h in hits), key=lambda t: (len(t), t))
        return tuple(self._names(t) for t in found)

    def partial_aliases(self, term: tuple[str, ...] | str, *, max_order: int = 2
                        ) -> tuple[tuple[tuple[str, ...], float], ...]:
        """Terms of order <= `max_order` whose column correlates with `term`'s with
        PB_ALIAS_MIN_CORR <= |r| < 1 (r = x.y / N), with their r: an effect estimate is biased by
        r times each such term's effect. Empty for regular designs (their aliasing is exact)."""
        if isinstance(max_order, bool) or not isinstance(max_order, int) or max_order < 1:
            raise DesignError(f"max_order must be an integer >= 1; got max_order={max_order!r}")
        idx = self._term_indices(term)
        if self.kind != "plackett_burman":
            return ()
        terms, corr = self._correlations(idx, max_order)
        return tuple((self._names(t), float(r)) for t, r in zip(terms, corr)
                     if PB_ALIAS_MIN_CORR - 1e-9 <= abs(r) < 1 - 1e-9)

    def alias_table(self, *, max_order: int = 2) -> list[tuple[tuple[str, ...], tuple[tuple[str, ...], ...]]]:
        """Every main effect and two-factor interaction with its aliases (see `aliases`)."""
        k = len(self.factors)
        terms = [(i,) for i in range(k)] + list(itertools.combinations(range(k), 2))
        return [(self._names(t), self.aliases(self._names(t), max_order=max_order)) for t in terms]

    def describe(self) -> str:
        """Human-readable summary: size, resolution, legend, generators, defining relation, aliases."""
        k, n = len(self.factors), self.runs
        if self.kind == "full_factorial":
            head = f"Full factorial 2^{k}: {k} factors in {n} runs (no aliasing)"
        elif self.kind == "fractional_factorial":
            p = len(self.generators)
            head = (f"Fractional factorial 2^({k}-{p}): {k} factors in {n} runs, "
                    f"resolution {_roman(self.resolution or 0)}")
        elif self.foldover:
            head = (f"Plackett-Burman design with fold-over: {k} factors in {n} runs ({n // 2} runs and their "
                    "mirror image), resolution IV: main effects are clear of two-factor interactions")
        else:
            head = (f"Plackett-Burman design: {k} factors in {n} runs, resolution III "
                    "(non-regular: main effects are partially aliased with two-factor interactions)")
        lines = [head, "Factors:"]
        lines += [f"  {letter} = {name}" for letter, name in zip(self.letters, self.factors)]
        if self.generators:
            lines.append("Generators: " + ", ".join(self.generators))
        if self.defining_relation:
            shown = self.defining_relation[:40]
            more = len(self.defining_relation) - len(shown)
            tail = f" = ... ({more} more words)" if more else ""
            lines.append("Defining relation: I = " + " = ".join(shown) + tail)
        if self.kind == "fractional_factorial":
            lines += self._describe_chains()
        elif self.kind == "plackett_burman":
            lines += self._describe_partial()
        return "\n".join(lines)

    # -- helpers --------------------------------------------------------------------------------
    def _describe_chains(self) -> list[str]:
        clear, chains, seen = [], [], set()
        for term, al in self.alias_table(max_order=2):
            if not al:
                clear.append(self._word(term))
                continue
            chain = tuple(sorted([term, *al], key=lambda t: (len(t), self._term_indices(t))))
            if chain not in seen:
                seen.add(chain)
                chains.append("  " + " = ".join(self._word(t) for t in chain))
        out = ["Aliases among main effects and two-factor interactions (higher orders omitted):"]
        if not chains:
            return out + ["  none: every main effect and two-factor interaction is clear of the others"]
        return out + chains + ["Clear of other main effects and 2FIs: " + (", ".join(clear) or "none")]

    def _describe_partial(self) -> list[str]:
        out = ["Aliasing of main effects with two-factor interactions "
               f"(r = x.y/N; |r| >= {PB_ALIAS_MIN_CORR} reported; a main effect's estimate also carries r x "
               "each listed interaction):"]
        for i, letter in enumerate(self.letters):
            terms, corr = self._correlations((i,), 2)
            full = [self._word(self._names(t)) for t, r in zip(terms, corr) if abs(r) > 1 - 1e-9]
            part = [(self._word(self._names(t)), r) for t, r in zip(terms, corr)
                    if PB_ALIAS_MIN_CORR - 1e-9 <= abs(r) < 1 - 1e-9]
            text = f"  {letter}" + "".join(f" = {w}" for w in full)
            for value in sorted({round(r, 2) for _, r in part}, reverse=True):
                words = [w for w, r in part if round(r, 2) == value]
                text += f" ~ {value:+.2f} x ({', '.join(words)})"
            out.append(text if (full or part) else f"  {letter}: clear")
        if self.foldover:
            out.append("Two-factor interactions remain partially aliased with each other.")
        elif any(abs(r) >= PB_ALIAS_MIN_CORR - 1e-9 for i in range(len(self.factors))
                 for r in self._correlations((i,), 2)[1]):
            out.append("Warning: main-effect CIs and p-values assume no active two-factor interactions; an "
                       "active one biases every main effect listed with it. 'design: {kind: plackett_burman, "
                       "foldover: true}' doubles the runs and frees the main effects from them.")
        return out

    def _term_indices(self, term: tuple[str, ...] | str) -> tuple[int, ...]:
        names = (term,) if isinstance(term, str) else tuple(term)
        pos = {name: i for i, name in enumerate(self.factors)}
        unknown = [t for t in names if t not in pos]
        if not names or unknown or len(set(names)) != len(names):
            raise DesignError(f"a term is a non-empty tuple of distinct factor names from "
                              f"{list(self.factors)}; got term={term!r}")
        return tuple(sorted(pos[t] for t in names))

    def _names(self, idx: tuple[int, ...]) -> tuple[str, ...]:
        return tuple(self.factors[i] for i in idx)

    def _word(self, names: tuple[str, ...]) -> str:
        return "".join(self.letters[i] for i in self._term_indices(names))

    @cached_property
    def _word_masks(self) -> np.ndarray:
        # Rebuild the defining contrast subgroup from the generators ("F=ABCD"): cheaper than parsing it.
        pos = {letter: i for i, letter in enumerate(self.letters)}
        group = np.zeros(1, dtype=np.uint64)
        for gen in self.generators:
            word = sum(1 << pos[c] for c in gen.replace("=", ""))
            group = np.concatenate((group, group ^ np.uint64(word)))
        return group[1:]

    def _correlations(self, idx: tuple[int, ...], max_order: int) -> tuple[list, np.ndarray]:
        """Every other term of order <= max_order with r = x.y / N against the term `idx`."""
        x = self.matrix.astype(np.int64)
        terms = [t for order in range(1, max_order + 1)
                 for t in itertools.combinations(range(len(self.factors)), order) if t != idx]
        cols = np.stack([x[:, list(t)].prod(axis=1) for t in terms], axis=1)
        return terms, (x[:, list(idx)].prod(axis=1) @ cols) / self.runs


def _bits(mask: int) -> tuple[int, ...]:
    return tuple(i for i in range(mask.bit_length()) if mask >> i & 1)


def _check_factors(factors: Sequence[str]) -> tuple[str, ...]:
    if isinstance(factors, str):
        raise DesignError(f"factors must be a sequence of trick names, not a single string; got {factors!r}")
    names = tuple(factors)
    if not names:
        raise DesignError("a design needs at least one factor; got an empty factor list")
    bad = [f for f in names if not isinstance(f, str) or not f]
    if bad:
        raise DesignError(f"factor names must be non-empty strings; got {bad!r}")
    dupes = sorted({f for f in names if names.count(f) > 1})
    if dupes:
        raise DesignError(f"factor names must be unique; got duplicates {dupes} in {list(names)}")
    if len(names) > len(_LETTERS):
        raise DesignError(f"at most {len(_LETTERS)} factors are supported; got {len(names)}")
    return names


# -- regular 2^(k-p) designs -----------------------------------------------------------------------
def _regular_design(kind: str, names: tuple[str, ...], m: int, gens: tuple[int, ...],
                    min_res: int = 0) -> TwoLevelDesign:
    """Build a 2^(k-p) design from base-column masks of the generated factors, and verify it."""
    k = len(names)
    letters = tuple(_LETTERS[:k])
    runs = np.arange(1 << m, dtype=np.int64)[:, None]
    base = (2 * ((runs >> np.arange(m)) & 1) - 1).astype(np.int8)   # Yates order: A alternates fastest
    cols = [base] + [base[:, list(_bits(g))].prod(axis=1, dtype=np.int8)[:, None] for g in gens]
    matrix = np.concatenate(cols, axis=1)
    _check_orthogonal(matrix)
    group = np.zeros(1, dtype=np.uint64)
    for j, g in enumerate(gens):
        group = np.concatenate((group, group ^ np.uint64(g | 1 << (m + j))))
    words = sorted(("".join(letters[i] for i in _bits(int(w))) for w in group[1:]),
                   key=lambda w: (len(w), w))
    resolution = len(words[0]) if words else None
    if resolution is not None and resolution < min_res:   # cannot happen unless the search is wrong
        raise DesignError(f"internal error: generators give resolution {resolution} < {min_res}")
    matrix.flags.writeable = False
    generators = tuple(f"{letters[m + j]}=" + "".join(letters[i] for i in _bits(g))
                       for j, g in enumerate(gens))
    return TwoLevelDesign(kind, names, matrix, letters, generators, tuple(words), resolution)


def _check_orthogonal(x: np.ndarray) -> None:
    x64 = x.astype(np.int64)
    gram = len(x) * np.eye(x.shape[1], dtype=np.int64)
    if np.any(x64.sum(axis=0) != 0) or not np.array_equal(x64.T @ x64, gram):
        raise DesignError("internal error: design columns are not balanced and orthogonal")


def full_factorial(factors: Sequence[str]) -> TwoLevelDesign:
    """All 2^k combinations in standard (Yates) order; k <= 16."""
    names = _check_factors(factors)
    if len(names) > _MAX_LOG2_RUNS:
        k = len(names)
        raise DesignError(f"a full factorial of {k} factors needs 2^{k} = {2 ** k} runs; at most "
                          f"{_MAX_LOG2_RUNS} factors are allowed (use fractional_factorial or "
                          "plackett_burman)")
    return _regular_design("full_factorial", names, len(names), ())


def _max_resolution(k: int, m: int) -> int:
    """Largest resolution of a 2^(k-p) design with p = k - m >= 1 (0: k factors do not fit in 2^m runs).

    5 stands for "V or more" unless p == 1, where the single word of length k is the best."""
    if k - m == 1:
        return k
    if k <= _MAX_RES5.get(m, 47 if m > 11 else m):
        return 5
    if k <= 2 ** (m - 1):    # the foldover (even) designs: all odd-weight base interactions
        return 4
    return 3 if k <= 2 ** m - 1 else 0


def _min_base(k: int, resolution: int) -> int:
    """Smallest m with a resolution >= `resolution` design of k factors in 2^m runs (k: full factorial)."""
    return next((m for m in range(1, k) if _max_resolution(k, m) >= resolution), k)


def _is_cell_prefix(col: int, cells: list[tuple[int, int]]) -> bool:
    for start, end in cells:
        b = (col >> start) & ((1 << (end - start)) - 1)
        if b & (b + 1):
            return False
    return True


def _refine(col: int, cells: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out = []
    for start, end in cells:
        t = ((col >> start) & ((1 << (end - start)) - 1)).bit_count()
        out += [c for c in ((start, start + t), (start + t, end)) if c[0] < c[1]]
    return out


def _search_generators(k: int, m: int, min_res: int, budget: int = _SEARCH_BUDGET) -> tuple[int, ...] | None:
    """Branch and bound for minimum-aberration generators (base-column masks), resolution >= min_res.

    Generated factors are interchangeable, so columns are taken in increasing candidate order.
    Relabelling base factors does not change the word-length pattern, so each new column must fill
    a prefix of every cell of the partition of base factors cut by the columns chosen so far (any
    design is isomorphic to one of that form).  Word counts only grow as columns are added, so a
    partial word-length pattern already >= the best complete one (lexicographically) is cut.
    """
    p = k - m
    cands = sorted((c for c in range(1, 1 << m) if c.bit_count() >= max(2, min_res - 1)),
                   key=lambda c: (-c.bit_count(), c))   # long words first; canonical column first per weight
    best: list = [None, None]
    spent = 0

    def visit(depth: int, start: int, group: np.ndarray, wlp: np.ndarray, chosen: tuple[int, ...],
              cells: list[tuple[int, int]]) -> None:
        nonlocal spent
        for i in range(start, len(cands) - (p - depth) + 1):
            if spent >= budget:
                return
            col = cands[i]
            if len(cells) < m and not _is_cell_prefix(col, cells):
                continue
            spent += 1 + len(group) // 256
            new = group ^ np.uint64(col | 1 << (m + depth))
            lengths = _popcount(new)
            if int(lengths.min()) < min_res:
                continue
            pattern = wlp + np.bincount(lengths, minlength=k + 1)
            key = tuple(pattern.tolist())
            if best[0] is not None and key >= best[0]:
                continue
            if depth + 1 == p:
                best[0], best[1] = key, chosen + (col,)
            else:
                visit(depth + 1, i + 1, np.concatenate((group, new)), pattern, chosen + (col,),
                      _refine(col, cells) if len(cells) < m else cells)

    visit(0, 0, np.zeros(1, dtype=np.uint64), np.zeros(k + 1, dtype=np.int64), (), [(0, m)])
    return best[1]


def _choose_generators(k: int, m: int, resolution: int) -> tuple[int, ...] | None:
    # Minimum aberration implies maximum resolution, so search only among designs of the best
    # resolution this run size allows: a much smaller space.
    target = max(resolution, min(_max_resolution(k, m), 5))
    gens = _search_generators(k, m, target)
    if gens is None and target == 5 and resolution <= 4:
        target, gens = 4, _search_generators(k, m, 4)
    if gens is None and target == 4:   # always exists: odd-weight interactions give resolution IV
        gens = tuple(c for c in sorted(range(1 << m), key=lambda c: (-c.bit_count(), c))
                     if c.bit_count() >= 3 and c.bit_count() % 2)[: k - m]
    return gens


def _base_for_runs(runs: object, k: int, resolution: int) -> int:
    """log2(runs) after checking that `runs` is a power of two that can hold the requested design."""
    if isinstance(runs, bool) or not isinstance(runs, int) or runs < 2 or runs & (runs - 1):
        raise DesignError(f"runs must be a power of two; got runs={runs!r}")
    m = runs.bit_length() - 1
    if m >= k:
        raise DesignError(f"runs must be below 2^{k} = {2 ** k} for {k} factors (otherwise it is not "
                          f"a fraction; use full_factorial); got runs={runs}")
    best = _max_resolution(k, m)
    if best < resolution:
        avail = (f"at most resolution {_roman(best)}" if best
                 else f"no design (at most {runs - 1} factors fit)")
        need = _min_base(k, resolution)
        needed = f"{2 ** need} runs" + (", the full factorial" if need >= k else "")
        raise DesignError(f"{runs} runs give {avail} for {k} factors; resolution {_roman(resolution)} "
                          f"needs >= {needed}; got runs={runs}, resolution={resolution}, factors={k}")
    return m


def fractional_factorial(factors: Sequence[str], *, resolution: int = 4,
                         runs: int | None = None) -> TwoLevelDesign:
    """A minimum-aberration 2^(k-p) design of resolution >= `resolution` (3, 4 or 5).

    Without `runs`, the fewest runs that allow the resolution are used (if the search cannot
    find a resolution V design there within its budget, the next size up); with `runs` (a power
    of two below 2^k) exactly that many.  The first k-p factors are the base factors.
    """
    names = _check_factors(factors)
    k = len(names)
    if isinstance(resolution, bool) or not isinstance(resolution, int) or resolution not in (3, 4, 5):
        raise DesignError(f"resolution must be 3, 4 or 5; got resolution={resolution!r}")
    if k < 3:
        raise DesignError(f"a 2^(k-p) fraction with p >= 1 of {k} factor(s) has resolution below III "
                          f"(a main effect would be aliased with another or with the mean); "
                          f"use full_factorial; got factors={k}")
    if runs is None:
        need = _min_base(k, resolution)
        if need >= k:
            raise DesignError(f"a 2^(k-p) design of resolution {_roman(resolution)} for {k} factors "
                              f"needs >= {2 ** k} runs, which is the full factorial; "
                              f"got resolution={resolution}, factors={k}")
        sizes = range(need, k)
    else:
        m = _base_for_runs(runs, k, resolution)
        sizes = range(m, m + 1)
    for m in sizes:
        if k - m > _MAX_P or m > _MAX_LOG2_RUNS:
            raise DesignError(f"a 2^({k}-{k - m}) design is too large here (p <= {_MAX_P} and runs <= "
                              f"2^{_MAX_LOG2_RUNS}); pass a larger runs= or use plackett_burman; "
                              f"got factors={k}, runs={2 ** m}")
        gens = _choose_generators(k, m, resolution)
        if gens is not None:
            return _regular_design("fractional_factorial", names, m, gens, resolution)
    raise DesignError(f"the generator search found no resolution {_roman(resolution)} design for {k} "
                      f"factors within its budget; pass a larger runs= or lower the resolution; "
                      f"got factors={k}, resolution={resolution}, runs={runs}")


# -- Plackett-Burman ------------------------------------------------------------------------------
def _is_prime(n: int) -> bool:
    return n >= 2 and all(n % d for d in range(2, math.isqrt(n) + 1))


def _hadamard(n: int) -> np.ndarray | None:
    """A Hadamard matrix of order n with a first column of ones, or None if not constructed here."""
    if n == 1:
        return np.ones((1, 1), dtype=np.int64)
    q = n - 1
    if n in _PB_GENERATORS:
        row = np.array([1 if c == "+" else -1 for c in _PB_GENERATORS[n]], dtype=np.int64)
    elif n & q and _is_prime(q) and q % 4 == 3:   # quadratic-residue row (the family of PB's rows)
        residues = {i * i % q for i in range(1, q)}
        row = np.array([1 if i == 0 or i in residues else -1 for i in range(q)], dtype=np.int64)
    else:                                          # Sylvester doubling [[H, H], [H, -H]]
        half = _hadamard(n // 2) if n % 2 == 0 and (n & q == 0 or n % 8 == 0) else None
        return None if half is None else np.block([[half, half], [half, -half]])
    core = np.stack([np.roll(row, i) for i in range(q)] + [-np.ones(q, dtype=np.int64)])
    return np.concatenate((np.ones((n, 1), dtype=np.int64), core), axis=1)


def plackett_burman(factors: Sequence[str], *, foldover: bool = False) -> TwoLevelDesign:
    """k factors in the smallest N (multiple of 4, N > k) that can be built; e.g. 11 factors in 12 runs.

    N = 28, 36, 52 and 56 are not constructed here: the next buildable N is used instead.
    `foldover` appends the mirror image of every run (2N runs; Box & Hunter 1961): a
    two-factor interaction column is unchanged by the sign reversal while a main-effect column
    flips, so over the 2N runs every main effect is orthogonal to every two-factor interaction."""
    names = _check_factors(factors)
    k = len(names)
    if foldover and k < 3:
        raise DesignError(f"a fold-over of {k} factor(s) repeats the runs of the full factorial; use "
                          f"'design: {{kind: full_factorial}}'; got factors={k}")
    n = next(n for n in range(4 * (k // 4 + 1), 4 * len(_LETTERS) + 8, 4) if _hadamard(n) is not None)
    h = _hadamard(n)
    if not np.array_equal(h.T @ h, n * np.eye(n, dtype=np.int64)):
        raise DesignError(f"internal error: the order-{n} Hadamard matrix is not orthogonal")
    matrix = h[:, 1:k + 1].astype(np.int8)
    if foldover:
        matrix = np.concatenate((matrix, -matrix))
    _check_orthogonal(matrix)
    matrix.flags.writeable = False
    return TwoLevelDesign("plackett_burman", names, matrix, tuple(_LETTERS[:k]), (), (), 4 if foldover else 3,
                          foldover=foldover)


def design_resolution(matrix: np.ndarray) -> int | None:
    """Resolution of a regular +-1 design: the fewest columns whose product is constant.

    Works over GF(2): a set of columns multiplies to a constant iff their 0/1 versions XOR to all
    zeros or all ones.  None when no such set exists (a full factorial, or a non-regular design
    such as a 12-run Plackett-Burman, where confounding is only partial)."""
    x = np.asarray(matrix)
    if x.ndim != 2 or x.size == 0 or not np.isin(x, (-1, 1)).all():
        raise DesignError(f"matrix must be a non-empty 2-D array of -1/+1; got shape {x.shape}")
    if x.shape[1] > 63:
        raise DesignError(f"at most 63 columns are supported; got {x.shape[1]}")
    n = x.shape[0]
    vectors = [(1 << n) - 1] + [int.from_bytes(np.packbits(col < 0).tobytes(), "big") for col in x.T]
    basis: dict[int, tuple[int, int]] = {}
    kernel: list[int] = []
    for j, v in enumerate(vectors):   # vectors[0] is the all-ones vector ("constant -1")
        combo = 1 << j
        while v:
            top = v.bit_length() - 1
            if top not in basis:
                basis[top] = (v, combo)
                break
            v, combo = v ^ basis[top][0], combo ^ basis[top][1]
        else:
            kernel.append(combo >> 1)     # drop the all-ones vector: what is left is the word
    if not kernel:
        return None
    if len(kernel) > 22:
        raise DesignError(f"the matrix has 2^{len(kernel)} - 1 defining words, too many to enumerate")
    span = np.zeros(1, dtype=np.uint64)
    for w in kernel:
        span = np.concatenate((span, span ^ np.uint64(w)))
    return int(_popcount(span[1:]).min())
