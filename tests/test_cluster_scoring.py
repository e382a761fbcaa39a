"""``score --dask`` and ``perplexity --dask`` write what plain ``score`` and ``perplexity`` write, byte
for byte, for n-gram and recurrent models; shards are runs of the chunks one process reads
(``corpus.chunk_cuts``); bad input is one line, as with ``count --dask``."""

import gzip
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from lmtool import corpus
from lmtool.cli import main

from .conftest import ROOT
from .helpers import as_in_a_terminal, import_unless_ci, model_from_text
from .neural.test_forward import random_model
from .ngram.test_trie import random_text


def lmtool(capsys, *args, code=0):
    """Run ``lmtool ARGS`` in-process; returns (stdout, stderr) after checking the exit status."""
    status = main([str(a) for a in args])
    out, err = capsys.readouterr()
    assert status == code, err
    return out, err


@pytest.fixture
def dask_scratch(tmp_path, monkeypatch):
    """Dask's scratch folder (its workers' space) in the test's folder, for this process and the workers."""
    dask = import_unless_ci("dask", "pip install 'lmtool[dask]'")
    import_unless_ci("distributed", "pip install 'lmtool[dask]'")
    folder = tmp_path / "dask-scratch"
    folder.mkdir()
    monkeypatch.setenv("DASK_TEMPORARY_DIRECTORY", str(folder))
    with dask.config.set({"temporary-directory": str(folder)}):
        yield folder


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """Two plain files and a gzipped one, a few KB each, and an n-gram and a recurrent model."""
    folder = tmp_path_factory.mktemp("cluster-scoring")
    rng = np.random.default_rng(7)
    texts = [random_text(rng, lines) for lines in (400, 300, 200)]
    texts[0] = "\ufeff" + texts[0].replace("\n", "\r\n", 3)  # a byte order mark and some CR LF
    paths = [folder / "a.txt", folder / "b.txt", folder / "c.txt.gz"]
    paths[0].write_text(texts[0], encoding="utf-8", newline="")
    paths[1].write_text(texts[1] + "no line feed at the end", encoding="utf-8")
    paths[2].write_bytes(gzip.compress(texts[2].encode("utf-8"), mtime=0))
    ngram = folder / "m.lm"
    model_from_text(folder, texts[1], order=4, name="train.txt").save(ngram)
    recurrent = folder / "r.lm"
    random_model(2, cell="lstm", softmax="class").save(recurrent)
    return paths, ngram, recurrent


@pytest.fixture
def small_chunks(monkeypatch):
    """Chunks of 2 KB (each file several), shards of about two chunks."""
    monkeypatch.setattr("lmtool.scoring.CHUNK_BYTES", 2048)
    monkeypatch.setenv("LMTOOL_DASK_SHARD_BYTES", "4000")


def test_ranges_between_chunk_cuts_read_the_files_chunks(tmp_path):
    rng = np.random.default_rng(0)
    for trial in range(200):
        lines = ["x" * int(rng.choice([0, 1, 7, 40, 300])) + str(rng.choice(["", "\r"]))
                 for _ in range(rng.integers(1, 60))]
        text = ("\ufeff" if trial % 5 == 0 else "") + "\n".join(lines) + str(rng.choice(["", "\n"]))
        path = tmp_path / "f.txt"
        path.write_text(text, encoding="utf-8", newline="")
        size = int(rng.choice([16, 50, 256, 4096]))
        whole = [c.data for c in corpus.read_chunks([path], chunk_bytes=size)]
        edges = [0, *corpus.chunk_cuts(path, size)]
        for step in (1, 3):
            picked = edges[::step] + ([edges[-1]] if (len(edges) - 1) % step else [])
            parts = [c.data for a, b in zip(picked[:-1], picked[1:])
                     for c in corpus.read_chunks([corpus.ByteRange(str(path), a, b)], chunk_bytes=size)]
            assert parts == whole, (trial, size, step)


def test_shards_are_runs_of_whole_chunks(inputs, small_chunks):
    from lmtool.cluster_scoring import plan_score_shards

    paths, _, _ = inputs
    shards = plan_score_shards([str(p) for p in paths], 2, 2048, 4000)
    assert shards[-1] == str(paths[2])  # compressed: one shard
    ranges = [s for s in shards if isinstance(s, corpus.ByteRange)]
    assert len(ranges) >= 4
    for path in paths[:2]:
        mine = [s for s in ranges if s.path == str(path)]
        assert mine[0].start == 0 and mine[-1].end == path.stat().st_size
        assert all(a.end == b.start for a, b in zip(mine, mine[1:]))
        assert {s.end for s in mine} <= set(corpus.chunk_cuts(path, 2048))


@pytest.mark.parametrize("options", [(), ("--per-token",), ("--json", "--per-token")])
def test_score_on_a_local_cluster_writes_the_same_bytes(capsys, inputs, small_chunks, dask_scratch, options):
    paths, ngram, recurrent = inputs
    for model in (ngram, recurrent) if options == () else (ngram,):
        plain, _ = lmtool(capsys, "score", model, *paths, *options)
        distributed, err = lmtool(capsys, "score", model, *paths, *options, "--dask", "local:2", "-q")
        assert distributed == plain and err == ""
    assert any(dask_scratch.iterdir())  # the workers' space was made here


def test_perplexity_on_a_local_cluster_adds_the_same_totals(capsys, inputs, small_chunks, dask_scratch):
    paths, ngram, recurrent = inputs
    for model in (ngram, recurrent):
        plain, _ = lmtool(capsys, "perplexity", model, *paths, "--json")
        distributed, _ = lmtool(capsys, "perplexity", model, *paths, "--json", "--dask", "local:2", "-q")
        assert distributed == plain


def test_bad_input_is_one_line(capsys, inputs, tmp_path, dask_scratch):
    paths, ngram, _ = inputs
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"fine words\n\x00\x01 binary\n")
    cases = [((ngram, bad, paths[0], "--dask", "local:1"), "bad.txt: binary file"),
             ((ngram, "-", "--dask", "local:1"), "--dask: workers read files, not stdin"),
             ((ngram, paths[0], "--dask", "local:1", "--threads", "2"), "drop --threads"),
             ((ngram, tmp_path / "none*.txt", "--dask", "local:1"), "no file matches this pattern"),
             ((ngram, paths[0], "--dask", "nowhere"), "expected tcp://HOST:PORT or local:N"),
             ((tmp_path / "missing.lm", paths[0], "--dask", "local:1"), "missing.lm: no such model file")]
    for command in ("score", "perplexity"):
        for args, message in cases:
            out, err = lmtool(capsys, command, *args, code=1)
            assert err.count("\n") == 1 and message in err, (args, err)
            assert out == ""


@pytest.mark.skipif(not os.path.exists("/proc/self/task"), reason="needs /proc to see the worker processes")
def test_ctrl_c_at_a_terminal_stops_score_on_a_local_cluster_in_one_line(inputs, tmp_path, dask_scratch):
    paths, _, recurrent = inputs
    big = tmp_path / "big.txt"
    big.write_text(paths[1].read_text(encoding="utf-8") * 400, encoding="utf-8")
    command = [sys.executable, "-m", "lmtool.cli", "score", "-q", recurrent, big, "--dask", "local:1"]
    proc = subprocess.Popen([str(c) for c in command], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True, cwd=tmp_path, preexec_fn=as_in_a_terminal,
                            env=dict(os.environ, PYTHONPATH=str(ROOT)))
    try:
        deadline = time.monotonic() + 120
        while len(_children(proc.pid)) < 2 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)  # the worker and multiprocessing's resource tracker
        time.sleep(1.0)
        assert proc.poll() is None, proc.communicate()
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 130 and err.decode().split() == ["lmtool:", "interrupted"], err.decode()[-3000:]


def _children(pid):
    found = []
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/children") as f:
            found += f.read().split()
    return found
