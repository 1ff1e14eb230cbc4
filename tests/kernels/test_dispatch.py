"""Backend selection: automatic choice, SPLICE_KERNELS forcing, errors for explicit requests
that cannot be met, silent fallback otherwise, one-line registration for plugins."""

from __future__ import annotations

import inspect

import pytest
import splice.kernels as K
import torch
from splice.errors import SpliceError
from splice.kernels import (
    BackendUnavailable,
    KernelError,
    KernelSpecError,
    Sample,
    UnknownBackend,
    UnknownOp,
    define_op,
    get_op,
    isolated_registry,
    list_ops,
    register_backend,
    triton_available,
    use_backends,
)
from splice.kernels.testing import check_backend

try:
    import triton
    import triton.language as tl
except ImportError:  # the tests that need it are skipped by conftest
    triton = tl = None

BUILTIN_OPS = ("block_sparse_attention", "dequant_matmul", "fake_quant", "hadamard")


def _x() -> torch.Tensor:
    return torch.randn(4, 64)


def _chosen(name: str) -> str:
    """The backend an ordinary call of op ``name`` on its first sample would run."""
    op = get_op(name)
    sample = next(iter(op.samples(torch.device("cpu"))))
    return op.select(sample.args, sample.kwargs).name


@pytest.mark.triton
def test_auto_prefers_triton_when_it_can_run() -> None:
    assert _chosen("hadamard") == "triton"


def test_env_reference_forces_every_op(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPLICE_KERNELS", "reference")
    for name in BUILTIN_OPS:
        assert _chosen(name) == "reference"
    x = _x()
    assert torch.equal(K.hadamard_transform(x), get_op("hadamard").reference(x))


@pytest.mark.triton
def test_env_per_op_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPLICE_KERNELS", "fake_quant=triton, hadamard=reference")
    assert _chosen("fake_quant") == "triton"
    assert _chosen("hadamard") == "reference"
    assert _chosen("dequant_matmul") == "triton"  # not mentioned: auto
    monkeypatch.setenv("SPLICE_KERNELS", "reference,hadamard=triton,fake_quant=auto")
    assert _chosen("hadamard") == "triton"
    assert _chosen("fake_quant") == "triton"
    assert _chosen("dequant_matmul") == "reference"


def test_unrequested_backend_falls_back_silently(monkeypatch: pytest.MonkeyPatch, recwarn: pytest.WarningsRecorder) -> None:
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    x = _x()
    if torch.cuda.is_available():
        pytest.skip("CPU tensors only lack Triton on machines without the interpreter")
    assert get_op("fake_quant").select((x,), {}).name == "reference"
    assert torch.equal(K.fake_quant(x, 4), get_op("fake_quant").reference(x, 4))
    assert not recwarn.list


@pytest.mark.triton
def test_input_level_limits_fall_back_silently_but_fail_when_forced(monkeypatch: pytest.MonkeyPatch) -> None:
    q, k = torch.randn(1, 2, 16, 16), torch.randn(1, 1, 16, 16)
    blocks = torch.ones(1, 1, 2, 2, dtype=torch.bool)
    op = get_op("block_sparse_attention")
    assert op.select((q, k, k, blocks), {"block_size": 8}).name == "reference"
    out = K.block_sparse_attention(q, k, k, blocks, block_size=8)
    assert out.shape == q.shape
    monkeypatch.setenv("SPLICE_KERNELS", "block_sparse_attention=triton")
    with pytest.raises(BackendUnavailable, match="block sizes"):
        K.block_sparse_attention(q, k, k, blocks, block_size=8)


def test_explicit_unavailable_backend_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    if torch.cuda.is_available():
        pytest.skip("needs a machine where CPU tensors cannot run Triton")
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    monkeypatch.setenv("SPLICE_KERNELS", "fake_quant=triton")
    with pytest.raises(BackendUnavailable) as info:
        K.fake_quant(_x(), 4)
    message = str(info.value)
    assert "'fake_quant'" in message and "'triton'" in message and "TRITON_INTERPRET" in message
    assert "SPLICE_KERNELS" in message
    assert isinstance(info.value, SpliceError)


def test_forcing_an_unregistered_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPLICE_KERNELS", "cuda")
    with pytest.raises(UnknownBackend, match="registered: reference, triton"):
        K.hadamard_transform(_x())


@pytest.mark.parametrize("spec", ["a=b=c", "fake_quant=triton,fake_quant=reference", "reference,triton", "bad name"])
def test_malformed_spec(monkeypatch: pytest.MonkeyPatch, spec: str) -> None:
    monkeypatch.setenv("SPLICE_KERNELS", spec)
    with pytest.raises(KernelSpecError, match="SPLICE_KERNELS"):
        K.hadamard_transform(_x())


@pytest.mark.triton
def test_use_backends_beats_env_and_nests(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPLICE_KERNELS", "reference")
    with use_backends({"hadamard": "triton"}):
        assert _chosen("hadamard") == "triton"
        assert _chosen("fake_quant") == "reference"  # env still applies
        with use_backends("reference"):
            assert _chosen("hadamard") == "reference"
        assert _chosen("hadamard") == "triton"
    assert _chosen("hadamard") == "reference"


def test_op_keeps_reference_signature_and_doc() -> None:
    assert inspect.signature(K.fake_quant) == inspect.signature(get_op("fake_quant").reference)
    assert "straight through" in (K.fake_quant.__doc__ or "")
    assert K.fake_quant.__name__ == "fake_quant_reference"


def test_errors_are_splice_errors() -> None:
    for cls in (KernelError, BackendUnavailable, UnknownBackend, UnknownOp, KernelSpecError, K.KernelArgumentError):
        assert issubclass(cls, SpliceError)
    with pytest.raises(UnknownOp, match="defined ops"):
        get_op("nope")


@pytest.mark.triton
def test_list_ops_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    rows = {row.op: row for row in list_ops("cpu")}
    assert set(BUILTIN_OPS) <= set(rows)
    for name in BUILTIN_OPS:
        backends = {b.name: b for b in rows[name].backends}
        assert backends["reference"].available and backends["reference"].reason is None
        assert backends["triton"].available  # TRITON_INTERPRET=1 in these tests
        assert rows[name].selected == "triton"
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    monkeypatch.setenv("SPLICE_KERNELS", "hadamard=triton")
    rows = {row.op: row for row in list_ops("cpu")}
    triton_row = next(b for b in rows["fake_quant"].backends if b.name == "triton")
    assert not triton_row.available and "TRITON_INTERPRET" in (triton_row.reason or "")
    assert rows["fake_quant"].selected == "reference"
    assert rows["hadamard"].requested == "triton" and rows["hadamard"].selected is None
    assert "cannot run" in (rows["hadamard"].error or "")


# --- a plugin's kernel: one registration line and a free correctness test --------------------


def _axpy_reference(x: torch.Tensor, a: float) -> torch.Tensor:
    """a * x + 1, elementwise."""
    return a * x + 1.0


def _axpy_samples(device: torch.device):
    for n in (7, 300):
        yield Sample((torch.randn(n, device=device), 0.5), label=f"n={n}")


def _make_triton_axpy(offset: float = 1.0):
    # Decorated inside the test, where TRITON_INTERPRET is already set.
    @triton.jit
    def axpy_kernel(x_ptr, y_ptr, n, a, c, BLOCK: tl.constexpr):
        offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
        x = tl.load(x_ptr + offs, mask=offs < n)
        tl.store(y_ptr + offs, a * x + c, mask=offs < n)

    def axpy_triton(x: torch.Tensor, a: float) -> torch.Tensor:
        y = torch.empty_like(x)
        axpy_kernel[(triton.cdiv(x.numel(), 128),)](x, y, x.numel(), a, offset, BLOCK=128)
        return y

    return axpy_triton


@pytest.mark.triton
def test_plugin_registers_a_kernel_in_one_line_and_gets_its_test() -> None:
    with isolated_registry():
        axpy = define_op("toy_axpy", _axpy_reference, samples=_axpy_samples)
        register_backend("toy_axpy", "triton", _make_triton_axpy(), available=triton_available)
        results = check_backend("toy_axpy", "triton")
        assert [r.label for r in results] == ["n=7", "n=300"]
        assert max(r.max_abs_err for r in results) == 0.0
        assert axpy.select((torch.randn(3),), {}).name == "triton"
        assert "toy_axpy" in {row.op for row in list_ops()}
    with pytest.raises(UnknownOp):
        get_op("toy_axpy")


@pytest.mark.triton
def test_check_backend_catches_a_wrong_kernel() -> None:
    with isolated_registry():
        define_op("toy_axpy", _axpy_reference, samples=_axpy_samples)
        register_backend("toy_axpy", "triton", _make_triton_axpy(offset=1.001), available=triton_available)
        with pytest.raises(AssertionError, match=r"toy_axpy/triton \[n=7\]"):
            check_backend("toy_axpy", "triton")


def test_check_backend_compares_gradients() -> None:
    class WrongGrad(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x: torch.Tensor, a: float) -> torch.Tensor:
            return a * x + 1.0

        @staticmethod
        def backward(ctx, g: torch.Tensor):
            return 2 * g, None

    def samples(device: torch.device):
        yield Sample((torch.randn(5, device=device, requires_grad=True), 0.5), label="grad")

    with isolated_registry():
        define_op("toy_axpy", _axpy_reference, samples=samples, differentiable=True)
        register_backend("toy_axpy", "bad", WrongGrad.apply)
        with pytest.raises(AssertionError, match="grad arg0"):
            check_backend("toy_axpy", "bad")


def test_registration_errors() -> None:
    with isolated_registry():
        with pytest.raises(UnknownOp):
            register_backend("no_such_op", "triton", _axpy_reference)
        define_op("toy_axpy", _axpy_reference)
        with pytest.raises(KernelError, match="already defined"):
            define_op("toy_axpy", _axpy_reference)
        with pytest.raises(KernelError, match="reference"):
            register_backend("toy_axpy", "reference", _axpy_reference)
        register_backend("toy_axpy", "fast", _axpy_reference)
        register_backend("toy_axpy", "fast", _axpy_reference)  # same target again: harmless
        with pytest.raises(KernelError, match="already has a backend"):
            register_backend("toy_axpy", "fast", lambda x, a: x)


def test_decorator_registration_and_priority() -> None:
    with isolated_registry():
        define_op("toy_axpy", _axpy_reference)

        @K.backend("toy_axpy", "low", priority=5)
        def low(x: torch.Tensor, a: float) -> torch.Tensor:
            return a * x + 1.0

        @K.backend("toy_axpy", "high", priority=50, supports=lambda x, a: None if a > 0 else "needs a > 0")
        def high(x: torch.Tensor, a: float) -> torch.Tensor:
            return a * x + 1.0

        op = get_op("toy_axpy")
        assert op.select((torch.ones(2), 1.0), {}).name == "high"
        assert op.select((torch.ones(2), -1.0), {}).name == "low"


def test_broken_lazy_target_warns_and_falls_back(monkeypatch: pytest.MonkeyPatch) -> None:
    with isolated_registry():
        op = define_op("toy_axpy", _axpy_reference)
        register_backend("toy_axpy", "triton", "splice_no_such_module.kernels:axpy")
        with pytest.warns(RuntimeWarning, match="cannot load"):
            assert torch.equal(op(torch.ones(2), 2.0), torch.full((2,), 3.0))
        monkeypatch.setenv("SPLICE_KERNELS", "toy_axpy=triton")
        with pytest.raises(BackendUnavailable, match="cannot load"):
            op(torch.ones(2), 2.0)
