"""A training grid on a two-process LocalCluster gives the records of the serial grid."""
from __future__ import annotations

import pytest
import yaml

from analysis.grid import main
from separation.core.records import load_record

from helpers.grids import TINY_BASE, TINY_RUNS

pytest.importorskip("distributed")
pytest.importorskip("sklearn")

GRID = {"grid": "tiny", "base": TINY_BASE, "runs": TINY_RUNS}


def _comparable(rec, root):
    """A record's config and result as JSON, without timings and with its folders relative."""
    def strip(v):
        if isinstance(v, dict):
            return {k: strip(x) for k, x in v.items() if "seconds" not in k}
        if isinstance(v, list):
            return [strip(x) for x in v]
        return v.replace(str(root), "ROOT") if isinstance(v, str) else v

    data = rec.to_json()
    return strip({"config": data["config"], "result": data["result"]})


@pytest.mark.slow
def test_a_grid_on_the_cluster_gives_the_serial_records(tmp_path, capsys):
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(GRID))

    def roots(name):
        return ["--checkpoint-root", str(tmp_path / name / "ck"), "--results-root", str(tmp_path / name / "res"),
                "--no-progress"]

    assert main([str(path), *roots("serial")]) == 0
    assert main([str(path), *roots("cluster"), "--scheduler", "local:2"]) == 0
    assert "| natural | natural |" in capsys.readouterr().out
    folders = sorted(p.name for p in (tmp_path / "serial" / "res" / "tiny").iterdir())
    assert [f.rpartition("-")[0] for f in folders] == ["natural", "rst-l0.5"]
    assert sorted(p.name for p in (tmp_path / "cluster" / "res" / "tiny").iterdir()) == folders
    for name in folders:
        serial = load_record(tmp_path / "serial" / "res" / "tiny" / name)
        cluster = load_record(tmp_path / "cluster" / "res" / "tiny" / name)
        assert _comparable(cluster, tmp_path / "cluster") == _comparable(serial, tmp_path / "serial"), name
        assert cluster.key == serial.key
    before = (tmp_path / "cluster" / "res" / "tiny" / folders[0] / "record.json").read_bytes()
    assert main([str(path), *roots("cluster"), "--scheduler", "local:1"]) == 0  # finished: nothing submitted
    assert (tmp_path / "cluster" / "res" / "tiny" / folders[0] / "record.json").read_bytes() == before


def test_a_grid_refuses_a_bad_scheduler(tmp_path, capsys, monkeypatch):
    from separation.engines import dask_engine

    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(GRID))
    with pytest.raises(SystemExit) as exc:
        main([str(path), "--scheduler", "local:0"])
    assert exc.value.code == 2
    monkeypatch.setattr(dask_engine, "CONNECT_TIMEOUT", 1.0)
    assert main([str(path), "--checkpoint-root", str(tmp_path / "ck"), "--results-root", str(tmp_path / "res"),
                 "--scheduler", "tcp://127.0.0.1:9"]) == 2
    assert "cannot reach a Dask scheduler" in capsys.readouterr().err
    assert not (tmp_path / "res").exists()
