"""python -m alexops.compare end to end, with tiny settings."""
import json
import subprocess
import sys

import pytest

from alexops import compare
from alexops.timing import Stats


def test_compare_writes_json_with_both_implementations(tmp_path):
    out = tmp_path / "r.json"
    result = subprocess.run(
        [sys.executable, "-m", "alexops.compare", "--quick", "--batch", "2", "--steps", "2", "--json", str(out)],
        capture_output=True, text=True, check=True)
    lines = result.stdout.splitlines()
    header = max(i for i, line in enumerate(lines) if "speed-up" in line and "median" in line)
    last_progress = max(i for i, line in enumerate(lines) if "ms/batch" in line)
    assert header > last_progress  # the summary table is printed last
    assert lines[-1].startswith("model") and lines[header + 2].startswith("op")
    data = json.loads(out.read_text())
    impls = {(r["level"], r["impl"]) for r in data["results"]}
    assert {("op", "stock"), ("op", "fused"), ("model", "stock"), ("model", "fused")} <= impls
    passes = {r["pass"] for r in data["results"]}
    assert passes == {"forward", "forward+backward", "fwd+bwd sparse dy"}
    for r in data["results"]:
        assert len(r["times_ms"]) == 2 and r["median_ms"] > 0


def test_agreement_error_stops_the_run():
    import tensorflow as tf

    from alexops import _bench_tf

    with pytest.raises(_bench_tf.AgreementError, match="refusing to time"):
        _bench_tf.check_agreement("demo", tf.ones([3]), tf.constant([1.0, 1.0, 1.5]), tf.float32)


def test_table_and_speedups():
    rows = [{"level": "op", "name": "lrn1", "pass": "forward", "impl": "stock", "stats": Stats([4.0, 4.0])},
            {"level": "op", "name": "lrn1", "pass": "forward", "impl": "fused", "stats": Stats([1.0, 1.0])}]
    compare.add_speedups(rows)
    assert rows[1]["speedup_vs_stock"] == pytest.approx(4.0)
    assert "4.00x" in compare.format_table(rows)
