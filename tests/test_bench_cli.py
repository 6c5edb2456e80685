"""``musgen bench``: the device named, every figure measured on every backend asked for, the
report and JSON written, bad arguments refused in one line. (No timing is asserted.)"""

from __future__ import annotations

import json

import pytest

from musgen import _backend, benchmark
from musgen.cli import main


def test_cpu_model_and_device_are_named():
    name = benchmark.cpu_model()
    assert isinstance(name, str) and name.strip() and name != "unknown CPU"
    d = benchmark.device_description()
    assert d["cpu"] == name and d["cores"] >= 1
    if _backend.has_cpp():
        assert d["engine_kernels"] in _backend.core().LstmEngine.available_kernels()
        assert d["gpu"] is None or "device 0" in d["gpu"]


def test_run_benchmark_measures_every_figure(backend):
    if backend == "cuda":
        pytest.skip("timed on the CPU backends here; the GPU run is a device check")
    lines = []
    res = benchmark.run_benchmark(backends=[backend], quick=True, batches=(1, 4), max_batch=8,
                                  report=lines.append)
    row = res["backends"][backend]
    assert list(res["backends"]) == [backend]
    assert 0 < row["latency_p50_ms"] <= row["latency_p99_ms"]
    expected = {1, 4} | ({row["largest_batch"]} if backend != "python" else set())
    assert set(row["tokens_per_s"]) == expected and all(v > 0 for v in row["tokens_per_s"].values())
    assert row["largest_batch"] in (4, 8)
    assert set(row["rtf"]) == {1, row["largest_batch"]} and all(v > 0 for v in row["rtf"].values())
    assert any("real-time factor" in line for line in lines)
    text = benchmark.format_report(res)
    assert res["device"]["cpu"] in text and backend in text and "RTF" in text


def test_cli_bench_report_and_json(tmp_path, capsys, monkeypatch):
    out = tmp_path / "bench.json"
    real = benchmark.run_benchmark
    monkeypatch.setattr(benchmark, "run_benchmark",
                        lambda *a, **k: real(*a, batches=(1, 2), max_batch=4, **k))
    assert main(["bench", "--quick", "-q", "--backends", "python", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    data = json.loads(out.read_text())
    assert data["device"]["cpu"] in printed and list(data["backends"]) == ["python"]
    assert data["backends"]["python"]["tokens_per_s"]["1"] > 0


def test_cli_bench_refuses_bad_arguments(capsys, tmp_path):
    assert main(["bench", "--backends", "gpu"]) == 2
    assert "cpp, cuda, python" in capsys.readouterr().err
    assert main(["bench", "--threads", "0"]) == 2
    assert "--threads" in capsys.readouterr().err
    assert main(["bench", str(tmp_path / "missing")]) == 2
    assert "missing" in capsys.readouterr().err
    if not _backend.cuda_status()[0]:
        assert main(["bench", "--backends", "cuda", "--quick"]) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "'cuda' is not available" in err[0]
