"""bench.common and bench/run.py: resumable progress, timing, pages, discovery, the index."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench import common
from bench import run as runner


def test_store_resumes_and_finish_forgets(tmp_path):
    s = common.Store("x", directory=tmp_path)
    s.put({"ctx": 512, "w": 0}, {"nll": 1.5})
    s.put("plain", [1, 2])
    with open(s.path, "a") as fh:  # a line cut by a kill is ignored, not fatal
        fh.write('{"key": "cut", "val')
    again = common.Store("x", directory=tmp_path)
    assert again.get({"w": 0, "ctx": 512}) == {"nll": 1.5}  # key order does not matter
    assert again.has("plain") and not again.has("cut") and len(again) == 2
    again.finish()
    assert not common.Store("x", directory=tmp_path).has("plain")
    assert (tmp_path / "x.done.jsonl").exists()  # the finished run's records are kept aside
    s2 = common.Store("y", directory=tmp_path)
    s2.put("a", 1)
    assert not common.Store("y", fresh=True, directory=tmp_path).has("a")


def test_store_keeps_each_measurements_time_across_resumed_runs(tmp_path, monkeypatch):
    clock = [100.0]
    monkeypatch.setattr(common.time, "perf_counter", lambda: clock[0])
    monkeypatch.setattr(common, "_OPEN_STORES", [])
    s = common.Store("t", directory=tmp_path)
    clock[0] += 30
    s.put("a", 1)  # 30 s since the store was opened
    clock[0] += 12
    s.put("b", 2, seconds=5.0)  # an explicit time wins
    with open(s.path, "a") as fh:  # records from before records carried their time, one timed in its value
        fh.write('{"key": "old", "value": 3}\n{"key": "older", "value": {"loss": 1.0, "seconds": 60}}\n')
    clock[0] += 1000  # the run dies; the next one resumes and measures one more thing
    again = common.Store("t", directory=tmp_path)
    clock[0] += 60
    again.put("c", 4)
    assert again.measured_seconds == 155.0 and again.untimed == 1
    assert common.measurement_time() == "2.6 min (+ 1 result(s) stored before results carried their time)"


def test_run_grid_skips_stored_cases_and_pauses_at_the_deadline(tmp_path, monkeypatch):
    monkeypatch.setattr(common, "_OPEN_STORES", [])
    store = common.Store("grid", directory=tmp_path)
    store.put({"i": 0}, {"v": 0, "seconds": 1.0})
    ran = []

    def run(key):
        ran.append(key["i"])
        return None if key["i"] == 2 else {"v": key["i"], "seconds": 1.0}  # case 2 pauses mid-run

    cases = [({"i": i}, f"case {i}") for i in range(4)]
    assert not common.run_grid(store, cases, run, lambda r: str(r["v"]))
    assert ran == [1, 2] and store.has({"i": 1}) and not store.has({"i": 2})
    assert not common.run_grid(store, cases, run, lambda r: "", deadline=0.0)  # past the deadline: no new work
    assert ran == [1, 2]
    ran.clear()
    assert common.run_grid(store, cases[:2], run, lambda r: "") and ran == []  # all stored: nothing runs


def test_interleaved_alternates_and_times_each_call(monkeypatch):
    clock = [0.0]  # a fake clock: each function "takes" a fixed time, so the test is exact on a busy machine
    monkeypatch.setattr(common.time, "perf_counter", lambda: clock[0])
    cost = {"a": 1.0, "b": 3.0, "c": 2.0}
    calls = []

    def make(n):
        def fn():
            calls.append(n)
            clock[0] += cost[n]
        return fn

    t = common.interleaved({n: make(n) for n in "abc"}, repeats=3, warmup=1)
    assert calls[:3] == ["a", "b", "c"]  # warm-up
    assert calls[3:] == ["a", "b", "c", "b", "c", "a", "c", "a", "b"]  # rotated order every round
    assert t["a"].times == [1.0] * 3 and t["b"].times == [3.0] * 3
    assert common.ratio(t["a"], t["b"]) == 3.0 and common.paired_ratio(t["a"], t["b"]) == 3.0
    # a load spike that hits both runs of one pair leaves the paired ratio alone
    fast, slow = common.Timing("f", [1.0, 10.0, 1.0]), common.Timing("s", [2.0, 20.0, 2.0])
    assert common.paired_ratio(fast, slow) == 2.0


def test_timing_median_and_markdown_table():
    assert common.Timing("t", [3.0, 1.0, 2.0]).median == 2.0
    assert common.Timing("t", [4.0, 1.0, 2.0, 3.0]).median == 2.5
    md = common.markdown_table([{"a": 1.234567, "b": "x|y"}, {"a": None}], columns={"a": "A", "b": "B"})
    lines = md.splitlines()
    assert lines[0] == "| A | B |" and lines[2] == "| 1.235 | x\\|y |" and lines[3] == "| - | - |"


def test_run_isolated_returns_result_and_peak_rss():
    out, rss = common.run_isolated("json:dumps", {"k": [1, 2]})
    assert out == '{"k": [1, 2]}'
    assert rss > 10 * 2**20  # a Python process with torch imported
    with pytest.raises(RuntimeError, match="failed in a subprocess"):
        common.run_isolated("json:loads", "not json")


def test_page_states_command_machine_date_versions_and_plots(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch

    threads = torch.get_num_threads()  # parse_args sets threads: keep the session's
    args = common.parse_args("demo", ["--quick", "--threads", str(threads)])
    page = common.Page("demo", "Demo page", args, out_dir=tmp_path)
    page.text("Intro.").table([{"x": 1.0}])
    fig, ax = plt.subplots()
    ax.plot([0, 1])
    page.plot(fig, "demo_plot", "a line")
    page.note("contention: interleaved")
    text = page.write().read_text()
    assert text.startswith("# Demo page")
    assert "Quick run" in text and "| x |" in text and "![a line](demo_plot.png)" in text
    assert (tmp_path / "demo_plot.png").stat().st_size > 1000
    for needle in (f"`.venv/bin/python -m bench.demo --quick --threads {threads}`", "Machine:", "Date:", "torch ", "contention: interleaved"):
        assert needle in text


def test_discovery_reads_entries_without_importing(tmp_path, monkeypatch):
    (tmp_path / "alpha.py").write_text('TITLE = "Alpha"\nORDER = 5\nESTIMATE_MIN = 2\ndef main(argv=None):\n    pass\n')
    (tmp_path / "beta.py").write_text('"""Beta bench."""\nREQUIRES = ["no_such_module_xyz"]\ndef run():\n    pass\n')
    (tmp_path / "helper.py").write_text("raise SystemExit('must not be imported')\nX = 1\n")
    (tmp_path / "common.py").write_text("def main():\n    pass\n")
    found = runner.discover(tmp_path)
    assert [b.name for b in found] == ["alpha", "beta"]
    a, b = found
    assert (a.title, a.entry, a.order, a.estimate_min, a.missing) == ("Alpha", "main", 5, 2, [])
    assert (b.title, b.entry, b.missing) == ("Beta bench.", "run", ["no_such_module_xyz"])
    assert not a.accepts("--quick")  # run.py does not pass flags a benchmark would reject
    (tmp_path / "alpha.py").write_text("def main(argv=None):\n    args = common.parse_args('alpha', argv)\n")
    assert a.accepts("--quick") and a.accepts("--fresh")

    monkeypatch.setattr(runner, "RESULTS", tmp_path / "results")
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "alpha.md").write_text("# Alpha results\n\n- Date: 2026-01-01 10:00 UTC; wall time 1.5 min\n")
    (tmp_path / "results" / "orphan.md").write_text("# Orphan\n")
    index = runner.write_index(found, {"alpha": {"status": "ok (1.5 min)"}}).read_text()
    assert "[alpha.md](alpha.md)" in index and "2026-01-01 10:00 UTC (1.5 min)" in index and "ok (1.5 min)" in index
    assert "skipped: needs no_such_module_xyz" in index
    assert "[orphan.md](orphan.md)" in index
    # a resumed run's page: its short wall time is not what the benchmark takes, its measurement time is
    (tmp_path / "results" / "alpha.md").write_text(
        "# Alpha results\n\n- Date: 2026-01-02 10:00 UTC; wall time 0.2 min; measurement time 42.0 min\n")
    assert "2026-01-02 10:00 UTC (42.0 min of measurement)" in runner.write_index(found).read_text()


def test_the_repository_benchmarks_are_discovered():
    names = {b.name for b in runner.discover()}
    assert {"decoder", "memory", "scaling"} <= names
    assert not names & {"common", "models", "run"}


def test_run_isolated_enforces_a_cpu_budget():
    with pytest.raises(common.CPULimitExceeded, match="more than 3 CPU seconds"):
        common.run_isolated("math:factorial", 10**8, cpu_limit=3)  # minutes of CPU: stopped at 3 s
