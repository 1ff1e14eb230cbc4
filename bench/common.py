"""Shared helpers for every benchmark in ``bench/``: arguments, threads, resumable progress,
interleaved timing, peak memory, and the results page (table, command, machine, date, versions,
PNG plots).

The benchmark convention (what ``bench/run.py`` discovers)
----------------------------------------------------------
``bench/<name>.py`` is a benchmark when it defines ``main(argv=None)`` (or ``run(argv=None)``).
``bench/run.py`` runs each one in its own process from the repository root as
``python -m bench.<name> [--quick] [--fresh]`` and links ``docs/results/<name>.md`` from
``docs/results/index.md``. Optional module attributes, read without running anything::

    TITLE = "One line for the index"
    REQUIRES = ["splice_myplugin"]   # importable modules; run.py skips the benchmark (and says so)
                                     # when one is missing, e.g. a plugin that is not installed
    ESTIMATE_MIN = 5                 # rough minutes on the 2-core reference machine (run.py --list)
    ORDER = 50                       # run order (default 50; lower runs first)

A benchmark's skeleton::

    from bench import common, models

    TITLE = "My method vs the baseline on SmolLM2-135M"

    def main(argv=None):
        args = common.parse_args("mybench", argv)              # --quick --fresh --threads
        store = common.Store("mybench", fresh=args.fresh)      # resumable JSONL progress
        folder = models.smollm2()                              # real model, HF folder
        for cfg in configs:
            row = store.get(cfg) or store.put(cfg, measure(cfg))   # skipped when resumed
        page = common.Page("mybench", TITLE, args)
        page.text("What is compared and how.")
        page.table(store.rows(), columns=["method", "ppl", "ratio"])
        page.plot(fig, "mybench_scaling.png", "Scoring time vs context")
        page.write()                                            # docs/results/mybench.md (+ .png)
        store.finish()                                          # the next run starts afresh

    if __name__ == "__main__":
        main()

What this module offers
-----------------------
``REPO``, ``RESULTS_DIR``             repository root, ``docs/results``
``parse_args(name, argv, add=None)``  argparse with ``--quick`` (smoke-test sizes), ``--fresh``
                                      (ignore saved progress), ``--threads`` (default 1, set here);
                                      ``add(parser)`` adds a benchmark's own options
``set_threads(n)``                    torch intra/inter-op threads (1 by default: shared machine)
``Store(name, fresh=False)``          resumable progress, one JSON line per finished measurement:
                                      ``get(key)``, ``put(key, value)``, ``has(key)``, ``rows()``,
                                      ``finish()``; keys are str or JSON-able dicts
``interleaved(fns, repeats, warmup)`` time several callables alternately (ABC, CAB, BCA...) so
                                      machine contention hits all equally -> ``{name: Timing}``
                                      with ``.median``, ``.times``; ``ratio(a, b)`` of medians,
                                      ``paired_ratio(a, b)`` median of per-repeat ratios
``run_isolated(target, *args, **kw)`` call ``"module:function"`` in a fresh Python process;
                                      returns ``(result, peak_rss_bytes)`` (ru_maxrss);
                                      ``cpu_limit=`` CPU-seconds budget (``CPULimitExceeded``)
``peak_rss_bytes()``                  this process' peak RSS so far
``environment()``                     machine, load, date, git commit, software versions (dict)
``markdown_table(rows, columns)``     rows of dicts -> a Markdown table (floats to 4 significant)
``fmt_bytes(n)``, ``fmt_float(x)``    human-readable numbers
``log(msg)``                          a timestamped progress line on stderr
``page_name(name, model)``            ``name`` for smollm2, ``name-<slug>`` for another ``--model``
``progress(desc, total)``             ``splice.progress.progress`` (bar on a terminal, quiet else)
``Page(name, title, args)``           the results page: ``text(md)``, ``table(rows, columns)``,
                                      ``plot(fig, filename, caption)``, ``write()``; the page
                                      carries the exact command, machine, date, versions, run time
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import hashlib
import importlib.metadata as _md
import json
import math
import os
import platform
import resource
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
RESULTS_DIR = REPO / "docs" / "results"
ENTRY_POINTS = ("main", "run")  # a bench/<name>.py defining one of these is a benchmark

from splice.progress import progress  # re-exported for benchmarks  # noqa: F401

# -- arguments and threads -------------------------------------------------------------------------

def parse_args(name: str, argv: list[str] | None = None,
               add: Callable[[argparse.ArgumentParser], None] | None = None) -> argparse.Namespace:
    """Standard options of every benchmark; sets torch threads. ``args.name`` is ``name``."""
    p = argparse.ArgumentParser(prog=f"python -m bench.{name}")
    p.add_argument("--quick", action="store_true", help="small sizes: a smoke test of the whole benchmark")
    p.add_argument("--fresh", action="store_true", help="discard saved progress of an unfinished run")
    p.add_argument("--threads", type=int, default=int(os.environ.get("SPLICE_BENCH_THREADS", "1")),
                   help="torch threads (default 1: the reference machine is shared)")
    if add is not None:
        add(p)
    args = p.parse_args(argv)
    args.name = name
    args.argv = list(sys.argv[1:] if argv is None else argv)
    set_threads(args.threads)
    return args


def set_threads(n: int = 1) -> None:
    import torch

    torch.set_num_threads(max(1, n))
    setter = getattr(torch, "set_num_interop_threads", None) or getattr(torch, "set_interop_threads", None)
    if setter is not None:
        with contextlib.suppress(RuntimeError):  # only settable before the first parallel work
            setter(1)


def page_name(name: str, model: str | None) -> str:
    """``name`` for the default model (``smollm2``), ``name-<model slug>`` for any other, so a run on
    another model writes its own page instead of replacing the reference one."""
    if model in (None, "smollm2"):
        return name
    slug = "".join(c if c.isalnum() else "-" for c in Path(str(model)).name.removesuffix(".gguf").lower())
    return f"{name}-{slug.strip('-')}"


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# -- resumable progress ----------------------------------------------------------------------------

def _key(key: Any) -> str:
    return key if isinstance(key, str) else json.dumps(key, sort_keys=True, default=str)


_OPEN_STORES: list[Store] = []  # every Store of this process: Page.write sums their measurement time


class Store:
    """Finished measurements of one benchmark, one JSON line each, so an interrupted run resumes.

    The file is ``$SPLICE_CACHE/bench/<name>.jsonl`` (default ``~/.cache/splice/bench``).
    ``finish()`` (after the page is written) removes it, so the next run measures afresh; a run
    that died keeps it, and rerunning the benchmark skips what is already there.

    Each record also keeps the seconds it took (since the previous record, or since the store was
    opened), so a page written by a resumed run can still state how long the whole measurement takes.
    """

    def __init__(self, name: str, fresh: bool = False, directory: str | os.PathLike | None = None) -> None:
        root = Path(directory) if directory else Path(os.environ.get("SPLICE_CACHE", "~/.cache/splice")).expanduser() / "bench"
        root.mkdir(parents=True, exist_ok=True)
        self.path = root / f"{name}.jsonl"
        self._data: dict[str, Any] = {}
        self._seconds: dict[str, float] = {}
        self._mark = time.perf_counter()
        _OPEN_STORES.append(self)
        if fresh and self.path.exists():
            self.path.unlink()
        if self.path.exists():
            for line in self.path.read_text().splitlines():
                with contextlib.suppress(json.JSONDecodeError):  # a line cut by a kill
                    rec = json.loads(line)
                    self._data[rec["key"]] = rec["value"]
                    secs = rec.get("seconds")
                    if secs is None and isinstance(rec["value"], dict):  # older records timed in their value
                        secs = rec["value"].get("seconds")
                    if isinstance(secs, (int, float)):
                        self._seconds[rec["key"]] = secs
            if self._data:
                log(f"{name}: resuming, {len(self._data)} measurement(s) already done ({self.path})")

    def has(self, key: Any) -> bool:
        return _key(key) in self._data

    def get(self, key: Any, default: Any = None) -> Any:
        return self._data.get(_key(key), default)

    def put(self, key: Any, value: Any, seconds: float | None = None) -> Any:
        """Store a finished measurement; ``seconds`` it took (default: since the previous put)."""
        k = _key(key)
        now = time.perf_counter()
        secs = round(now - self._mark if seconds is None else seconds, 2)
        self._mark = now
        self._data[k] = value
        self._seconds[k] = secs
        with open(self.path, "a") as fh:
            fh.write(json.dumps({"key": k, "value": value, "seconds": secs}, default=str) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        return value

    @property
    def measured_seconds(self) -> float:
        """Seconds the stored measurements took, over every run that contributed to them."""
        return sum(self._seconds.get(k, 0.0) for k in self._data)

    @property
    def untimed(self) -> int:
        """Records written before records carried their time."""
        return sum(k not in self._seconds for k in self._data)

    def rows(self) -> list[Any]:
        return list(self._data.values())

    def __len__(self) -> int:
        return len(self._data)

    def finish(self) -> None:
        """The run is complete: the next one starts afresh (the records stay in ``<name>.done.jsonl``)."""
        with contextlib.suppress(FileNotFoundError):
            os.replace(self.path, self.path.with_suffix(".done.jsonl"))


def deadline_after(max_minutes: float | None) -> float | None:
    """The ``time.time()`` after which a resumable benchmark starts no new work (None: no limit)."""
    return None if max_minutes is None else time.time() + 60 * max_minutes


def run_grid(store: Store, cases: list[tuple[Any, str]], run: Callable[[Any], dict | None],
             describe: Callable[[dict], str], deadline: float | None = None) -> bool:
    """Run every ``(key, label)`` case that ``store`` does not hold yet, storing each result.

    ``run(key)`` returns the result (a dict with its own ``seconds``), or None when it paused mid-run
    at ``deadline`` (having checkpointed itself). Returns True when every case is stored, False when
    the time budget ran out first (rerun to continue).
    """
    for key, label in cases:
        if store.has(key):
            continue
        if deadline is not None and time.time() > deadline:
            left = sum(not store.has(k) for k, _ in cases)
            log(f"time budget reached; {left} run(s) left: rerun to continue")
            return False
        log(f"{label}: running")
        result = run(key)
        if result is None:
            log("time budget reached mid-run (checkpoint saved): rerun to continue")
            return False
        log(f"{label}: {describe(result)} ({result.get('seconds', 0) / 60:.1f} min)")
        store.put(key, result)
    return True


# -- timing ----------------------------------------------------------------------------------------

def _median(xs: list[float]) -> float:
    s = sorted(xs)
    n = len(s)
    return float("nan") if n == 0 else (s[n // 2] if n % 2 else 0.5 * (s[n // 2 - 1] + s[n // 2]))


@dataclass
class Timing:
    """Wall-clock seconds per call (``times``) and CPU seconds of this process (``cpu``)."""

    name: str
    times: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return _median(self.times)

    @property
    def cpu_median(self) -> float:
        return _median(self.cpu)

    @property
    def min(self) -> float:
        return min(self.times)

    @property
    def spread(self) -> float:
        """(max - min) / median: how noisy the repeats were."""
        return (max(self.times) - min(self.times)) / self.median if self.times else float("nan")


def interleaved(fns: dict[str, Callable[[], Any]], repeats: int = 5, warmup: int = 1) -> dict[str, Timing]:
    """Time each callable ``repeats`` times, alternating between them and rotating the order every
    round, so load from other processes on a shared machine falls on all of them alike. Records
    wall-clock seconds per call and the CPU seconds of this process (``time.process_time``: with one
    torch thread it leaves out the time spent waiting for a core, the fairer measure on a busy
    machine)."""
    names = list(fns)
    for _ in range(warmup):
        for n in names:
            fns[n]()
    out = {n: Timing(n) for n in names}
    for r in range(repeats):
        order = names[r % len(names):] + names[: r % len(names)]
        for n in order:
            t0, c0 = time.perf_counter(), time.process_time()
            fns[n]()
            out[n].times.append(time.perf_counter() - t0)
            out[n].cpu.append(time.process_time() - c0)
    return out


def ratio(a: Timing, b: Timing) -> float:
    """How many times faster ``a`` is than ``b`` (b.median / a.median)."""
    return b.median / a.median


def paired_ratio(a: Timing, b: Timing, cpu: bool = False) -> float:
    """Median over repeats of b.times[i] / a.times[i] (``cpu``: of the CPU seconds): each pair ran
    back to back, so a change in the machine's load between repeats cancels out (more robust than
    ``ratio`` on a busy machine)."""
    xa, xb = (a.cpu, b.cpu) if cpu else (a.times, b.times)
    return _median([tb / ta for ta, tb in zip(xa, xb)])


# -- memory ----------------------------------------------------------------------------------------

def peak_rss_bytes() -> int:
    """Peak resident set size of this process so far (Linux reports KiB, macOS bytes)."""
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(r if sys.platform == "darwin" else r * 1024)


_ISOLATED = r"""
import importlib, json, resource, sys
sys.path.insert(0, {repo!r})
import torch
torch.set_num_threads({threads})
mod, fn = {target!r}.split(":")
args, kwargs = json.loads(sys.stdin.read())
result = getattr(importlib.import_module(mod), fn)(*args, **kwargs)
r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print("\n__SPLICE_RESULT__" + json.dumps({{"result": result, "maxrss": r if sys.platform == "darwin" else r * 1024}}, default=str))
"""


class CPULimitExceeded(RuntimeError):
    """A ``run_isolated`` call used up its CPU-seconds budget (``cpu_limit``)."""


def run_isolated(target: str, *args: Any, threads: int = 1, timeout: float | None = None,
                 cpu_limit: float | None = None, **kwargs: Any) -> tuple[Any, int]:
    """Call ``target`` (``"package.module:function"``, JSON-able arguments and result) in a fresh
    Python process; return ``(result, peak_rss_bytes)`` of that process, so each configuration's
    memory is measured alone.

    ``cpu_limit``: CPU seconds the process may use (``RLIMIT_CPU``), a budget that means the same on
    an idle and on a shared, busy machine; exceeding it raises ``CPULimitExceeded``. ``timeout``:
    wall-clock seconds (``subprocess.TimeoutExpired``)."""
    code = _ISOLATED.format(repo=str(REPO), threads=threads, target=target)

    def limit() -> None:  # runs in the child before Python starts
        if cpu_limit is not None:
            soft = max(1, int(cpu_limit))
            resource.setrlimit(resource.RLIMIT_CPU, (soft, soft + 10))

    res = subprocess.run([sys.executable, "-c", code], input=json.dumps([args, kwargs]), capture_output=True,
                         check=False, text=True, cwd=REPO, timeout=timeout,
                         preexec_fn=limit if cpu_limit is not None else None)
    if cpu_limit is not None and res.returncode in (-signal.SIGXCPU, -signal.SIGKILL, 128 + signal.SIGXCPU):
        raise CPULimitExceeded(f"{target} used more than {cpu_limit:.0f} CPU seconds")
    if res.returncode != 0 or "__SPLICE_RESULT__" not in res.stdout:
        raise RuntimeError(f"{target} failed in a subprocess (exit {res.returncode}):\n{res.stderr[-3000:]}")
    out = json.loads(res.stdout.rsplit("__SPLICE_RESULT__", 1)[1])
    return out["result"], int(out["maxrss"])


# -- environment -----------------------------------------------------------------------------------

def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def _mem_total() -> int | None:
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                return int(line.split()[1]) * 1024
    return None


def _git(*args: str) -> str | None:
    with contextlib.suppress(Exception):
        r = subprocess.run(["git", *args], capture_output=True, text=True, cwd=REPO, timeout=10, check=False)
        if r.returncode == 0:
            return r.stdout.strip()
    return None


def versions(extra: Iterable[str] = ()) -> dict[str, str]:
    """Versions of python, torch, transformers, ... and of every installed splice plugin."""
    out = {"python": platform.python_version()}
    for pkg in ("splice", "torch", "transformers", "tokenizers", "safetensors", "gguf", "numpy", "triton", *extra):
        with contextlib.suppress(_md.PackageNotFoundError):
            out[pkg] = _md.version(pkg)
    with contextlib.suppress(Exception):
        for ep in _md.entry_points(group="splice"):
            dist = getattr(ep, "dist", None)
            if dist is not None and dist.metadata["Name"] not in out:
                out[dist.metadata["Name"]] = dist.version
    return out


def environment() -> dict[str, Any]:
    """Everything a results page states about where and when it was measured."""
    cores = os.cpu_count()
    with contextlib.suppress(AttributeError):
        cores = len(os.sched_getaffinity(0))
    commit = _git("rev-parse", "--short", "HEAD")
    dirty = _git("status", "--porcelain", "--untracked-files=no")
    import torch

    return {
        "date": _dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        "machine": f"{_cpu_model()}, {cores} cores available, "
                   f"{fmt_bytes(_mem_total()) if _mem_total() else '? '} RAM, {platform.system()} {platform.release()}",
        "torch_threads": torch.get_num_threads(),
        "load_avg": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "git": f"{commit}{' (uncommitted changes)' if dirty else ''}" if commit else None,
        "versions": versions(),
    }


def command_line(args: argparse.Namespace | None = None) -> str:
    """The command that reproduces this run, from the repository root."""
    if args is not None and getattr(args, "name", None):
        return " ".join([".venv/bin/python -m", f"bench.{args.name}", *map(shlex.quote, args.argv)])
    return " ".join(map(shlex.quote, [Path(sys.executable).name, *sys.argv]))


# -- formatting ------------------------------------------------------------------------------------

def fmt_bytes(n: float | None) -> str:
    if n is None:
        return "-"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def fmt_float(x: Any, digits: int = 4) -> str:
    if isinstance(x, bool) or not isinstance(x, float):
        return "-" if x is None else str(x)
    if math.isnan(x):
        return "nan"
    if x == 0:
        return "0"
    if abs(x) >= 10 ** digits or abs(x) < 10 ** -(digits - 1):
        return f"{x:.{digits - 1}e}"
    return f"{x:.{digits}g}"


def markdown_table(rows: list[dict[str, Any]], columns: list[str] | dict[str, str] | None = None,
                   formats: dict[str, Callable[[Any], str]] | None = None) -> str:
    """Rows of dicts -> Markdown. ``columns``: keys to show (a dict maps key -> header);
    ``formats``: key -> formatter (floats default to 4 significant digits)."""
    if not rows:
        return "_(no rows)_\n"
    if columns is None:
        columns = list(dict.fromkeys(k for r in rows for k in r))
    headers = columns if isinstance(columns, dict) else {c: c for c in columns}
    formats = formats or {}
    lines = ["| " + " | ".join(headers.values()) + " |", "|" + "|".join(" --- " for _ in headers) + "|"]
    for r in rows:
        cells = [formats[c](r.get(c)) if c in formats else fmt_float(r.get(c)) for c in headers]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"


# -- the results page ------------------------------------------------------------------------------

class Page:
    """A results page ``docs/results/<name>.md`` with its PNG plots beside it.

    Call ``text``/``table``/``plot`` in reading order, then ``write()``. The page ends with how it
    was measured: the exact command, machine, load, date, git commit, versions, wall time.
    """

    def __init__(self, name: str, title: str, args: argparse.Namespace | None = None,
                 out_dir: str | os.PathLike | None = None) -> None:
        self.name, self.title, self.args = name, title, args
        self.out_dir = Path(out_dir) if out_dir else RESULTS_DIR
        self.parts: list[str] = []
        self.started = time.time()
        self.env_start = environment()
        self.notes: list[str] = []

    def text(self, markdown: str) -> Page:
        self.parts.append(markdown.strip() + "\n")
        return self

    def heading(self, text: str, level: int = 2) -> Page:
        return self.text("#" * level + " " + text)

    def table(self, rows: list[dict[str, Any]], columns: list[str] | dict[str, str] | None = None,
              formats: dict[str, Callable[[Any], str]] | None = None, caption: str | None = None) -> Page:
        self.parts.append((f"{caption}\n\n" if caption else "") + markdown_table(rows, columns, formats))
        return self

    def plot(self, fig, filename: str, caption: str = "") -> Path:
        """Save a matplotlib figure as ``docs/results/<filename>`` and show it on the page."""
        if not filename.endswith(".png"):
            filename += ".png"
        self.out_dir.mkdir(parents=True, exist_ok=True)
        path = self.out_dir / filename
        fig.savefig(path, dpi=110, bbox_inches="tight", metadata={"Software": None})
        import matplotlib.pyplot as plt

        plt.close(fig)
        self.parts.append(f"![{caption or filename}]({filename})\n" + (f"\n*{caption}*\n" if caption else ""))
        return path

    def note(self, text: str) -> Page:
        """A line for the 'how it was measured' section (e.g. contention, window counts)."""
        self.notes.append(text)
        return self

    def write(self) -> Path:
        env = environment()
        quick = bool(getattr(self.args, "quick", False))
        minutes = (time.time() - self.started) / 60
        measured = measurement_time()
        load = env_load = self.env_start.get("load_avg")
        end_load = env.get("load_avg")
        vers = ", ".join(f"{k} {v}" for k, v in env["versions"].items())
        meta = [
            f"- Command (from the repository root): `{command_line(self.args)}`",
            f"- Machine: {env['machine']}; torch threads: {env['torch_threads']}",
            f"- Load average (1/5/15 min) at start {_fmt_load(env_load)}, at end {_fmt_load(end_load)}"
            if load else None,
            f"- Date: {env['date']}; wall time {minutes:.1f} min" + (f"; measurement time {measured}" if measured else ""),
            f"- Code: git {env['git']}" if env.get("git") else None,
            f"- Software: {vers}",
            *[f"- {n}" for n in self.notes],
        ]
        body = [f"# {self.title}\n"]
        if quick:
            body.append("> **Quick run** (`--quick`: reduced sizes, a smoke test; not the reported figures).\n")
        body += self.parts
        body.append("## How this was measured\n\n" + "\n".join(m for m in meta if m) + "\n")
        self.out_dir.mkdir(parents=True, exist_ok=True)
        path = self.out_dir / f"{self.name}.md"
        path.write_text("\n".join(body))
        log(f"wrote {path.relative_to(REPO) if path.is_relative_to(REPO) else path}")
        return path


def measurement_time() -> str:
    """The summed time of every measurement behind this process's pages (its Stores), which is what
    one uninterrupted run takes (less start-up) even when this run resumed and measured little."""
    latest = {st.path: st for st in _OPEN_STORES}  # a store opened twice counts once, as last read
    stores = [st for st in latest.values() if len(st)]
    if not stores:
        return ""
    text = f"{sum(st.measured_seconds for st in stores) / 60:.1f} min"
    untimed = sum(st.untimed for st in stores)
    if untimed:
        text += f" (+ {untimed} result(s) stored before results carried their time)"
    return text


def _fmt_load(load) -> str:
    return "?" if not load else "/".join(f"{x:.1f}" for x in load)


def digest(obj: Any) -> str:
    """A short stable hash of a JSON-able object (e.g. to key a Store by a config)."""
    return hashlib.sha1(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:12]
