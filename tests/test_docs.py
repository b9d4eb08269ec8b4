"""The manual (docs/, mkdocs.yml) and the README: they build strictly, their links resolve, the
spec reference lists every field, and their examples run, so none of it can rot.

Conventions (docs/development/index.md): every ```python block runs; a ```bash block runs when
the line before it is `<!-- run -->`; `<!-- run: shrunk -->` runs a block with its specs shrunk
(`--shrink` on `ablate run|plan`, `ablate.run` given shrunk specs): those train models, so they
are slow tests; a ```yaml block after `<!-- spec -->` must load as a spec.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
README = ROOT / "README.md"
MKDOCS = ROOT / "mkdocs.yml"
PAGES = sorted(p for p in DOCS.rglob("*.md"))
SOURCES = [README, *PAGES]

@dataclass(frozen=True)
class Block:
    source: Path
    line: int          # 1-based line of the opening fence
    lang: str
    marker: str        # the HTML comment on the line before the fence ('' if none)
    code: str

    @property
    def id(self) -> str:
        return f"{self.source.relative_to(ROOT)}:{self.line}"


FENCE = re.compile(r"^```(\w*)\s*$")
MARKER = re.compile(r"^<!--\s*(.*?)\s*-->\s*$")


def blocks(path: Path) -> list[Block]:
    """The fenced code blocks of a markdown file, each with the marker line before it."""
    lines = path.read_text().split("\n")
    out, i = [], 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        j = i + 1
        while j < len(lines) and lines[j].rstrip() != "```":
            j += 1
        prev = next((lines[k] for k in range(i - 1, -1, -1) if lines[k].strip()), "")
        mark = MARKER.match(prev)
        out.append(Block(path, i + 1, m.group(1), mark.group(1) if mark else "", "\n".join(lines[i + 1:j])))
        i = j + 1
    return out


ALL_BLOCKS = [b for s in SOURCES for b in blocks(s)]


def _distinct(selected: list[Block]) -> list[Block]:
    # the five-line quickstart is shown on several pages: run each distinct example once
    seen, out = set(), []
    for b in selected:
        if (b.code, b.marker) not in seen:
            seen.add((b.code, b.marker))
            out.append(b)
    return out


def _params(selected: list[Block]):
    return [pytest.param(b, id=b.id, marks=[pytest.mark.slow] if b.marker == "run: shrunk" else [])
            for b in _distinct(selected)]


PYTHON = [b for b in ALL_BLOCKS if b.lang == "python"]
BASH = [b for b in ALL_BLOCKS if b.lang in ("bash", "sh") and b.marker in ("run", "run: shrunk")]
SPECS = [b for b in ALL_BLOCKS if b.lang == "yaml" and b.marker == "spec"]
KNOWN_MARKERS = {"", "run", "run: shrunk", "spec", "output", "test-command", "quickstart-command"}


def _env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])])
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env.pop("ABLATE_STORE", None)
    return env


# -- the build ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("site")
    r = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
                       cwd=ROOT, env={**_env(), "NO_MKDOCS_2_WARNING": "1"}, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, f"mkdocs build --strict failed:\n{r.stdout}\n{r.stderr}"
    assert "WARNING" not in r.stderr, r.stderr
    return out


def test_the_manual_builds_strictly_with_every_page_in_the_navigation(site):
    # strict: every warning (a broken link or anchor, a page left out of nav) fails the build
    nav_pages = yaml.safe_load(MKDOCS.read_text())["nav"]
    flat = []

    def walk(node):
        if isinstance(node, str):
            flat.append(node)
        elif isinstance(node, list):
            for n in node:
                walk(n)
        elif isinstance(node, dict):
            for v in node.values():
                walk(v)
    walk(nav_pages)
    assert sorted(flat) == sorted(str(p.relative_to(DOCS)) for p in PAGES)
    for page in flat:
        html = site / (page[:-3] + "/index.html" if not page.endswith("index.md") else page[:-3] + ".html")
        assert html.is_file(), page


def test_the_spec_reference_lists_every_field_of_every_section(site):
    sys.path.insert(0, str(DOCS / "hooks"))
    try:
        import spec_fields
    finally:
        sys.path.remove(str(DOCS / "hooks"))
    html = (site / "spec" / "index.html").read_text()
    _, models = spec_fields.model_tables()
    names = {m.__name__ for _, m in models}
    # every alternative of every section is reached: the walk is not cut short
    for expected in ("Spec", "DigitsConfig", "CifarResNetConfig", "TimmConfig", "Recipe", "CommandTrial",
                     "Retries", "Resources", "EarlyStop", "ExplicitDesign", "PlackettBurmanDesign",
                     "Seeds", "AdaptiveSeeds", "Metric", "SearchConfig"):
        assert expected in names, expected
    for path, model in models:
        anchor = spec_fields._anchor(path, model)
        start = html.index(f'id="{anchor}"')
        table = html[start:html.index("</table>", start)]
        for field in model.model_fields:
            assert f"<code>{field}</code>" in table, f"{path} ({model.__name__}): field {field!r} not listed"
    from ablate.tricks import all_tricks

    for name in all_tricks():
        assert f"<code>{name}</code>" in html, f"trick {name!r} missing from the trick table"


def test_the_field_tables_follow_the_models_they_are_generated_from():
    # drift: a field added to a model appears in the page without anyone editing it
    from pydantic import BaseModel, Field

    sys.path.insert(0, str(DOCS / "hooks"))
    try:
        import spec_fields
    finally:
        sys.path.remove(str(DOCS / "hooks"))

    class Inner(BaseModel):
        depth: int = Field(8, ge=1, le=200, description="blocks per stage")

    class Outer(BaseModel):
        name: str
        inner: Inner | None = None
        extra_field: list[Inner] = []

    text, models = spec_fields.model_tables(Outer)
    assert [(p, m.__name__) for p, m in models] == [("spec", "Outer"), ("inner", "Inner"),
                                                    ("extra_field[]", "Inner")]
    assert "| `extra_field` | list of [Inner]" in text and "| `name` | `str` | **required**" in text
    assert "| `depth` | `int` | `8` | ≥ `1`, ≤ `200` | blocks per stage |" in text


def test_every_marker_is_one_the_tests_know():
    # a misspelt marker would silently turn an example off
    for b in ALL_BLOCKS:
        assert b.marker in KNOWN_MARKERS or not b.marker.startswith(("run", "spec", "output")), b.id
    for b in ALL_BLOCKS:
        if b.marker == "output":
            assert any(shown_output(r) == b for r in BASH), f"{b.id}: output of no runnable block"


def test_the_readme_links_resolve_and_it_stays_short():
    text = README.read_text()
    assert len(text.encode()) <= 12 * 1024, f"README.md is {len(text.encode())} bytes (limit 12 KB)"
    links = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text)
    assert links, "the README links to the manual"
    for link in links:
        if not link.startswith(("http://", "https://")):
            assert (ROOT / link).exists(), f"README links to {link}, which does not exist"


def test_the_readme_test_command_is_where_ci_reads_it():
    # .ci/run: grep -A2 '<!-- test-command -->' README.md | sed -n '3p'
    lines = README.read_text().split("\n")
    i = lines.index("<!-- test-command -->")
    assert lines[i + 1] == "```" and lines[i + 2].startswith("python3 -m venv .venv")
    assert lines[i + 2].endswith('python -m pytest -q -m "not slow"') and "'.[test]'" in lines[i + 2]
    j = lines.index("<!-- quickstart-command -->")
    assert lines[j + 2].endswith("&& ablate run quickstart")


def _table_and_notes(text: str) -> list[str]:
    start = text.index("| Arm |")
    end = text.index("- Trials: 24 complete.") + len("- Trials: 24 complete.")
    rows = text[start:end].split("\n")
    # the Time/trial column is a timing: it differs between runs, everything else may not
    return [r.rsplit("|", 2)[0] if r.startswith("|") else r for r in rows]


def test_the_readme_shows_the_quickstarts_real_table_verdict_and_footnotes():
    readme = _table_and_notes(README.read_text())
    report = _table_and_notes((ROOT / "reports" / "quickstart" / "lift.md").read_text())
    assert readme == report
    assert any(r.startswith("**Verdict:**") for r in readme) and len(readme) > 15


# -- the examples ---------------------------------------------------------------------------


SHRINK_PRELUDE = textwrap.dedent("""
    import os as _os
    import ablate as _ablate
    _run, _load = _ablate.run, _ablate.load_spec
    def _shrunk_run(source, *args, **kwargs):
        if isinstance(source, (str, dict, _os.PathLike)):
            source = _load(source, shrink=True)
        return _run(source, *args, **kwargs)
    _ablate.run = _shrunk_run
    """)


def run_python(code: str, cwd: Path, *, shrunk: bool = False, timeout: float = 600) -> subprocess.CompletedProcess:
    script = (SHRINK_PRELUDE if shrunk else "") + code
    return subprocess.run([sys.executable, "-c", script], cwd=cwd, env=_env(), capture_output=True,
                          text=True, timeout=timeout)


def run_bash(code: str, cwd: Path, *, shrunk: bool = False, timeout: float = 600) -> subprocess.CompletedProcess:
    if shrunk:
        # after the command's own arguments, before a pipe, `&&`, `;` or a redirection
        code = re.sub(r"(\bablate (?:run|plan)\b[^|;&>\n]*?)(\s*)(?=[|;&>]|$)", r"\1 --shrink\2", code,
                      flags=re.M)
    return subprocess.run(["bash", "-euo", "pipefail", "-c", code], cwd=cwd, env=_env(),
                          capture_output=True, text=True, timeout=timeout)


def test_the_example_runner_can_fail(tmp_path):
    # a broken example must fail its test: an exception, a non-zero exit, a failed command
    assert run_python("raise ValueError('broken example')", tmp_path).returncode != 0
    assert run_bash("false\necho after", tmp_path).returncode != 0
    assert run_bash("ablate plan no_such_spec", tmp_path).returncode == 2
    assert run_python("print('ok')", tmp_path).returncode == 0
    # --shrink reaches the commands of a shrunk block
    r = run_bash("ablate plan quickstart --no-estimate | head -1", tmp_path, shrunk=True)
    assert r.returncode == 0 and "quickstart-shrunk" in r.stdout, r.stdout + r.stderr


@pytest.mark.parametrize("block", _params(PYTHON))
def test_python_example_runs(block: Block, tmp_path):
    r = run_python(block.code, tmp_path, shrunk=block.marker == "run: shrunk")
    assert r.returncode == 0, f"{block.id} failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"


def shown_output(block: Block) -> Block | None:
    """The block after `block` when it is marked `<!-- output -->`: what the command prints."""
    later = [b for b in ALL_BLOCKS if b.source == block.source and b.line > block.line]
    return later[0] if later and later[0].marker == "output" else None


@pytest.mark.parametrize("block", _params(BASH))
def test_bash_example_runs(block: Block, tmp_path):
    r = run_bash(block.code, tmp_path, shrunk=block.marker == "run: shrunk")
    assert r.returncode == 0, f"{block.id} failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    shown = shown_output(block)
    if shown is not None:
        # every line shown ("..." elides some) is printed, in that order
        printed = r.stdout.split("\n")
        at = 0
        for line in shown.code.split("\n"):
            if line.strip() == "...":
                continue
            assert line in printed[at:], f"{shown.id}: the docs show {line!r}, which the command no longer prints"
            at = printed.index(line, at) + 1


@pytest.mark.parametrize("block", [pytest.param(b, id=b.id) for b in SPECS])
def test_spec_example_loads(block: Block, tmp_path, monkeypatch):
    from ablate.design.spec import load_spec

    monkeypatch.chdir(ROOT)     # relative paths in a spec (trial.cwd) are relative to where ablate runs
    path = tmp_path / "example.yaml"
    path.write_text(block.code + "\n")
    spec = load_spec(path)
    assert spec.name and spec.seeds.values


@pytest.mark.slow   # trains the quickstart, shrunk (6 one-epoch trials)
def test_the_readme_quickstart_command_runs_shrunk(tmp_path):
    lines = README.read_text().split("\n")
    command = lines[lines.index("<!-- quickstart-command -->") + 2].split("&& ")[-1]
    r = run_bash(command, tmp_path, shrunk=True)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert (tmp_path / "reports" / "quickstart-shrunk" / "lift.md").is_file()
