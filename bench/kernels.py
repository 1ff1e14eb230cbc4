"""Time every kernel op's backends against its reference and the obvious PyTorch composition.

    python bench/kernels.py                      # writes docs/results/kernels.md
    python bench/kernels.py --out /tmp/k.md --repeats 20

On a GPU every backend that can run there is timed (CUDA events, median of --repeats after
warm-up) at LLM-sized shapes. On CPU only the references and the PyTorch compositions are timed,
at smaller shapes: Triton runs on CPU only in its interpreter, which executes a kernel's programs
one after another in numpy, so its timings say nothing about the kernel.
Every timed output is also checked against the reference (max abs error column).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import shlex
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import splice.kernels as K
import torch
import torch.nn.functional as F
from splice.kernels import get_op

REPO = Path(__file__).resolve().parents[1]
ESTIMATE_MIN = 1  # measured: 0.3 min through make bench (CPU: references vs PyTorch compositions)


@dataclass
class Row:
    op: str
    shape: str
    impl: str
    kind: str  # "reference", "backend" or "composition"
    ms: float
    max_err: float | None


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timeit(fn: Callable[[], Any], device: torch.device, repeats: int, warmup: int = 2) -> float:
    """Median wall time in milliseconds (CUDA events on GPU)."""
    with torch.no_grad():
        for _ in range(warmup):
            fn()
        _sync(device)
        times = []
        for _ in range(repeats):
            if device.type == "cuda":
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                start.record()
                fn()
                end.record()
                torch.cuda.synchronize(device)
                times.append(start.elapsed_time(end))
            else:
                t0 = time.perf_counter()
                fn()
                times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def speed_only(fn: Callable[[], Any]) -> Callable[[], None]:
    """A baseline that computes something else (no error column)."""
    return lambda: (fn(), None)[1]


def _err(out: Any, ref: Any) -> float:
    a = out[0] if isinstance(out, tuple) else out
    b = ref[0] if isinstance(ref, tuple) else ref
    return float((a.float() - b.float()).abs().max())


def bench_case(rows: list[Row], op_name: str, shape: str, args: tuple, kwargs: dict,
               compositions: dict[str, Callable[[], Any]], device: torch.device, repeats: int) -> None:
    op = get_op(op_name)
    with torch.no_grad():
        ref = op.reference(*args, **kwargs)
    rows.append(Row(op_name, shape, "reference", "reference",
                    timeit(lambda: op.reference(*args, **kwargs), device, repeats), 0.0))
    for name, backend in op.backends.items():
        if name == K.REFERENCE:
            continue
        # Interpreter timings are meaningless, so CPU never times Triton even when it could run.
        if device.type == "cpu" or backend.unavailable_on(device) or backend.unsupported(args, kwargs):
            continue
        with torch.no_grad():
            out = op.run(name, *args, **kwargs)
        rows.append(Row(op_name, shape, name, "backend",
                        timeit(lambda n=name: op.run(n, *args, **kwargs), device, repeats), _err(out, ref)))
    for label, fn in compositions.items():
        with torch.no_grad():
            out = fn()
        err = _err(out, ref) if out is not None else None
        rows.append(Row(op_name, shape, label, "composition", timeit(fn, device, repeats), err))


def run(device: torch.device, repeats: int) -> list[Row]:
    gpu = device.type == "cuda"
    dtype = torch.bfloat16 if gpu else torch.float32
    gen = torch.Generator(device="cpu").manual_seed(0)

    def randn(*shape: int, scale: float = 1.0) -> torch.Tensor:
        return (torch.randn(*shape, generator=gen) * scale).to(device=device, dtype=dtype)

    rows: list[Row] = []

    # fake_quant: a 4-bit asymmetric per-group(128) weight with learnable clipping (OmniQuant LWC).
    n_out, n_in = (4096, 4096) if gpu else (1024, 4096)
    w = randn(n_out, n_in, scale=0.02)
    groups = n_in // 128
    clip = torch.full((n_out, groups), 4.0, device=device)

    def torch_fake_quant() -> torch.Tensor:
        # ATen's fused per-channel fake-quant on the (rows*groups, 128) view, qparams from min/max.
        wg = w.float().reshape(-1, 128)
        hi = wg.amax(-1).clamp_min(0) * torch.sigmoid(clip.reshape(-1))
        lo = wg.amin(-1).clamp_max(0) * torch.sigmoid(clip.reshape(-1))
        scale = ((hi - lo) / 15).clamp_min(1e-8)
        zero = torch.round(-lo / scale).to(torch.int32)
        return torch.fake_quantize_per_channel_affine(wg, scale, zero, 0, 0, 15).reshape(w.shape).to(w.dtype)

    bench_case(rows, "fake_quant", f"W {n_out}x{n_in} {str(dtype)[6:]}, int4 asym g128 + LWC",
               (w, 4), {"symmetric": False, "group_size": 128, "clip_max": clip, "clip_min": clip},
               {"torch.fake_quantize_per_channel_affine": torch_fake_quant}, device, repeats)

    # dequant_matmul: int4 g128 weight, decode-sized and prefill-sized activations.
    n_out, n_in = (4096, 4096) if gpu else (2048, 2048)
    pw = K.quantize_weight(randn(n_out, n_in, scale=0.02), 4, 128)
    w_deq = pw.dequantize(dtype)
    for m in ((16, 2048) if gpu else (16, 256)):
        x = randn(m, n_in)
        bench_case(rows, "dequant_matmul", f"x {m}x{n_in} @ int4 g128 W {n_out}x{n_in} {str(dtype)[6:]}",
                   (x, *pw), {},
                   {"torch.matmul on pre-dequantized W": lambda x=x: x @ w_deq.T,
                    "dequantize + torch.matmul": lambda x=x: x @ pw.dequantize(dtype).T},
                   device, repeats)

    # hadamard: QuaRot-style rotation of activations; 4096 = 2^12 and 14336 = 28 * 2^9 (Llama-3-8B MLP).
    tokens = 2048 if gpu else 256
    for n in (4096, 14336):
        x = randn(tokens, n)
        h = K.hadamard_matrix(n, normalize=True, dtype=dtype, device=device)
        bench_case(rows, "hadamard", f"x {tokens}x{n} {str(dtype)[6:]}", (x,), {"normalize": True},
                   {"torch.matmul with dense H": lambda x=x, h=h: x @ h.T}, device, repeats)

    # block_sparse_attention: causal prefill, GQA, block 64, ~25% of the causal key blocks kept.
    b, hq, hkv, t, d = (1, 32, 8, 4096, 128) if gpu else (1, 8, 2, 1024, 64)
    q, k, v = randn(b, hq, t, d), randn(b, hkv, t, d), randn(b, hkv, t, d)
    nb = t // 64
    keep = (torch.rand(1, hkv, nb, nb, generator=gen) < 0.25) | torch.eye(nb, dtype=torch.bool)
    keep = keep.to(device)
    allowed = keep.repeat_interleave(hq // hkv, 1).repeat_interleave(64, 2).repeat_interleave(64, 3)
    allowed = allowed & torch.ones(t, t, dtype=torch.bool, device=device).tril()
    kr, vr = k.repeat_interleave(hq // hkv, 1), v.repeat_interleave(hq // hkv, 1)
    bench_case(rows, "block_sparse_attention",
               f"B{b} H{hq}/{hkv} T=S={t} D{d} {str(dtype)[6:]}, block 64, causal, 25% blocks",
               (q, k, v, keep), {"block_size": 64, "causal": True},
               {"SDPA with the block mask as attn_mask": lambda: F.scaled_dot_product_attention(q, kr, vr, attn_mask=allowed),
                "SDPA dense causal (not sparse; speed baseline)": speed_only(
                    lambda: F.scaled_dot_product_attention(q, kr, vr, is_causal=True))},
               device, repeats)
    return rows


def machine(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (CUDA {torch.version.cuda})"
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = f", load average {os.getloadavg()[0]:.1f} (shared machine)" if hasattr(os, "getloadavg") else ""
    return f"CPU: {cpu}, {os.cpu_count()} cores visible, torch threads {torch.get_num_threads()}{load}"


def versions() -> str:
    try:
        import triton

        tv = triton.__version__
    except Exception:  # noqa: BLE001
        tv = "not installed"
    from splice import __version__

    return f"python {platform.python_version()}, torch {torch.__version__}, triton {tv}, splice {__version__}"


def render(rows: list[Row], device: torch.device, command: str, seconds: float) -> str:
    ref_ms = {(r.op, r.shape): r.ms for r in rows if r.kind == "reference"}
    lines = [
        "# Kernel benchmarks",
        "",
        f"- command: `{command}`",
        f"- machine: {machine(device)}",
        f"- date: {dt.datetime.now(dt.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- versions: {versions()}",
        (f"- timing: median of the repeats after warm-up, {'CUDA events' if device.type == 'cuda' else 'wall clock'}; "
         f"whole run {seconds:.0f} s"),
        "",
    ]
    if device.type == "cpu":
        lines += [
            ("**CPU run: Triton backends are not timed.** On CPU, Triton kernels run only in Triton's "
             "interpreter (`TRITON_INTERPRET=1`), which executes the programs of a launch one after "
             "another in numpy; those timings measure the interpreter, not the kernel. The rows below "
             "time the pure-PyTorch references and the PyTorch compositions at reduced shapes; rerun "
             "this script unchanged on a GPU for the Triton rows (it then uses LLM-sized shapes and "
             "bfloat16). Correctness of every Triton kernel against its reference is covered by "
             "`pytest tests/kernels` under the interpreter."),
            "",
        ]
    lines += [
        "| op | shape | implementation | kind | median ms | vs reference | max abs err vs reference |",
        "|---|---|---|---|---:|---:|---:|",
    ]
    for r in rows:
        speed = ref_ms[(r.op, r.shape)] / r.ms if r.ms > 0 else float("nan")
        err = "—" if r.max_err is None else f"{r.max_err:.2e}"
        lines.append(f"| {r.op} | {r.shape} | {r.impl} | {r.kind} "
                     f"| {r.ms:.3f} | {speed:.2f}x | {err} |")
    lines += [
        "",
        ("Notes: the fake-quant composition has no straight-through gradient and no learnable "
         "clipping in its graph (it is the forward-only ATen kernel); `SPLICE_KERNELS` does not affect "
         "this page (each implementation is called directly); the dense causal SDPA row attends to "
         "every causal key, so it is a speed baseline only (no error is reported for it)."),
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "results" / "kernels.md")
    parser.add_argument("--repeats", type=int, default=None, help="timed runs per row (default 20 GPU, 5 CPU)")
    parser.add_argument("--device", default=None, help="cuda or cpu (default: cuda if visible)")
    args = parser.parse_args(argv)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    repeats = args.repeats or (20 if device.type == "cuda" else 5)
    t0 = time.perf_counter()
    rows = run(device, repeats)
    command = "python " + " ".join(shlex.quote(a) for a in [os.path.relpath(__file__, REPO), *(argv or sys.argv[1:])])
    text = render(rows, device, command, time.perf_counter() - t0)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
