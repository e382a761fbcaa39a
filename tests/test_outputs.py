"""Outputs that appear whole or not at all (``lmtool.outputs``): FIFOs written into, symlinks kept,
staged sets renamed together even when a signal arrives between the renames, a full disk named."""

import os
import signal
import sys

import numpy as np
import pytest

from lmtool import modelfile, outputs
from lmtool.errors import LmtoolError

from .helpers import failing_at_close


def write_through(how, path, data):
    """Write ``data`` to ``path`` the way one output (``atomic_output``) or a set of them does."""
    if how == "atomic":
        with outputs.atomic_output(path, "wb") as out:
            out.write(data)
    else:
        with outputs.staged_outputs(path) as (tmp,):
            with open(tmp, "wb") as out:
                out.write(data)


@pytest.mark.parametrize("how", ["atomic", "staged"])
@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_fifo_output_is_written_into_not_replaced(tmp_path, how):
    import stat
    import threading

    fifo = tmp_path / "out.fifo"
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()), daemon=True)
    reader.start()
    write_through(how, fifo, b"model bytes")
    reader.join(2)
    assert got == [b"model bytes"]
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert os.listdir(tmp_path) == ["out.fifo"]


@pytest.mark.parametrize("how", ["atomic", "staged"])
def test_a_symlink_output_replaces_its_target_and_stays_a_link(tmp_path, how):
    (tmp_path / "real").mkdir()
    target = tmp_path / "real" / "m.lm"
    target.write_bytes(b"old")
    link = tmp_path / "link.lm"
    link.symlink_to(target)
    write_through(how, link, b"new")
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert target.read_bytes() == b"new"
    assert sorted(os.listdir(tmp_path)) == ["link.lm", "real"] and os.listdir(tmp_path / "real") == ["m.lm"]


@pytest.mark.parametrize("how", ["atomic", "staged"])
def test_dash_is_refused_rather_than_made_a_file(tmp_path, monkeypatch, how):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(LmtoolError, match=r"^-: cannot write .*stdout.*give a file name"):
        write_through(how, "-", b"new")
    assert os.listdir(tmp_path) == []


def test_an_interrupt_between_staged_renames_never_mixes_old_and_new(tmp_path, monkeypatch):
    from lmtool import interrupts

    real_replace = os.replace

    def replace_then_interrupt(*args, **kwargs):
        real_replace(*args, **kwargs)
        interrupts._received.set()  # as a Ctrl-C that Python swallowed, right after the first rename

    monkeypatch.setattr(modelfile.os, "replace", replace_then_interrupt)
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_bytes(b"old a")
    b.write_bytes(b"old b")
    try:
        with outputs.staged_outputs(a, b) as (tmp_a, tmp_b):
            open(tmp_a, "wb").write(b"new a")
            open(tmp_b, "wb").write(b"new b")
    except KeyboardInterrupt:
        pass
    finally:
        interrupts._received.clear()
    assert (a.read_bytes(), b.read_bytes()) in [(b"old a", b"old b"), (b"new a", b"new b")]
    assert sorted(os.listdir(tmp_path)) == ["a", "b"]


@pytest.mark.skipif(not hasattr(signal, "SIGINT") or sys.platform == "win32", reason="POSIX signals")
def test_a_ctrl_c_during_staged_renames_waits_until_both_are_done(tmp_path, monkeypatch):
    real_replace = os.replace

    def replace_then_ctrl_c(*args, **kwargs):
        real_replace(*args, **kwargs)
        os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(modelfile.os, "replace", replace_then_ctrl_c)
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_bytes(b"old a")
    b.write_bytes(b"old b")
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            with outputs.staged_outputs(a, b) as (tmp_a, tmp_b):
                open(tmp_a, "wb").write(b"new a")
                open(tmp_b, "wb").write(b"new b")
    finally:
        signal.signal(signal.SIGINT, previous)
    assert (a.read_bytes(), b.read_bytes()) == (b"new a", b"new b")
    assert sorted(os.listdir(tmp_path)) == ["a", "b"]


@pytest.mark.parametrize("where", ["raw", "atomic_output"])
def test_full_disk_in_a_staged_output_names_the_output_not_its_temporary(tmp_path, monkeypatch, where):
    import errno

    path = tmp_path / "m.lm"
    path.write_bytes(b"old")
    with pytest.raises(LmtoolError) as caught:
        with outputs.staged_outputs(path) as (tmp,):
            if where == "raw":
                raise OSError(errno.ENOSPC, "No space left on device", tmp)
            monkeypatch.setattr(modelfile.os, "fdopen", failing_at_close(os.fdopen))
            modelfile.write(tmp, "ngram", {}, {"a": np.arange(3)})
    assert str(caught.value) == f"{path}: cannot write: No space left on device"
    assert caught.value.path == str(path)
    assert path.read_bytes() == b"old" and os.listdir(tmp_path) == ["m.lm"]
