"""``count --memory``, ``--threads`` and ``--dask`` write the same model file as plain ``count``, byte
for byte, and ``--memory`` leaves nothing in its ``--tmp`` folder however the run ends.

The corpora are small random texts over a Zipf-like vocabulary, so a budget of a few hundred KiB
already forces many spills. Commands run in-process through ``lmtool.cli.main``.
"""

import errno
import gzip
import io
import os
import re
import sys
import threading
import time

import numpy as np
import pytest

from lmtool.cli import main
from lmtool.ngram import spilled_runs as runs

from ..conftest import KJV_TRAIN
from ..helpers import as_in_a_terminal, has_open, import_unless_ci, process_group, signal_when

WORDS = [f"w{i}" for i in range(300)] + ["é", "<unk>", "ünï"]
DISTRIBUTED_HTTP_PORT = 8787  # where distributed puts a scheduler's HTTP server unless told otherwise


def write_corpus(path, seed, lines):
    """``lines`` sentences of 0..15 words drawn with Zipf-like probabilities; gzip if the name says so."""
    rng = np.random.default_rng(seed)
    p = 1.0 / np.arange(1, len(WORDS) + 1)
    text = "".join(" ".join(rng.choice(WORDS, rng.integers(0, 16), p=p / p.sum())) + "\n" for _ in range(lines))
    data = text.encode("utf-8")
    if str(path).endswith(".gz"):
        data = gzip.compress(data, mtime=0)
    path.write_bytes(data)
    return path


@pytest.fixture(scope="module")
def texts(tmp_path_factory):
    folder = tmp_path_factory.mktemp("scaling")
    return {"a": write_corpus(folder / "a.txt", 1, 2500), "b": write_corpus(folder / "b.txt", 2, 1500),
            "gz": write_corpus(folder / "c.txt.gz", 3, 1000)}


def lmtool(capsys, *args, code=0):
    """Run ``lmtool ARGS`` in-process; returns its stderr, after checking the exit status."""
    status = main([str(a) for a in args])
    err = capsys.readouterr().err
    assert status == code, err
    return err


def build(capsys, out, inputs, *options):
    lmtool(capsys, "count", *inputs, "-o", out, *options)
    return out.read_bytes()


def spills(stderr):
    found = re.search(r"spilled (\d+) runs", stderr)
    return int(found.group(1)) if found else 0


@pytest.mark.parametrize("inputs, options", [
    (("a", "b"), ("--order", "4")),
    (("gz", "a"), ("--order", "5", "--min-count", "2")),
    (("b",), ("--order", "3", "--max-vocab", "100", "--smoothing", "witten-bell")),
    (("a",), ("--order", "4", "--smoothing", "kneser-ney")),
    (("a",), ("--order", "3", "--smoothing", "add-k", "--k", "0.5")),
    (("a",), ("--order", "4", "--smoothing", "stupid-backoff")),
    (("b",), ("--order", "5", "--level", "char")),
    (("a", "b"), ("--order", "4", "--prune", "0", "1", "2")),
    (("a",), ("--order", "3", "--smoothing", "witten-bell", "--prune", "0", "0", "1")),
])
def test_memory_budget_spills_and_gives_the_same_file(capsys, tmp_path, texts, inputs, options, monkeypatch):
    paths = [texts[k] for k in inputs]
    plain = build(capsys, tmp_path / "plain.lm", paths, *options)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    out = tmp_path / "bounded.lm"
    # slices of a vocabulary's worth of rows (the smallest allowed): many per order, in the merge too
    monkeypatch.setattr("lmtool.ngram.smoothing.SLICE_ROWS", 1)
    monkeypatch.setattr("lmtool.ngram.spilled_runs.MERGE_ROWS", 20000)
    err = lmtool(capsys, "count", *paths, "-o", out, *options, "--memory", "128K", "--tmp", scratch)
    assert spills(err) >= 3, err
    assert out.read_bytes() == plain
    assert list(scratch.iterdir()) == []


@pytest.mark.parametrize("threads", [2, 3])
def test_runs_spilled_on_threads_give_the_same_file(capsys, tmp_path, texts, threads):
    paths = [texts["a"], texts["b"]]
    plain = build(capsys, tmp_path / "plain.lm", paths, "--order", "4")
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    out = tmp_path / "bounded.lm"
    err = lmtool(capsys, "count", *paths, "-o", out, "--order", "4", "--memory", "128K", "--tmp", scratch,
                 "--threads", threads)
    assert spills(err) >= 4, err
    assert out.read_bytes() == plain
    assert list(scratch.iterdir()) == []


def test_memory_budget_writes_the_same_arpa(capsys, tmp_path, texts):
    files = []
    for name, options in (("plain", ()), ("bounded", ("--memory", "128K", "--tmp", tmp_path))):
        lmtool(capsys, "count", texts["b"], "--order", "3", "-o", tmp_path / f"{name}.lm", "--arpa",
               tmp_path / f"{name}.arpa", *options)
        files.append(((tmp_path / f"{name}.lm").read_bytes(), (tmp_path / f"{name}.arpa").read_bytes()))
    assert files[0] == files[1]
    assert b"\\3-grams:" in files[0][1]


def test_memory_budget_too_small_for_smoothing_is_said_once(capsys, tmp_path, texts):
    from lmtool.memory import format_size
    from lmtool.ngram.model import NgramModel
    from lmtool import modelfile

    err = lmtool(capsys, "count", texts["a"], "--order", "4", "-o", tmp_path / "small.lm", "--memory", "64K",
                 "--tmp", tmp_path)
    sizes = NgramModel.from_file(modelfile.read(tmp_path / "small.lm")).sizes
    held = max(8 * sizes[0] + 4 * sizes[1], 8 * sizes[1] + 4 * sizes[2], 8 * sizes[2])  # lower order + a(.)
    assert held > 64 << 10
    assert err.count("is too small for smoothing") == 1, err
    assert f"holds {format_size(held)} at once" in err
    err = lmtool(capsys, "count", texts["a"], "--order", "4", "-o", tmp_path / "big.lm", "--memory", "1G",
                 "--tmp", tmp_path)
    assert "too small" not in err
    assert (tmp_path / "big.lm").read_bytes() == (tmp_path / "small.lm").read_bytes()


def test_slices_cut_between_contexts_and_cover_every_row(tmp_path, texts):
    from lmtool.encoded_corpus import encode_corpus
    from lmtool.ngram.counts import count_ngrams
    from lmtool.ngram.smoothing import context_slices

    data = encode_corpus([texts["a"]])
    counts = count_ngrams(data.ids, data.lengths, 4, len(data.vocab))
    sizes = counts.sizes()
    for n in range(2, 5):
        slices = list(context_slices(counts, n, sizes, rows=len(data.vocab) + 1))
        assert len(slices) > 3
        assert [s.lo for s in slices[1:]] == [s.hi for s in slices[:-1]] and slices[-1].hi == sizes[n - 1]
        assert [s.c_lo for s in slices[1:]] == [s.c_hi for s in slices[:-1]] and slices[-1].c_hi == sizes[n - 2]
        for s in slices:
            parent = counts.parent[n - 1][s.lo:s.hi]
            assert np.array_equal(s.parent + s.c_lo, parent)
            assert s.c_lo <= parent.min() and parent.max() < s.c_hi


def test_run_files_are_opened_by_one_thread_at_a_time(tmp_path, monkeypatch):
    """NumPy parses a .npy header with ast, which CPython 3.11 cannot do on two threads at once."""
    from concurrent.futures import ThreadPoolExecutor
    import threading

    from lmtool.ngram.counts import count_chunk

    lengths = np.full(50, 6, np.int32)
    run = runs.write_run(runs.levels(count_chunk(np.arange(300, dtype=np.int32) % 20 + 3, lengths, 3, 30)),
                         tmp_path / "run", 30)
    inside, most, lock = [0], [0], threading.Lock()
    real_load = np.load

    def watched_load(*args, **kwargs):
        with lock:
            inside[0] += 1
            most[0] = max(most[0], inside[0])
        time.sleep(0.002)  # room for another thread to come in
        try:
            return real_load(*args, **kwargs)
        finally:
            with lock:
                inside[0] -= 1

    monkeypatch.setattr(runs.np, "load", watched_load)
    with ThreadPoolExecutor(4) as pool:
        rows = list(pool.map(lambda k: run.rows("count", 1 + k % 3), range(40)))
    assert most[0] == 1
    assert all(np.array_equal(r, rows[k % 3]) for k, r in enumerate(rows))


@pytest.mark.parametrize("rows, threads", [(100, 1), (1000, 1), (1 << 20, 1), (100, 3), (1000, 2)])
def test_merged_runs_equal_counts_merged_in_memory(tmp_path, rows, threads):
    from lmtool.ngram.counts import count_chunk, merge_counts

    rng = np.random.default_rng(rows)
    parts = []
    for i in range(5):
        lengths = rng.integers(0, 9, 150 * (i + 1)).astype(np.int32)
        parts.append(count_chunk(rng.integers(3, 30, int(lengths.sum())).astype(np.int32), lengths, 4, 30))
    on_disk = [runs.write_run(runs.levels(p), tmp_path / f"run{i}", 30) for i, p in enumerate(parts)]
    merged = runs.merge_runs(on_disk, tmp_path / "merged", rows=rows, threads=threads)
    expected = merge_counts(parts)
    assert merged.sizes() == expected.sizes()
    for field in runs.FIELDS:
        for n in range(1, 5):
            assert np.array_equal(merged.rows(field, n), getattr(expected, field)[n - 1]), (field, n)
    for run in on_disk:  # left as they were: the translated levels and node maps are gone
        assert sorted(p.name for p in run.folder.iterdir()) == sorted(f"{f}{n}.npy" for f in runs.FIELDS
                                                                      for n in range(1, 5))


def test_memory_budget_reads_stdin_twice_through_a_spool(capsys, tmp_path, texts, monkeypatch):
    data = texts["gz"].read_bytes()
    outputs = []
    for options in ((), ("--memory", "128K", "--tmp", tmp_path)):
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
        outputs.append(build(capsys, tmp_path / f"m{len(outputs)}.lm", ["-"], "--order", "4", *options))
    assert outputs[0] == outputs[1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m0.lm", "m1.lm"]


def _feed(fd, data):
    """Write ``data`` into the pipe ``fd`` and close it (on a thread: a pipe holds 64 KB at most)."""
    try:
        with os.fdopen(fd, "wb") as pipe:
            pipe.write(data)
    except BrokenPipeError:  # the reader gave up: the test says why
        pass


@pytest.mark.skipif(not os.path.isdir("/dev/fd"), reason="needs /dev/fd")
def test_memory_budget_reads_a_pipe_twice_through_a_spool(capsys, tmp_path, texts):
    """``count <(zcat x.gz) --memory ...`` reads its input in two passes: a pipe (opened again, it
    is at its end) is copied into the scratch folder first. The model is the one counted in memory."""
    data = texts["gz"].read_bytes()
    outputs = []
    # the same name both times (the model records it): a free descriptor, held on /dev/null between runs
    fixed = os.open(os.devnull, os.O_RDONLY)
    try:
        for options in ((), ("--memory", "128K", "--tmp", tmp_path)):
            read_end, write_end = os.pipe()
            os.dup2(read_end, fixed)
            os.close(read_end)
            feeder = threading.Thread(target=_feed, args=(write_end, data))
            feeder.start()
            try:
                outputs.append(build(capsys, tmp_path / f"m{len(outputs)}.lm", [f"/dev/fd/{fixed}"], "--order", "4",
                                     *options))
            finally:
                nothing = os.open(os.devnull, os.O_RDONLY)
                os.dup2(nothing, fixed)  # closes the pipe's read end: a feeder still writing stops
                os.close(nothing)
                feeder.join()
    finally:
        os.close(fixed)
    assert outputs[0] == outputs[1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m0.lm", "m1.lm"]


def test_dask_refuses_a_pipe_in_one_line():
    """Dask's workers open the files themselves: a pipe of this process is nothing to them."""
    from lmtool.errors import LmtoolError
    from lmtool.cluster import expand_paths

    read_end, write_end = os.pipe()
    try:
        with pytest.raises(LmtoolError, match=f"/dev/fd/{read_end}: --dask: workers read files, not a pipe"):
            expand_paths([f"/dev/fd/{read_end}"])
    finally:
        os.close(read_end)
        os.close(write_end)


def test_dask_takes_a_file_whose_name_looks_like_a_pattern(tmp_path):
    from lmtool.cluster import expand_paths

    (tmp_path / "part[1].txt").write_text("a b\n")
    (tmp_path / "part1.txt").write_text("c d\n")
    assert expand_paths([str(tmp_path / "part[1].txt")]) == [str(tmp_path / "part[1].txt")]  # the file itself
    assert expand_paths([str(tmp_path / "part[0-9].txt")]) == [str(tmp_path / "part1.txt")]  # a pattern


def test_large_budget_spills_nothing(capsys, tmp_path, texts):
    plain = build(capsys, tmp_path / "plain.lm", [texts["a"]], "--order", "3")
    err = lmtool(capsys, "count", texts["a"], "-o", tmp_path / "m.lm", "--order", "3", "-S", "1G", "-T", tmp_path)
    assert "nothing spilled" in err
    assert (tmp_path / "m.lm").read_bytes() == plain


@pytest.mark.parametrize("options", [(), ("--memory", "200K"), ("--smoothing", "add-k"), ("--smoothing", "kneser-ney"),
                                     ("--prune", "0", "1", "1"), ("--memory", "200K", "--prune", "0", "1")])
def test_threads_give_the_same_file(capsys, tmp_path, texts, options, monkeypatch):
    monkeypatch.setattr("lmtool.ngram.counts.CHUNK_TOKENS", 4096)  # several chunks in memory too
    monkeypatch.setattr("lmtool.corpus.CHUNK_BYTES", 8192)  # several chunks read, into a token table per thread
    monkeypatch.setattr("lmtool.ngram.smoothing.SLICE_ROWS", 1)  # each order smoothed in several slices, on threads
    paths = [texts["a"], texts["gz"]]
    one = build(capsys, tmp_path / "one.lm", paths, "--order", "4", "--threads", "1", *options)
    two = build(capsys, tmp_path / "two.lm", paths, "--order", "4", "--threads", "2", *options)
    assert one == two


def test_chunked_in_memory_counting_is_unchanged_by_threads():
    from lmtool.ngram.counts import count_ngrams

    rng = np.random.default_rng(5)
    lengths = rng.integers(0, 12, 3000).astype(np.int32)
    ids = rng.integers(3, 40, int(lengths.sum())).astype(np.int32)
    whole = count_ngrams(ids, lengths, 4, 40, chunk_tokens=1 << 30)
    for threads in (1, 3):
        parts = count_ngrams(ids, lengths, 4, 40, chunk_tokens=997, threads=threads)
        for field in ("parent", "word", "count", "suffix"):
            for a, b in zip(getattr(whole, field), getattr(parts, field)):
                assert a.dtype == b.dtype and np.array_equal(a, b)


@pytest.fixture
def dask_scratch(tmp_path, monkeypatch):
    """Dask's scratch folder (its workers' space and lock files) in the test's folder, not in the
    system's temporary folder: ``temporary-directory`` in Dask's configuration, for this process,
    and in the environment, for a command the test starts. Skips the test without dask.distributed
    (fails under CI)."""
    dask = import_unless_ci("dask", "pip install 'lmtool[dask]'")
    import_unless_ci("distributed", "pip install 'lmtool[dask]'")
    folder = tmp_path / "dask-scratch"
    folder.mkdir()
    monkeypatch.setenv("DASK_TEMPORARY_DIRECTORY", str(folder))
    with dask.config.set({"temporary-directory": str(folder)}):
        yield folder


@pytest.mark.parametrize("options", [(), ("--prune", "0", "1", "1")])
def test_dask_local_cluster_gives_the_same_file(capsys, tmp_path, texts, options, dask_scratch):
    paths = [texts["a"], texts["gz"], texts["b"]]
    plain = build(capsys, tmp_path / "plain.lm", paths, "--order", "4", *options)
    err = lmtool(capsys, "count", *paths, "-o", tmp_path / "dask.lm", "--order", "4", "--dask", "local:2", *options)
    assert "3 shards on 2 Dask workers" in err
    assert (tmp_path / "dask.lm").read_bytes() == plain
    assert any(dask_scratch.iterdir())  # the workers' space was made here


def test_dask_local_cluster_says_nothing_of_a_taken_port(capsys, tmp_path, texts, monkeypatch, dask_scratch):
    """Another local cluster holds distributed's default HTTP port (8787): lmtool's cluster takes
    another, without a warning. The test holds a free port of its own and makes it the default."""
    import socket

    from distributed.node import ServerNode

    start_http_server = ServerNode.start_http_server
    asked = []

    def on_the_taken_port(self, routes, dashboard_address, default_port=0, **kwargs):
        asked.append((dashboard_address, default_port))
        if default_port == DISTRIBUTED_HTTP_PORT:
            default_port = taken_port
        if isinstance(dashboard_address, str) and dashboard_address.endswith(f":{DISTRIBUTED_HTTP_PORT}"):
            dashboard_address = dashboard_address[:-len(str(DISTRIBUTED_HTTP_PORT))] + str(taken_port)
        return start_http_server(self, routes, dashboard_address, default_port, **kwargs)

    monkeypatch.setattr(ServerNode, "start_http_server", on_the_taken_port)
    with socket.socket() as taken:
        taken.bind(("", 0))
        taken.listen()
        taken_port = taken.getsockname()[1]
        err = lmtool(capsys, "count", texts["b"], "-o", tmp_path / "m.lm", "--order", "2", "--dask", "local:1")
    assert asked, "the scheduler's HTTP server was not started through ServerNode.start_http_server"
    assert "in use" not in err and "UserWarning" not in err, err


def test_dask_address_of_something_else_is_one_line_in_bounded_time(capsys, tmp_path, texts, monkeypatch):
    """A peer that accepts and never answers (a web server waits for a request) used to hang forever."""
    import socket

    import_unless_ci("distributed", "pip install 'lmtool[dask]'")
    monkeypatch.setattr("lmtool.cluster.CONNECT_SECONDS", 1)
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        address = "tcp://127.0.0.1:%d" % silent.getsockname()[1]
        started = time.monotonic()
        err = lmtool(capsys, "count", texts["b"], "-o", tmp_path / "m.lm", "--dask", address, code=1)
    assert time.monotonic() - started < 30
    assert err.count("\n") == 1 and "is not a Dask scheduler" in err and address in err, err
    assert not (tmp_path / "m.lm").exists()


def _stderr_is_nothing(pid):
    """Whether process ``pid`` writes its standard error to /dev/null: ``lmtool count --dask local:N``
    does while its cluster's worker processes start (so that they inherit it)."""
    try:
        return os.readlink(f"/proc/{pid}/fd/2") == os.devnull
    except OSError:
        return False


def _children(pid):
    """Process ids of ``pid``'s children (Linux)."""
    found = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                found += f.read().split()
    except OSError:  # it ended, or one of its threads did
        pass
    return found


def _cluster_starting(proc):
    """The worker process and multiprocessing's resource tracker are there, the cluster not yet up."""
    return _stderr_is_nothing(proc.pid) and len(_children(proc.pid)) >= 2


def _cluster_at_work(proc):
    """The cluster is up and a worker process of it reads the corpus."""
    return not _stderr_is_nothing(proc.pid) and any(has_open(pid, KJV_TRAIN) for pid in process_group(proc.pid)
                                                    if pid != proc.pid)


@pytest.mark.skipif(not os.path.exists("/proc/self/task"), reason="needs /proc to see the worker processes")
@pytest.mark.parametrize("moment", [_cluster_starting, _cluster_at_work], ids=["starting", "at-work"])
def test_ctrl_c_at_a_terminal_stops_a_local_cluster_in_one_line(tmp_path, dask_scratch, moment):
    """A terminal's Ctrl-C reaches the whole process group, the cluster's worker processes too."""
    import signal
    import subprocess

    command = [sys.executable, "-m", "lmtool.cli", "count", "-q", KJV_TRAIN, KJV_TRAIN, KJV_TRAIN, "--order", "5",
               "-o", tmp_path / "m.lm", "--dask", "local:1"]
    proc = subprocess.Popen([str(c) for c in command], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True, cwd=tmp_path, preexec_fn=as_in_a_terminal)
    try:
        sent = signal_when(proc, lambda: moment(proc), signal.SIGINT, group=True)
        _, err = proc.communicate(timeout=120)
        assert sent, f"lmtool count ended (exit {proc.returncode}) before the moment came: {err.decode()[-3000:]}"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 130 and err.decode().split() == ["lmtool:", "interrupted"], err.decode()[-3000:]
    assert [p.name for p in tmp_path.iterdir()] == [dask_scratch.name]


def test_dask_worker_errors_are_one_line(capsys, tmp_path, texts, dask_scratch):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"fine words\n\x00\x01 binary\n")
    err = lmtool(capsys, "count", texts["a"], bad, "-o", tmp_path / "m.lm", "--dask", "local:1", code=1)
    assert err.count("\n") == 1 and "bad.txt: binary file" in err, err
    err = lmtool(capsys, "count", tmp_path / "nothing*.txt", "-o", tmp_path / "m.lm", "--dask", "local:1", code=1)
    assert "no file matches this pattern" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.txt", dask_scratch.name]


def test_dask_splits_large_plain_files_and_gives_the_same_file(capsys, tmp_path, texts, monkeypatch, dask_scratch):
    from lmtool.corpus import byte_ranges

    paths = [texts["a"], texts["gz"], texts["b"]]
    monkeypatch.setenv("LMTOOL_DASK_SHARD_BYTES", "4000")
    shards = [len(byte_ranges(str(p), 4000)) for p in paths]
    assert shards[0] > 2 and shards[1] == 1 and shards[2] > 2  # the gzip file stays whole
    plain = build(capsys, tmp_path / "plain.lm", paths, "--order", "4")
    err = lmtool(capsys, "count", *paths, "-o", tmp_path / "dask.lm", "--order", "4", "--dask", "local:2")
    assert f"{sum(shards)} shards on 2 Dask workers" in err
    assert (tmp_path / "dask.lm").read_bytes() == plain  # words, sentences and fingerprint included


def test_dask_names_the_byte_range_of_a_bad_line(capsys, tmp_path, monkeypatch, dask_scratch):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"some good words\n" * 30 + b"bad \xff word\n" + b"some good words\n" * 29)
    monkeypatch.setenv("LMTOOL_DASK_SHARD_BYTES", "lots")
    err = lmtool(capsys, "count", bad, "-o", tmp_path / "m.lm", "--dask", "local:2", code=1)
    assert err.count("\n") == 1 and "LMTOOL_DASK_SHARD_BYTES must be a positive number of bytes" in err, err
    monkeypatch.setenv("LMTOOL_DASK_SHARD_BYTES", "1")  # 1,000 shards: refused rather than scheduled
    err = lmtool(capsys, "count", bad, "-o", tmp_path / "m.lm", "--dask", "local:2", code=1)
    assert err.count("\n") == 1 and "LMTOOL_DASK_SHARD_BYTES must be at least 256 bytes, got 1" in err, err
    monkeypatch.setenv("LMTOOL_DASK_SHARD_BYTES", str(bad.stat().st_size // 3 + 1))
    err = lmtool(capsys, "count", bad, "-o", tmp_path / "m.lm", "--dask", "local:2", code=1)
    # line 31 of the file is line 11 of the range starting at byte 320; 0xff is at byte 484 of the file
    assert err.count("\n") == 1 and "bad.txt (bytes 318-636): not UTF-8 text: invalid byte 0xff on line 11 " \
                                     "(offset 484)" in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.txt", dask_scratch.name]


def test_dask_missing_is_one_line(capsys, tmp_path, texts, monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)
    err = lmtool(capsys, "count", texts["a"], "-o", tmp_path / "m.lm", "--dask", "local:2", code=1)
    assert err == "lmtool: error: --dask needs dask.distributed: pip install 'lmtool[dask]'\n"


def test_temporary_files_go_after_a_bad_second_input(capsys, tmp_path, texts):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"fine words\n\x00\x01 binary\n")
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    err = lmtool(capsys, "count", texts["a"], bad, "-o", tmp_path / "m.lm", "-S", "128K", "-T", scratch, code=1)
    assert err.count("\n") == 1 and "bad.txt" in err and "binary" in err
    assert list(scratch.iterdir()) == []
    assert not (tmp_path / "m.lm").exists()


def failing_writer(exception, after):
    """A ``runs.write_run`` that writes ``after`` runs, then raises ``exception``."""
    real = runs.write_run
    calls = []

    def write_run(levels, folder, vocab_size):
        calls.append(folder)
        if len(calls) > after:
            raise exception
        return real(levels, folder, vocab_size)

    return write_run


def test_temporary_files_go_after_ctrl_c(capsys, tmp_path, texts, monkeypatch):
    monkeypatch.setattr(runs, "write_run", failing_writer(KeyboardInterrupt(), 3))
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    err = lmtool(capsys, "count", texts["a"], "-o", tmp_path / "m.lm", "--order", "4", "-S", "128K", "-T", scratch,
                 code=130)
    assert err.strip() == "lmtool: interrupted"  # click writes a newline first, to end the ^C line
    assert list(scratch.iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scratch"]


def test_spent_runs_go_while_the_model_is_written_and_the_rest_after_ctrl_c(capsys, tmp_path, texts, monkeypatch):
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    left = []

    def interrupted_writer(*args):
        """Wait (120 s at most) for the spilled runs and the merged one to go, note what is left, then Ctrl-C."""
        (folder,) = scratch.iterdir()
        deadline = time.monotonic() + 120
        while sorted(p.name for p in folder.iterdir()) != ["model"] and time.monotonic() < deadline:
            time.sleep(0.01)
        left.extend(p.name for p in folder.iterdir())
        raise KeyboardInterrupt

    spilled = []
    real_write_run = runs.write_run
    monkeypatch.setattr(runs, "write_run", lambda *args: spilled.append(args[1]) or real_write_run(*args))
    monkeypatch.setattr("lmtool.ngram.build.write_model_file", interrupted_writer)
    lmtool(capsys, "count", texts["a"], "-o", tmp_path / "m.lm", "--order", "4", "-S", "128K", "-T", scratch, code=130)
    assert len(spilled) >= 3
    assert left == ["model"]
    assert list(scratch.iterdir()) == []
    assert not (tmp_path / "m.lm").exists()


def full_disk_when_merging(run, n, step):
    raise OSError(errno.ENOSPC, "No space left on device")


@pytest.mark.parametrize("stage, replacement", [
    ("write_run", failing_writer(OSError(errno.ENOSPC, "No space left on device"), 2)),  # spilling a run
    ("_translate", full_disk_when_merging),  # merging the runs
])
def test_full_disk_is_one_line_naming_the_folder(capsys, tmp_path, texts, monkeypatch, stage, replacement):
    monkeypatch.setattr(runs, stage, replacement)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    err = lmtool(capsys, "count", texts["a"], "-o", tmp_path / "m.lm", "--order", "4", "-S", "128K", "-T", scratch,
                 code=1)
    assert err.count("\n") == 1 and err.startswith(f"lmtool: error: {scratch}: no space left"), err
    assert "--tmp" in err
    assert list(scratch.iterdir()) == []


def test_a_short_write_while_spilling_is_a_full_disk(capsys, tmp_path, texts, monkeypatch):
    """NumPy reports a short write without an errno ("N requested and M written"): still one line."""
    def short_save(file, array):
        raise OSError(f"{array.nbytes} requested and {array.nbytes // 2} written")

    monkeypatch.setattr(runs.np, "save", short_save)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    err = lmtool(capsys, "count", texts["a"], "-o", tmp_path / "m.lm", "--order", "4", "-S", "128K", "-T", scratch,
                 code=1)
    assert err.count("\n") == 1 and err.startswith(f"lmtool: error: {scratch}: no space left"), err
    assert list(scratch.iterdir()) == []


@pytest.mark.parametrize("options, message", [
    (("--threads", "0"), "--threads must be a positive integer, got 0"),
    (("--threads", "-3"), "--threads must be a positive integer, got -3"),
    (("--threads", "5000"), "--threads 5000 is absurdly large"),
    (("--memory", "lots"), "--memory: expected a size like 500M, 2G or 50%"),
    (("--memory", "0%"), "a percentage of physical RAM must be in (0, 100]"),
    (("--memory", "10K"), "below the smallest budget, 64K"),
    (("--memory", "1G", "--tmp", "/no/such/folder"), "/no/such/folder: --tmp: no such folder"),
    (("--memory", "1G", "--tmp", "{a}"), "{a}: --tmp: not a folder"),
    (("--tmp", "."), "--tmp holds the temporary files of --memory; give --memory too"),
    (("--arpa", ""), "an output file name cannot be empty"),
    (("--dask", "local:2", "--memory", "1G"), "--dask counts on the cluster's workers"),
    (("--dask", "local:2", "--threads", "2"), "--dask counts on the cluster's workers"),
])
def test_absurd_options_are_refused_in_one_line(capsys, tmp_path, texts, options, message):
    options = [str(o).format(a=texts["a"]) for o in options]
    err = lmtool(capsys, "count", texts["a"], "-o", tmp_path / "m.lm", *options, code=1)
    assert err.count("\n") == 1 and message.format(a=texts["a"]) in err, err


def test_memory_sizes_read_like_lmplz():
    from lmtool.memory import parse_memory, physical_memory

    assert parse_memory("500M") == 500 << 20
    assert parse_memory("2g") == 2 << 30
    assert parse_memory("1.5G") == 3 << 29
    assert parse_memory("100") == 100 << 10
    assert parse_memory("65536b") == 65536
    assert parse_memory("50%") == physical_memory() // 2
