"""The model container: round trip, and clear refusals of truncated, corrupt, foreign or newer files."""

import os
import signal
import struct
import subprocess
import sys

import numpy as np
import pytest

import lmtool
from lmtool import modelfile, outputs
from lmtool.errors import LmtoolError


def write_sample(path):
    arrays = {"a": np.arange(10, dtype=np.int32), "b": np.linspace(0, 1, 7, dtype=np.float32).reshape(7, 1),
              "empty": np.zeros(0, np.uint8)}
    modelfile.write(path, "ngram", {"hello": "wörld", "n": 3}, arrays)
    return arrays


def test_round_trip_and_alignment(tmp_path):
    path = tmp_path / "m.lm"
    arrays = write_sample(path)
    opened = modelfile.read(path)
    assert opened.kind == "ngram" and opened.meta == {"hello": "wörld", "n": 3}
    for name, array in arrays.items():
        np.testing.assert_array_equal(opened[name], array)
        assert opened[name].dtype == array.dtype
        assert opened[name].ctypes.data % 64 == 0 or opened[name].size == 0


def test_same_input_same_bytes(tmp_path):
    write_sample(tmp_path / "one.lm")
    write_sample(tmp_path / "two.lm")
    assert (tmp_path / "one.lm").read_bytes() == (tmp_path / "two.lm").read_bytes()


@pytest.mark.parametrize("cut", [4, 30, -1, -100])
def test_truncated(tmp_path, cut):
    path = tmp_path / "m.lm"
    write_sample(path)
    data = path.read_bytes()
    path.write_bytes(data[:cut])
    with pytest.raises(LmtoolError, match="truncated|not an lmtool model"):
        modelfile.read(path)


def test_flipped_byte_is_caught(tmp_path):
    path = tmp_path / "m.lm"
    write_sample(path)
    data = bytearray(path.read_bytes())
    data[-70] ^= 0x40
    path.write_bytes(bytes(data))
    with pytest.raises(LmtoolError, match="checksum"):
        modelfile.read(path)


def test_bytes_after_the_end_are_damage(tmp_path):
    path = tmp_path / "m.lm"
    write_sample(path)
    path.write_bytes(path.read_bytes() + b"garbage\n")
    with pytest.raises(LmtoolError, match=r"damaged model file \(8 bytes after its end\)"):
        modelfile.read(path, verify=False)


def test_version_zero_is_corruption_not_a_newer_format(tmp_path):
    path = tmp_path / "m.lm"
    write_sample(path)
    data = bytearray(path.read_bytes())
    data[8:12] = struct.pack("<I", 0)
    path.write_bytes(bytes(data))
    with pytest.raises(LmtoolError, match="corrupt model file \\(format version 0"):
        modelfile.read(path)


def test_newer_version_names_both(tmp_path):
    path = tmp_path / "m.lm"
    write_sample(path)
    data = bytearray(path.read_bytes())
    data[8:12] = struct.pack("<I", modelfile.FORMAT_VERSION + 1)
    path.write_bytes(bytes(data))
    version = modelfile.FORMAT_VERSION
    with pytest.raises(LmtoolError, match=rf"version {version + 1} .*up to {version}"):
        modelfile.read(path)


@pytest.mark.parametrize("content,hint", [(b"\\data\\\nngram 1=3\n", "ARPA"),
                                          (b"mmap lm http://kheafield.com", "KenLM"),
                                          (bytes(range(7, 107)), "not an lmtool model"), (b"", "empty")])
def test_foreign_files(tmp_path, content, hint):
    path = tmp_path / "m.lm"
    path.write_bytes(content)
    with pytest.raises(LmtoolError, match=hint):
        lmtool.load(path)


def test_failed_write_leaves_nothing(tmp_path):
    path = tmp_path / "m.lm"
    path.write_bytes(b"old")
    with pytest.raises(ValueError):
        modelfile.write(path, "ngram", {}, {"bad": np.array(["strings"])})
    assert path.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["m.lm"]


def failing_at_close(real_fdopen):
    import errno

    def fdopen(*args, **kwargs):
        f = real_fdopen(*args, **kwargs)
        real_close = f.close

        def close():
            real_close()
            raise OSError(errno.ENOSPC, "No space left on device")

        f.close = close
        return f

    return fdopen


def test_full_disk_at_the_last_flush_names_the_output(tmp_path, monkeypatch):
    monkeypatch.setattr(modelfile.os, "fdopen", failing_at_close(os.fdopen))
    path = tmp_path / "m.lm"
    path.write_bytes(b"old")
    with pytest.raises(LmtoolError) as caught:
        modelfile.write(path, "ngram", {}, {"a": np.arange(3)})
    assert "cannot write: No space left on device" in str(caught.value) and str(path) in str(caught.value)
    assert path.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["m.lm"]


def test_ngram_model_round_trip(tmp_path):
    from tests.helpers import model_from_text

    model = model_from_text(tmp_path, "a b c\nb c d\n", 3)
    model.save(tmp_path / "x.lm")
    again = lmtool.load(tmp_path / "x.lm")
    assert again.vocab.tokens == model.vocab.tokens and again.sizes == model.sizes
    for name in ("word", "prob", "backoff", "children"):
        np.testing.assert_array_equal(getattr(again, name), getattr(model, name))
    assert again.score("a b c d") == model.score("a b c d")


def test_opening_an_ngram_model_leaves_the_neural_code_unloaded(tiny_model):
    code = ("import sys, lmtool; lm = lmtool.load(sys.argv[1]); lm.score('in the beginning'); "
            "print(sorted(m for m in sys.modules if m.startswith('lmtool.neural')))")
    done = subprocess.run([sys.executable, "-c", code, str(tiny_model.lm)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
    assert {k: lmtool.model_class(k).kind for k in lmtool.MODEL_CLASSES} == {"ngram": "ngram", "recurrent": "recurrent",
                                                                            "window": "window"}


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
