"""python -m alexops.compare end to end with tiny settings, and the report layer it shares
with every backend."""
import json
import subprocess
import sys
import types

import numpy as np
import pytest

from alexops import _loader, alexnet
from alexops.bench import agreement, compare, report
from alexops.bench.timing import Stats, time_host
from helpers import random_input


def test_compare_writes_json_with_every_row(tmp_path):
    out = tmp_path / "r.json"
    result = subprocess.run(
        [sys.executable, "-m", "alexops.compare", "--quick", "--batch", "2", "--steps", "2", "--json", str(out)],
        capture_output=True, text=True, check=True)
    lines = result.stdout.splitlines()
    header = max(i for i, line in enumerate(lines) if "speed-up" in line and "median" in line)
    last_progress = max(i for i, line in enumerate(lines) if "ms (last 10)" in line)
    assert header > last_progress  # the summary table is printed last
    assert lines[-1].startswith("model") and lines[header + 2].startswith("op")
    data = json.loads(out.read_text())
    impls = {(r["level"], r["impl"]) for r in data["results"]}
    assert {("op", "copy"), ("op", "relu"), ("op", "stock"), ("op", "fused"), ("block", "stock"),
            ("block", "fused+pool"), ("block", "fused_pool"), ("model", "stock"), ("model", "fused"),
            ("model", "fused_pool")} <= impls
    passes = {r["pass"] for r in data["results"]}
    assert passes == {"forward", "forward+backward", "fwd+bwd sparse dy"}
    for r in data["results"]:
        assert len(r["times_ms"]) == 2 and r["median_ms"] > 0
        if r["level"] == "op":
            assert r["floor_ms"] > 0 and r["pct_of_floor"] > 0
            if r["impl"] == "fused":
                assert r["x_relu"] > 0 and r["speedup_vs_stock"] > 0


def test_agreement_error_stops_the_run():
    with pytest.raises(agreement.AgreementError, match="refusing to time"):
        agreement.check_agreement("demo", [[1.0, 1.0, 1.0]], [[1.0, 1.0, 1.5]], "float32")


def test_agreement_rejects_nan_and_wrong_shapes():
    with pytest.raises(agreement.AgreementError):
        agreement.check_agreement("demo", [[1.0, 2.0]], [[1.0, float("nan")]], "float32")
    with pytest.raises(agreement.AgreementError, match="shape"):
        agreement.check_agreement("demo", [[1.0, 2.0]], [[1.0, 2.0, 3.0]], "float32")


def test_agreement_allows_only_the_stated_fraction_of_near_ties():
    """A gradient through a max-pool may differ where a near tie was broken the other way: a
    few elements, never many, and never a NaN."""
    expected = np.ones(100_000)
    one_routed_elsewhere = expected.copy()
    one_routed_elsewhere[7] = 0.0
    agreement.check_agreement("demo", [expected], [one_routed_elsewhere], "float32", near_ties=1e-5)
    with pytest.raises(agreement.AgreementError, match="refusing to time"):
        agreement.check_agreement("demo", [expected], [one_routed_elsewhere], "float32")
    many = expected.copy()
    many[:2] = 0.0
    with pytest.raises(agreement.AgreementError, match="2 of 100000 elements"):
        agreement.check_agreement("demo", [expected], [many], "float32", near_ties=1e-5)
    with_nan = expected.copy()
    with_nan[7] = np.nan
    with pytest.raises(agreement.AgreementError):
        agreement.check_agreement("demo", [expected], [with_nan], "float32", near_ties=1e-5)


def test_agreement_allows_one_near_tie_however_small_the_arrays():
    """The fraction of one image of lrn2 (139,968 elements) is 1.4 elements in float32, while
    one tie changes dx at two pixels over the channel window: up to 2 (2R + 1) elements. One
    tie would have refused the block level's run (--batch 1, or the two images checked against
    the float64 reference)."""
    from alexops.bench import oplevel

    assert oplevel.ONE_NEAR_TIE == 18
    expected = np.ones(139_968)
    one_tie = expected.copy()
    one_tie[[5, 6, 7, 900, 901, 902]] = 0.0  # two pixels, three channels each
    with pytest.raises(agreement.AgreementError, match="6 of 139968 elements .near ties allow 1"):
        agreement.check_agreement("demo", [expected], [one_tie], "float32", near_ties=1e-5)
    agreement.check_agreement("demo", [expected], [one_tie], "float32", near_ties=1e-5, one_near_tie=18)
    beyond = expected.copy()
    beyond[:19] = 0.0
    with pytest.raises(agreement.AgreementError, match="19 of 139968 elements .near ties allow 18"):
        agreement.check_agreement("demo", [expected], [beyond], "float32", near_ties=1e-5, one_near_tie=18)
    with pytest.raises(agreement.AgreementError):  # not without near ties (fused against the reference)
        agreement.check_agreement("demo", [expected], [one_tie], "float32", one_near_tie=18)


def test_time_host_runs_every_implementation_once_a_step_in_a_changing_order():
    """A fixed order would charge one implementation for what its predecessor leaves behind
    (freed memory, evicted caches): each step must run each once, and who follows whom must
    vary, with every implementation sometimes first."""
    calls = []
    run_steps = {name: (lambda batch, name=name: calls.append((name, batch))) for name in "abcd"}
    steps, burn_in = 40, 2
    stats = time_host(run_steps, steps, burn_in, log=None, inputs=(0, 1, 2))
    assert sorted(stats) == list("abcd") and all(len(s.times_ms) == steps for s in stats.values())
    timed = calls[burn_in * 4:]
    orders = [tuple(name for name, _ in timed[i:i + 4]) for i in range(0, len(timed), 4)]
    assert all(sorted(order) == list("abcd") for order in orders)
    assert len(set(orders)) > 10
    assert {order[0] for order in orders} == set("abcd")
    # Consecutive calls still rotate among the input sets.
    assert all(a[1] != b[1] for a, b in zip(timed, timed[1:]))


def test_derived_columns_and_table():
    def row(impl, ms, kind="lrn"):
        return report.op_row("lrn1", (1, 2, 2, 4), "forward", impl, Stats([ms, ms]), 1000, 2, kind)

    rows = report.add_derived([row("copy", 0.5, "yardstick"), row("relu", 1.0, "yardstick"), row("stock", 4.0),
                               row("fused", 1.25)])
    fused = rows[-1]
    assert fused["speedup_vs_stock"] == pytest.approx(3.2)
    assert fused["x_relu"] == pytest.approx(1.25)
    assert fused["floor_ms"] == pytest.approx(0.5) and fused["pct_of_floor"] == pytest.approx(40.0)
    assert fused["gb_per_s"] == pytest.approx(2000 / 1.25e-3 / 1e9)
    assert rows[0]["speedup_vs_stock"] is None  # yardsticks are not sped up
    table = report.format_table(rows)
    assert "3.20x" in table and "1.25x" in table and "40%" in table


def test_plot_draws_the_floors(tmp_path):
    pytest.importorskip("matplotlib")
    rows = report.add_derived([
        report.op_row("lrn1", (1, 2, 2, 4), "forward", impl, Stats([ms]), 1000, 2, kind)
        for impl, ms, kind in (("copy", 0.5, "yardstick"), ("relu", 1.0, "yardstick"), ("stock", 4.0, "lrn"),
                               ("fused", 1.25, "lrn"))])
    report.write_plot(tmp_path / "plot.png", rows, "test")
    assert (tmp_path / "plot.png").stat().st_size > 1000


@pytest.mark.parametrize("argument", [["--steps", "0"], ["--batch", "0"], ["--batch", "-2"], ["--burn-in", "-1"],
                                      ["--steps", "two"]])
def test_counts_that_time_nothing_are_refused_before_anything_runs(argument, capsys):
    """--batch 0 used to run the default batch, and --steps 0 to fail after the burn-in with a
    StatisticsError."""
    with pytest.raises(SystemExit) as exit_info:
        compare.parse_args(argument)
    assert exit_info.value.code == 2
    assert f"argument {argument[0]}" in capsys.readouterr().err


def test_counts_at_their_least_are_taken():
    args = compare.parse_args(["--steps", "1", "--batch", "1", "--burn-in", "0"])
    assert (args.steps, args.batch, args.burn_in) == (1, 1, 0)
    assert compare.choose_settings(args, on_gpu=False)["batch"] == 1


def _cupy_backend_refusal(monkeypatch, cupy_module):
    monkeypatch.setitem(sys.modules, "cupy", cupy_module)
    with pytest.raises(SystemExit) as exit_info:
        compare.main(["--backend", "cupy", "--quick"])
    return str(exit_info.value.code)


def test_cupy_backend_without_cupy_says_what_to_install(monkeypatch):
    message = _cupy_backend_refusal(monkeypatch, None)  # None in sys.modules: the import fails
    assert message.startswith("--backend cupy: ")
    if _loader.core().cuda_available():
        assert "cupy-cuda13x" in message
    else:
        assert "ALEXOPS_CUDA=on" in message


def test_cupy_backend_without_a_gpu_says_so(monkeypatch):
    if not _loader.core().cuda_available():
        pytest.skip("this build has no CUDA kernels, which the backend refuses first")

    class NoDeviceRuntime:
        @staticmethod
        def getDeviceCount():
            raise RuntimeError("cudaErrorNoDevice: no CUDA-capable device is detected")

    fake_cupy = types.ModuleType("cupy")
    fake_cupy.cuda = types.SimpleNamespace(runtime=NoDeviceRuntime)
    message = _cupy_backend_refusal(monkeypatch, fake_cupy)
    assert message.startswith("--backend cupy: CuPy sees no GPU") and "cudaErrorNoDevice" in message


def test_devices_tensorflow_lacks_are_refused_not_placed_elsewhere():
    """TensorFlow's soft placement would run the rows asked for on /CPU:1 or a TPU on /CPU:0,
    labelled with the device asked for."""
    tf = pytest.importorskip("tensorflow")
    cpus = len(tf.config.list_logical_devices("CPU"))
    gpus = len(tf.config.list_logical_devices("GPU"))
    assert compare.resolve_device("cpu", tf, None) == "/CPU:0"
    assert compare.resolve_device("/job:localhost/replica:0/task:0/device:CPU:0", tf, None) == "/CPU:0"
    assert compare.resolve_device("auto", tf, lambda: "/CPU:0") == "/CPU:0"
    gpu_message = "sees no GPU" if gpus == 0 else f"sees {gpus} GPU"
    for text, message in ((f"/CPU:{cpus}", f"sees {cpus} CPU"), ("tpu", "expected cpu, gpu"),
                          ("gpu:x", "not a device name"), (f"/GPU:{gpus}", gpu_message)):
        with pytest.raises(SystemExit, match=f"--device {text}: .*{message}"):
            compare.resolve_device(text, tf, None)


def test_output_paths_that_cannot_be_written_are_refused_before_the_run(tmp_path):
    report.check_output_paths(str(tmp_path / "r.json"), None)
    with pytest.raises(SystemExit, match="there is no directory"):
        report.check_output_paths(str(tmp_path / "missing" / "r.json"), None)
    with pytest.raises(SystemExit, match="--plot .*is a directory"):
        report.check_output_paths(None, str(tmp_path))


def test_quick_full_model_uses_an_image_the_classifier_takes():
    """--quick --full-model used 99x99 images, whose pool5 (2x2) fc6 cannot take: it failed."""
    settings = compare.choose_settings(compare.parse_args(["--quick", "--full-model"]), on_gpu=False)
    assert settings["image_size"] in alexnet.CLASSIFIER_IMAGE_SIZES
    quick = compare.choose_settings(compare.parse_args(["--quick"]), on_gpu=False)
    assert quick["image_size"] >= alexnet.MIN_IMAGE_SIZE
    assert compare.choose_settings(compare.parse_args([]), on_gpu=False)["image_size"] == 224


def _tiny_model_settings(dtype):
    return dict(device="/CPU:0", dtype=dtype, batch=2, image_size=99, full_model=False, init="he",
                model_steps=1, model_burn_in=0)


@pytest.mark.parametrize("dtype", ["bfloat16", "float64"])
def test_model_level_runs_where_stock_has_no_lrn_without_it(dtype):
    """TensorFlow's CPU LRN has no bfloat16 or float64 kernel: the model level used to die with
    its NotFoundError; now it times the fused variants, checked against stock in float32."""
    pytest.importorskip("tensorflow")
    from alexops.bench import tf_backend

    logged = []
    rows = tf_backend.run_model_level(_tiny_model_settings(dtype), logged.append)
    assert {r["impl"] for r in rows} == {"fused", "fused_pool"}
    assert any(f"stock: not timed, no {dtype} LRN here" in line for line in logged)


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
def test_model_agreement_still_refuses_a_wrong_variant(dtype):
    """The 16-bit bound (1.5x stock's own distance from float32) is no licence for a wrong LRN."""
    tf = pytest.importorskip("tensorflow")
    from alexops.bench import tf_backend

    model = alexnet.AlexNet(init="he", dtype=dtype)
    images = tf.cast(random_input([2, 99, 99, 3], seed=1, dtype=np.float32), dtype)
    variants = ["fused", "fused_pool"]
    steps = {lrn: tf_backend.model_steps(model, lrn) for lrn in variants}
    backend = tf_backend.TensorFlowBackend("/CPU:0")
    tf_backend.check_model_agreement(model, steps, variants, images, backend)  # the real ones pass
    right = steps["fused"]["forward+backward"]
    steps["fused"] = dict(steps["fused"], **{"forward+backward": lambda x: [g * 1.5 for g in right(x)]})
    with pytest.raises(agreement.AgreementError, match="forward\\+backward fused in"):
        tf_backend.check_model_agreement(model, steps, variants, images, backend)


@pytest.mark.parametrize("dtype, init, seed", [("float32", "writeup", 37), ("float64", "he", 18)])
def test_model_agreement_is_not_thrown_by_near_ties_at_batch_one(dtype, init, seed):
    """`python -m alexops.compare --what model --batch 1` refused to time fused and fused_pool
    (float32 with the default init, float64 with --init he): at a near tie in a max-pool window,
    stock and alexops (rounding the LRN differently) sent the window's gradient to different
    pixels, which moved a weight gradient by 1.5e-3 to 1.5e-2 of its largest magnitude, over the
    1e-3 bound. The harness's model, with images for which that happened on an Intel Xeon (the
    first such image seed of 38 in float32, of 19 in float64: on another CPU the convolutions
    round differently)."""
    tf = pytest.importorskip("tensorflow")
    from alexops.bench import tf_backend

    model = alexnet.AlexNet(init=init, dtype=dtype)
    images = tf.cast(random_input([1, 224, 224, 3], seed, np.float32), dtype)
    variants = list(alexnet.VARIANTS) if dtype == "float32" else ["fused", "fused_pool"]  # no float64 stock here
    steps = {lrn: tf_backend.model_steps(model, lrn) for lrn in variants}
    tf_backend.check_model_agreement(model, steps, variants, images, tf_backend.TensorFlowBackend("/CPU:0"))
    # The reference's forward is alexops' exactly, so its pools route as fused's do.
    routed = model(images, lrn=alexnet.STOCK_ROUTED_LIKE_ALEXOPS, return_activations=True)[1]
    fused = model(images, lrn="fused", return_activations=True)[1]
    for name in ("lrn1", "lrn2", "pool5"):
        np.testing.assert_array_equal(routed[name].numpy(), fused[name].numpy())


def test_model_agreement_names_a_float16_overflow():
    """float16 with the write-up's init overflows in the gradients, stock's too: it used to be
    reported as a 'max relative difference nan'."""
    tf = pytest.importorskip("tensorflow")
    from alexops.bench import tf_backend

    model = alexnet.AlexNet(init="writeup", dtype="float16")
    images = tf.cast(random_input([1, 99, 99, 3], seed=1, dtype=np.float32), "float16")
    steps = {"fused": tf_backend.model_steps(model, "fused")}
    with pytest.raises(agreement.AgreementError, match="NaN or Inf .*try --init he"):
        tf_backend.check_model_agreement(model, steps, ["fused"], images, tf_backend.TensorFlowBackend("/CPU:0"))


def test_block_level_runs_in_float16_with_stock():
    """Stock's float16 LRN rounds less exactly than the reference, so a few of its block's dx
    (5e-5) go to the other member of a near tie: the block level used to refuse to time
    anything in float16."""
    pytest.importorskip("tensorflow")
    from alexops.bench import oplevel, tf_backend

    settings = dict(dtype="float16", batch=2, op_steps=1, op_burn_in=0, op_shapes=oplevel.OP_SHAPES)
    rows = oplevel.run_block_level(tf_backend.TensorFlowBackend("/CPU:0"), settings, lambda line: None)
    assert {"stock", "fused+pool", "fused_pool"} <= {r["impl"] for r in rows}


def test_a_dtype_named_twice_is_timed_once():
    assert compare.parse_args(["--dtype", "float16,float32,float16"]).dtype == ["float16", "float32"]
