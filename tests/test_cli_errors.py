"""Bad input at the command line: one line on stderr, a non-zero exit, no traceback, no partial output.

The project's standard: a missing, empty, binary or non-UTF-8 file, a 1 MB line, an absurd option,
a directory where a file belongs, an output folder that is missing or unwritable, a corrupt or
truncated compressed file, bad data on stdin, a truncated, corrupt, newer or foreign model file and a
broken ARPA file each end with ``lmtool: error: <file>: <problem>`` on one line of stderr, a non-zero
exit status (2 for usage errors), nothing on stdout, no output file (a pre-existing one is left as it
was) and no ``.lmtool-*.tmp`` left behind. Ctrl-C ends with ``lmtool: interrupted`` and the same
guarantees.

Every case runs ``python -m lmtool.cli`` in a fresh process with its own output folder (also its
working directory, so a stray file of any name is caught). The cases are independent: a single
pytest process runs all the selected ones at once on a small pool before checking them, and each
pytest-xdist worker runs only the cases it is given (see ``outcomes``).
"""

import bz2
import gzip
import lzma
import os
import random
import signal
import struct
import subprocess
import sys
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from .conftest import KJV_TRAIN, TINY_TEST, TINY_TRAIN, run_lmtool
from .helpers import as_a_background_job, as_in_a_terminal, has_open, signal_when

SENTINEL = b"pre-existing output: lmtool must leave these bytes alone\n"
TMP_PREFIX = ".lmtool-"


# --- the cases -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Case:
    """One command expected to fail.

    Every string is a template filled from the fixture's paths (``{out}`` is the case's own folder).
    ``names`` must all appear in the error line; ``outputs`` must not exist afterwards; ``existing``
    are created (with ``SENTINEL``) before the run and must be unchanged after it; ``dirs`` are
    created empty before and must still be empty after; ``stdin`` is a file fed on standard input;
    ``code`` is the exact exit status where it is known (2: usage error); ``needs`` names a fixture
    path the case cannot run without.
    """

    args: str
    names: tuple = ()
    outputs: tuple = ()
    existing: tuple = ()
    dirs: tuple = ()
    stdin: str = None
    code: int = None
    needs: str = None


CASES = {}

# Bad text where a corpus is read. All three commands read through the same reader, so perplexity gets
# every kind and count and score a selection (a count run loads the Numba kernels before it opens its
# input, about a second each, so count cases are the costly ones).
TEXT_KINDS = ("missing", "empty", "binary", "latin1", "longline", "dir", "gz_empty", "gz_trunc", "gz_corrupt",
              "bz2_trunc", "bz2_corrupt", "xz_trunc", "xz_corrupt")
COUNT_TEXT_KINDS = ("missing", "empty", "binary", "latin1", "longline", "dir", "gz_trunc", "bz2_corrupt")
SCORE_TEXT_KINDS = ("missing", "binary", "latin1", "gz_corrupt", "xz_trunc")
for kind in TEXT_KINDS:
    if kind in COUNT_TEXT_KINDS:
        CASES[f"count-corpus-{kind}"] = Case(f"count -q {{{kind}}} -o {{out}}/m.lm --arpa {{out}}/m.arpa",
                                             names=(f"{{{kind}}}",), outputs=("{out}/m.lm", "{out}/m.arpa"))
    CASES[f"perplexity-text-{kind}"] = Case(f"perplexity -q {{lm}} {{{kind}}}", names=(f"{{{kind}}}",))
    if kind in SCORE_TEXT_KINDS:
        CASES[f"score-text-{kind}"] = Case(f"score -q {{lm}} {{{kind}}}", names=(f"{{{kind}}}",))
CASES.update({
    "count-corpus-only-empty-lines": Case("count -q {blank} -o {out}/m.lm", names=("{blank}",),
                                          outputs=("{out}/m.lm",)),
    "count-corpus-longline-existing-outputs": Case("count -q {longline} -o {out}/m.lm --arpa {out}/m.arpa",
                                                   names=("{longline}",), existing=("{out}/m.lm", "{out}/m.arpa")),
    "count-corpus-second-file-missing": Case("count -q {corpus} {missing} -o {out}/m.lm", names=("{missing}",),
                                             outputs=("{out}/m.lm",)),
    "perplexity-text-second-file-missing": Case("perplexity -q {lm} {text} {missing}", names=("{missing}",)),
    "perplexity-text-second-file-binary": Case("perplexity -q {lm} {text} {binary}", names=("{binary}",)),
})

# Standard input ('-').
CASES.update({
    "count-stdin-empty": Case("count -q - -o {out}/m.lm", stdin="{empty}", names=("stdin",), outputs=("{out}/m.lm",)),
    "count-stdin-gz-corrupt": Case("count -q - -o {out}/m.lm", stdin="{gz_corrupt}", names=("stdin",),
                                   outputs=("{out}/m.lm",)),
    "perplexity-stdin-latin1": Case("perplexity -q {lm} -", stdin="{latin1}", names=("stdin",)),
    "perplexity-stdin-xz-trunc": Case("perplexity -q {lm} -", stdin="{xz_trunc}", names=("stdin",)),
    "score-stdin-binary": Case("score -q {lm} -", stdin="{binary}", names=("stdin",)),
    "score-stdin-empty": Case("score -q {lm} -", stdin="{empty}", names=("stdin",)),
    "convert-stdin-broken-arpa": Case("convert -q - {out}/m.lm", stdin="{arpa_wrong_count_2}", names=("stdin",),
                                      outputs=("{out}/m.lm",)),
})

# Absurd options and usage errors.
CASES.update({
    "count-order-0": Case("count -q {corpus} --order 0 -o {out}/m.lm", names=("--order",), outputs=("{out}/m.lm",)),
    "count-order-20": Case("count -q {corpus} --order 20 -o {out}/m.lm", names=("--order",),
                           outputs=("{out}/m.lm",)),
    "count-order-not-a-number": Case("count -q {corpus} --order three -o {out}/m.lm", names=("--order",),
                                     outputs=("{out}/m.lm",), code=2),
    "count-add-k-negative-k": Case("count -q {corpus} --smoothing add-k --k -1 -o {out}/m.lm", names=("--k",),
                                   outputs=("{out}/m.lm",)),
    "count-add-k-zero-k": Case("count -q {corpus} --smoothing add-k --k 0 -o {out}/m.lm", names=("--k",),
                               outputs=("{out}/m.lm",)),
    "count-negative-k": Case("count -q {corpus} --k -1 -o {out}/m.lm", names=("--k",), outputs=("{out}/m.lm",)),
    "count-min-count-0": Case("count -q {corpus} --min-count 0 -o {out}/m.lm", names=("--min-count",),
                              outputs=("{out}/m.lm",)),
    "count-max-vocab-1": Case("count -q {corpus} --max-vocab 1 -o {out}/m.lm", names=("--max-vocab",),
                              outputs=("{out}/m.lm",)),
    "count-unknown-smoothing": Case("count -q {corpus} --smoothing good-turing -o {out}/m.lm",
                                    names=("--smoothing",), outputs=("{out}/m.lm",), code=2),
    "count-unknown-level": Case("count -q {corpus} --level byte -o {out}/m.lm", names=("--level",),
                                outputs=("{out}/m.lm",), code=2),
    "count-no-output-option": Case("count -q {corpus}", names=("--output",), code=2),
    "count-no-corpus": Case("count -q -o {out}/m.lm", names=("CORPUS",), outputs=("{out}/m.lm",), code=2),
    "generate-temperature-0": Case("generate -q {lm} --temperature 0", names=("--temperature",)),
    "generate-temperature-negative": Case("generate -q {lm} --temperature -1", names=("--temperature",)),
    "generate-top-k-negative": Case("generate -q {lm} --top-k -1", names=("--top-k",)),
    "generate-n-0": Case("generate -q {lm} -n 0", names=("-n",)),
    "generate-max-tokens-0": Case("generate -q {lm} --max-tokens 0", names=("--max-tokens",)),
    "generate-seed-negative": Case("generate -q {lm} --seed -1", names=("--seed",)),
    "no-command": Case("", code=2),
    "unknown-command": Case("train-fast {corpus}", names=("train-fast",), code=2),
    "perplexity-no-files": Case("perplexity -q {lm}", names=("FILES",), code=2),
})

# --vocab files.
for kind in ("missing", "empty", "dir", "binary", "blank"):
    CASES[f"count-vocab-{kind}"] = Case(f"count -q {{corpus}} --vocab {{{kind}}} -o {{out}}/m.lm",
                                        names=(f"{{{kind}}}",), outputs=("{out}/m.lm",))

# Outputs: directories, missing folders, unwritable folders, what ARPA cannot hold.
CASES.update({
    "count-output-is-directory": Case("count -q {corpus} -o {out}/adir", names=("{out}/adir",), dirs=("{out}/adir",)),
    "count-arpa-is-directory": Case("count -q {corpus} -o {out}/m.lm --arpa {out}/adir", names=("{out}/adir",),
                                    outputs=("{out}/m.lm",), dirs=("{out}/adir",)),
    "count-output-missing-folder": Case("count -q {corpus} -o {out}/no/such/m.lm", names=("{out}/no/such/m.lm",),
                                        outputs=("{out}/no",)),
    "count-arpa-missing-folder": Case("count -q {corpus} -o {out}/m.lm --arpa {out}/no/such/m.arpa",
                                      names=("{out}/no/such/m.arpa",), outputs=("{out}/m.lm", "{out}/no")),
    "count-output-unwritable": Case("count -q {corpus} -o {ro}/m.lm --arpa {out}/m.arpa", names=("{ro}/m.lm",),
                                    outputs=("{ro}/m.lm", "{out}/m.arpa"), needs="ro"),
    "count-output-unwritable-existing-arpa": Case("count -q {corpus} -o {ro}/m.lm --arpa {out}/m.arpa",
                                                  names=("{ro}/m.lm",), outputs=("{ro}/m.lm",),
                                                  existing=("{out}/m.arpa",), needs="ro"),
    "count-arpa-unwritable": Case("count -q {corpus} -o {out}/m.lm --arpa {ro}/m.arpa", names=("{ro}/m.arpa",),
                                  outputs=("{out}/m.lm", "{ro}/m.arpa"), needs="ro"),
    "count-char-level-arpa": Case("count -q {corpus} --level char -o {out}/m.lm --arpa {out}/m.arpa",
                                  names=("{out}/m.arpa",), outputs=("{out}/m.lm", "{out}/m.arpa")),
    "count-char-level-arpa-existing-outputs": Case("count -q {corpus} --level char -o {out}/m.lm --arpa {out}/m.arpa",
                                                   names=("{out}/m.arpa",), existing=("{out}/m.lm", "{out}/m.arpa")),
    "convert-output-is-directory": Case("convert -q {lm} {out}/adir", names=("{out}/adir",), dirs=("{out}/adir",)),
    "convert-output-missing-folder": Case("convert -q {lm} {out}/no/m.arpa", names=("{out}/no/m.arpa",),
                                          outputs=("{out}/no",)),
    "convert-output-unwritable": Case("convert -q {arpa} {ro}/m.lm", names=("{ro}/m.lm",), outputs=("{ro}/m.lm",),
                                      needs="ro"),
    "convert-input-is-directory": Case("convert -q {dir} {out}/m.lm", names=("{dir}",), outputs=("{out}/m.lm",)),
    "convert-input-missing": Case("convert -q {missing} {out}/m.lm", names=("{missing}",), outputs=("{out}/m.lm",)),
    "convert-text-is-not-arpa": Case("convert -q {corpus} {out}/m.lm", names=("{corpus}",), outputs=("{out}/m.lm",)),
    "convert-empty": Case("convert -q {empty} {out}/m.lm", names=("{empty}",), outputs=("{out}/m.lm",)),
})

# An output that is also an input, or named twice: refused before anything is read or written.
CASES.update({
    "count-output-is-the-corpus": Case("count -q {out}/c.txt -o {out}/c.txt", names=("{out}/c.txt", "input"),
                                       existing=("{out}/c.txt",)),
    "count-output-is-the-corpus-by-another-name": Case("count -q {out}/c.txt -o {out}/./c.txt",
                                                       names=("{out}/./c.txt", "input"), existing=("{out}/c.txt",)),
    "count-arpa-is-the-vocab-file": Case("count -q {corpus} --vocab {out}/v.txt -o {out}/m.lm --arpa {out}/v.txt",
                                         names=("{out}/v.txt", "input"), existing=("{out}/v.txt",),
                                         outputs=("{out}/m.lm",)),
    "count-arpa-is-the-model": Case("count -q {corpus} -o {out}/m.lm --arpa {out}/m.lm", names=("{out}/m.lm", "twice"),
                                    outputs=("{out}/m.lm",)),
    "train-output-is-the-corpus": Case("train -q {out}/c.txt -o {out}/c.txt", names=("{out}/c.txt", "input"),
                                       existing=("{out}/c.txt",)),
    "train-log-is-the-valid-file": Case("train -q {corpus} --valid {out}/v.txt --log {out}/v.txt -o {out}/m.lm",
                                        names=("{out}/v.txt", "input"), existing=("{out}/v.txt",),
                                        outputs=("{out}/m.lm",)),
    "train-plot-is-the-model": Case("train -q {corpus} -o {out}/m.lm --plot {out}/m.lm", names=("{out}/m.lm", "twice"),
                                    existing=("{out}/m.lm",)),
    "convert-target-is-the-source": Case("convert -q {out}/m.arpa {out}/m.arpa", names=("{out}/m.arpa", "input"),
                                         existing=("{out}/m.arpa",)),
})

# Options that say nothing unless something else is asked for, and values out of range.
CASES.update({
    "train-classes-without-class-softmax": Case("train -q {corpus} -o {out}/m.lm --classes 5", names=("--classes",),
                                                outputs=("{out}/m.lm",)),
    "train-activation-of-an-lstm": Case("train -q {corpus} -o {out}/m.lm --cell lstm --activation relu",
                                        names=("--activation",), outputs=("{out}/m.lm",)),
    "train-activation-of-a-peephole-lstm": Case(
        "train -q {corpus} -o {out}/m.lm --cell lstm-peephole --activation tanh", names=("--activation",),
        outputs=("{out}/m.lm",)),
    "train-identity-init-of-a-coupled-lstm": Case(
        "train -q {corpus} -o {out}/m.lm --cell lstm-coupled --init identity", names=("--init identity",),
        outputs=("{out}/m.lm",)),
    "train-cell-unknown": Case("train -q {corpus} -o {out}/m.lm --cell lstm-peepholes",
                               names=("--cell", "lstm-coupled"), outputs=("{out}/m.lm",), code=2),
    "train-embed-0": Case("train -q {corpus} -o {out}/m.lm --embed 0", names=("--embed",), outputs=("{out}/m.lm",)),
    "train-seed-negative": Case("train -q {corpus} -o {out}/m.lm --seed -1", names=("--seed",),
                                outputs=("{out}/m.lm",)),
    "generate-n-absurd": Case("generate -q {lm} -n 99999999999999999999", names=("-n",)),
    "train-window-0": Case("train -q {corpus} -o {out}/m.lm --cell window --window 0", names=("--window",),
                           outputs=("{out}/m.lm",)),
    "train-window-of-an-lstm": Case("train -q {corpus} -o {out}/m.lm --window 6", names=("--window", "lstm"),
                                    outputs=("{out}/m.lm",)),
    "train-direct-of-a-gru": Case("train -q {corpus} -o {out}/m.lm --cell gru --direct", names=("--direct", "gru"),
                                  outputs=("{out}/m.lm",)),
    "train-window-bptt": Case("train -q {corpus} -o {out}/m.lm --cell window --bptt 20", names=("--bptt",),
                              outputs=("{out}/m.lm",)),
    "train-window-layers": Case("train -q {corpus} -o {out}/m.lm --cell window --layers 2", names=("--layers",),
                                outputs=("{out}/m.lm",)),
    "train-window-activation": Case("train -q {corpus} -o {out}/m.lm --cell window --activation relu",
                                    names=("--activation",), outputs=("{out}/m.lm",)),
    "train-window-tie-direct": Case("train -q {corpus} -o {out}/m.lm --cell window --tie --direct",
                                    names=("--tie", "--direct"), outputs=("{out}/m.lm",)),
    "count-min-count-leaves-no-word": Case("count -q {corpus} --min-count 1000000000 -o {out}/m.lm",
                                           names=("--min-count", "empty"), outputs=("{out}/m.lm",)),
})

# Model files that are missing, damaged, newer or not lmtool's: every kind given to perplexity, and a
# selection to the other commands that read a model (score and generate load it as perplexity does;
# convert takes what is not an lmtool model for ARPA; info reads the header only, by design, so it
# neither checks the data's checksum nor needs the code to run a recurrent model).
MODEL_KINDS = ("m_missing", "m_empty", "m_dir", "m_trunc_half", "m_trunc_16", "m_trunc_header", "m_flip_data",
               "m_flip_header", "m_random", "m_kenlm", "m_arpa", "m_text", "m_recurrent", "m_window",
               "m_header_not_json", "m_header_no_fields")
OTHER_COMMANDS = {
    "score": ("score -q {{{kind}}} {{text}}", ("m_missing", "m_flip_data", "m_recurrent")),
    "generate": ("generate -q {{{kind}}}", ("m_trunc_half", "m_kenlm", "m_recurrent", "m_window")),
    "convert": ("convert -q {{{kind}}} {{out}}/m.arpa", ("m_dir", "m_trunc_half", "m_flip_data", "m_random",
                                                        "m_kenlm", "m_recurrent")),
    "info": ("info {{{kind}}}", ("m_empty", "m_dir", "m_trunc_half", "m_flip_header", "m_random", "m_arpa",
                                  "m_header_not_json")),
}
for kind in MODEL_KINDS:
    CASES[f"perplexity-{kind}"] = Case(f"perplexity -q {{{kind}}} {{text}}", names=(f"{{{kind}}}",))
for command, (template, kinds) in OTHER_COMMANDS.items():
    for kind in kinds:
        outputs = ("{out}/m.arpa",) if command == "convert" else ()
        CASES[f"{command}-{kind}"] = Case(template.format(kind=kind), names=(f"{{{kind}}}",), outputs=outputs)
CASES.update({
    "perplexity-m_newer": Case("perplexity -q {m_newer} {text}", names=("{m_newer}", "{newer_version}",
                                                                         "{format_version}")),
    "convert-m_newer": Case("convert -q {m_newer} {out}/m.arpa", names=("{m_newer}", "{newer_version}"),
                            outputs=("{out}/m.arpa",)),
    "info-m_newer": Case("info {m_newer}", names=("{m_newer}", "{newer_version}")),
    "convert-m_flip_data-existing-output": Case("convert -q {m_flip_data} {out}/m.arpa", names=("{m_flip_data}",),
                                                existing=("{out}/m.arpa",)),
    "perplexity-stupid-backoff": Case("perplexity -q {sb} {text}", names=("{sb}", "stupid-backoff", "score")),
    "perplexity-json-stupid-backoff": Case("perplexity -q --json {sb} {text}", names=("{sb}", "stupid-backoff")),
    # a model through a pipe (``<(cat m.lm)``; here stdin, a pipe): models are memory-mapped
    "score-model-through-a-pipe": Case("score -q /dev/stdin {text}", names=("/dev/stdin", "pipe"), stdin="{lm}"),
    "train-checkpoint-is-an-input": Case("train -q {out}/c.ckpt -o {out}/c --hidden 8 --epochs 1",
                                         names=("{out}/c.ckpt", "input"), existing=("{out}/c.ckpt",),
                                         outputs=("{out}/c",)),
    "score-model-from-stdin": Case("score -q - {text}", names=("-", "stdin", "memory-mapped"), stdin="{lm}"),
})

# Broken ARPA files (and compressed ones) given to convert.
ARPA_KINDS = ("no_data", "no_section_2", "no_end", "truncated", "wrong_count_1", "wrong_count_2",
              "count_line_missing", "prob_not_a_number", "backoff_not_a_number", "prob_nan", "prob_positive",
              "unknown_word", "unigram_twice", "bigram_twice", "text_after_end", "too_many_fields",
              "no_ngrams", "gz_trunc", "gz_corrupt")
for kind in ARPA_KINDS:
    CASES[f"convert-arpa-{kind}"] = Case(f"convert -q {{arpa_{kind}}} {{out}}/m.lm", names=(f"{{arpa_{kind}}}",),
                                         outputs=("{out}/m.lm",))
CASES["convert-arpa-wrong_count_2-existing-output"] = Case(
    "convert -q {arpa_wrong_count_2} {out}/m.lm", names=("{arpa_wrong_count_2}",), existing=("{out}/m.lm",))

# The same errors without -q, stderr not a terminal (a log file, CI): still exactly one line.
CASES.update({
    "noquiet-count-longline": Case("count {longline} -o {out}/m.lm", names=("{longline}",), outputs=("{out}/m.lm",)),
    "noquiet-perplexity-binary": Case("perplexity {lm} {binary}", names=("{binary}",)),
    "noquiet-score-latin1": Case("score {lm} {latin1}", names=("{latin1}",)),
    "noquiet-convert-broken-arpa": Case("convert {arpa_wrong_count_2} {out}/m.lm", names=("{arpa_wrong_count_2}",),
                                        outputs=("{out}/m.lm",)),
})


# --- the bad files -------------------------------------------------------------------------------

VALID_ARPA = """\
\\data\\
ngram 1=6
ngram 2=7

\\1-grams:
-1.0\t<unk>\t0
0\t<s>\t-0.30103
-0.60206\t</s>\t0
-0.60206\ta\t-0.30103
-0.69897\tb\t-0.30103
-0.69897\tc\t-0.30103

\\2-grams:
-0.4\t<s> a
-0.6\t<s> b
-0.5\ta b
-0.5\ta </s>
-0.3\tb c
-0.5\tc </s>
-0.3\tc a

\\end\\
"""


def _broken_arpas():
    good = VALID_ARPA
    body_2 = good.index("\\2-grams:")
    return {
        "no_data": good.replace("\\data\\\n", "", 1),
        "no_section_2": good[:body_2] + "\\end\\\n",
        "no_end": good.replace("\\end\\\n", ""),
        "truncated": good[:len(good) // 2],
        "wrong_count_1": good.replace("ngram 1=6", "ngram 1=5"),
        "wrong_count_2": good.replace("ngram 2=7", "ngram 2=8"),
        "count_line_missing": good.replace("ngram 2=7\n", ""),
        "prob_not_a_number": good.replace("-0.3\tb c", "minus\tb c"),
        "backoff_not_a_number": good.replace("-0.69897\tb\t-0.30103", "-0.69897\tb\tx"),
        "prob_nan": good.replace("-0.3\tb c", "nan\tb c"),
        "prob_positive": good.replace("-0.3\tb c", "0.5\tb c"),
        "unknown_word": good.replace("-0.3\tb c", "-0.3\tb zebra"),
        "unigram_twice": good.replace("-0.69897\tc\t", "-0.69897\tb\t"),
        "bigram_twice": good.replace("-0.3\tb c", "-0.3\tc a"),
        "text_after_end": good + "trailing text\n",
        "too_many_fields": good.replace("-0.3\tb c", "-0.3\tb c a b"),
        "no_ngrams": "\\data\\\nngram 1=0\n\n\\1-grams:\n\n\\end\\\n",
    }


def _flip(data, at):
    data = bytearray(data)
    data[at] ^= 0xFF
    return bytes(data)


def _with_header(magic, version, header):
    """A file with lmtool's magic and a header whose checksum is right but whose content is not."""
    return magic + struct.pack("<III", version, len(header), zlib.crc32(header)) + header


def _unwritable_folder(base):
    """A folder this process cannot create files in; root bypasses permissions, so try /sys then."""
    if os.geteuid() != 0:
        folder = base / "read-only"
        folder.mkdir()
        folder.chmod(0o555)
        return folder
    for candidate in ("/sys", "/proc"):
        probe = os.path.join(candidate, ".lmtool-write-probe")
        try:
            fd = os.open(probe, os.O_CREAT | os.O_WRONLY | os.O_EXCL, 0o600)
        except OSError:
            return Path(candidate)
        os.close(fd)
        os.unlink(probe)
    return None


@pytest.fixture(scope="module")
def paths(tmp_path_factory, tiny_model):
    """Every bad input the cases name, by template key."""
    base = tmp_path_factory.mktemp("bad-input")
    p = {"corpus": TINY_TRAIN, "text": TINY_TEST, "lm": tiny_model.lm, "arpa": tiny_model.arpa}

    def put(key, name, data):
        path = base / name
        path.write_bytes(data)
        p[key] = path

    sample = TINY_TEST.read_bytes()
    p["missing"] = base / "no-such-file.txt"
    put("empty", "empty.txt", b"")
    put("blank", "blank-lines.txt", b"\n\n  \n\n")
    put("binary", "binary.bin", b"\x7fELF\x02\x01\x01\x00" + random.Random(1).randbytes(4096))
    put("latin1", "latin1.txt", sample[:3000].rsplit(b"\n", 1)[0] + "\ncaf\u00e9 au lait\n".encode("latin-1"))
    put("longline", "long-line.txt", b"a short first line\n" + b"w " * 500_000 + b"\n")
    p["dir"] = base / "a-directory"
    p["dir"].mkdir()
    put("gz_empty", "empty.txt.gz", gzip.compress(b"", mtime=0))
    for ext, compress in (("gz", lambda d: gzip.compress(d, mtime=0)), ("bz2", bz2.compress), ("xz", lzma.compress)):
        packed = compress(sample)
        put(f"{ext}_trunc", f"truncated.txt.{ext}", packed[:len(packed) // 2])
        put(f"{ext}_corrupt", f"corrupt.txt.{ext}", _flip(packed, len(packed) // 2))

    model = tiny_model.lm.read_bytes()
    magic, version = model[:8], struct.unpack("<I", model[8:12])[0]
    from lmtool.modelfile import FORMAT_VERSION  # the newest read; files are written as old as they can be

    p["format_version"], p["newer_version"] = FORMAT_VERSION, FORMAT_VERSION + 1
    p["m_missing"] = base / "no-such-model.lm"
    put("m_empty", "empty.lm", b"")
    p["m_dir"] = p["dir"]
    put("m_trunc_half", "truncated-half.lm", model[:len(model) // 2])
    put("m_trunc_16", "truncated-16.lm", model[:16])
    put("m_trunc_header", "truncated-header.lm", model[:200])
    put("m_flip_data", "flipped-data.lm", _flip(model, len(model) // 2))
    put("m_flip_header", "flipped-header.lm", _flip(model, 40))
    put("m_newer", "newer.lm", model[:8] + struct.pack("<I", FORMAT_VERSION + 1) + model[12:])
    put("m_random", "random.bin", random.Random(2).randbytes(8192))
    put("m_kenlm", "kenlm.binary", b"mmap lm http://kheafield.com/code format version 5\n\x00" + bytes(4096))
    p["m_arpa"] = tiny_model.arpa
    p["m_text"] = TINY_TRAIN
    put("m_header_not_json", "header-not-json.lm", _with_header(magic, version, b"this is not JSON"))
    put("m_header_no_fields", "header-no-fields.lm", _with_header(magic, version, b'{"kind": "ngram"}'))
    # A well-formed container of the other kind, holding nothing a recurrent model needs.
    import numpy as np
    from lmtool import modelfile

    p["m_recurrent"] = base / "recurrent.lm"
    modelfile.write(p["m_recurrent"], "recurrent", {"cell": "lstm"}, {"w": np.zeros(16, np.float32)})
    p["m_window"] = base / "window.lm"
    modelfile.write(p["m_window"], "window", {"config": {"window": 4}}, {"w": np.zeros(16, np.float32)})

    for kind, text in _broken_arpas().items():
        put(f"arpa_{kind}", f"{kind}.arpa", text.encode())
    packed = gzip.compress(VALID_ARPA.encode(), mtime=0)
    put("arpa_gz_trunc", "truncated.arpa.gz", packed[:len(packed) // 2])
    put("arpa_gz_corrupt", "corrupt.arpa.gz", _flip(packed, len(packed) // 2))
    put("arpa_valid", "valid.arpa", VALID_ARPA.encode())

    sb = base / "stupid-backoff.lm"
    done = run_lmtool("count", "-q", TINY_TRAIN, "--smoothing", "stupid-backoff", "-o", sb)
    assert done.returncode == 0, done.stderr.decode()
    p["sb"] = sb
    p["ro"] = _unwritable_folder(base)
    p["_base"] = base
    return p


# --- running and checking ------------------------------------------------------------------------

@dataclass
class Outcome:
    command: list
    result: subprocess.CompletedProcess
    out: Path
    expect: dict


def _fill(template, values):
    return template.format(**values)


def _prepare(case_id, case, p):
    out = p["_base"] / "out" / case_id
    out.mkdir(parents=True)
    values = {k: str(v) for k, v in p.items() if v is not None}
    values["out"] = str(out)
    args = [_fill(a, values) for a in case.args.split()]
    existing = {}
    for template in case.existing:
        path = Path(_fill(template, values))
        path.write_bytes(SENTINEL)
        existing[path] = SENTINEL
    for template in case.dirs:
        Path(_fill(template, values)).mkdir()
    stdin = Path(_fill(case.stdin, values)).read_bytes() if case.stdin else None
    expect = {
        "names": [_fill(n, values) for n in case.names],
        "outputs": [Path(_fill(o, values)) for o in case.outputs],
        "existing": existing,
        "dirs": [Path(_fill(d, values)) for d in case.dirs],
        "code": case.code,
    }
    return args, stdin, out, expect


def _runnable(case, paths):
    """Whether this machine has what ``case`` needs (see ``Case.needs``)."""
    return not case.needs or paths.get(case.needs) is not None


def _run_case(prepared):
    """Run a case made ready by ``_prepare``."""
    args, stdin, out, expect = prepared
    return Outcome(["lmtool", *args], run_lmtool(*args, stdin=stdin, cwd=out), out, expect)


@pytest.fixture(scope="module")
def outcomes(request, paths):
    """What happened to each case, by id, each run once in a fresh process.

    A pytest-xdist worker collects every case but is given only some of them, one by one: each of
    its tests runs its own case (``test_bad_input``), the workers side by side. A single process
    runs every selected case itself, so it runs them all here first, at once on a small pool."""
    done = {}
    if hasattr(request.config, "workerinput"):
        return done
    wanted = {item.callspec.params["case_id"] for item in request.session.items
              if getattr(item, "originalname", "") == "test_bad_input" and hasattr(item, "callspec")}
    jobs = {case_id: _prepare(case_id, CASES[case_id], paths)
            for case_id in sorted(wanted, key=lambda c: (not CASES[c].args.startswith("count"), c))  # slow first
            if _runnable(CASES[case_id], paths)}
    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
        done.update(zip(jobs, pool.map(_run_case, jobs.values())))
    return done


def assert_failed_cleanly(outcome, prefix="lmtool: error:"):
    """The standard: exit status, one stderr line naming the file, nothing written or left behind."""
    r, expect = outcome.result, outcome.expect
    err = r.stderr.decode("utf-8", "replace")
    context = f"\n$ {' '.join(outcome.command)}\nexit {r.returncode}\nstderr: {err!r}\nstdout: {r.stdout[:300]!r}"
    assert "Traceback" not in err, "traceback on stderr" + context
    assert r.returncode != 0, "exit status 0" + context
    if expect["code"] is not None:
        assert r.returncode == expect["code"], f"exit status should be {expect['code']}" + context
    # '\r' (a progress bar redrawn) ends a line here too, as on a terminal; blank lines do not count
    # (click moves past the terminal's '^C' with an empty line before 'lmtool: interrupted').
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, f"stderr should be exactly one non-empty line, it has {len(lines)}" + context
    line = lines[0]
    assert line.startswith(prefix), f"stderr should start with {prefix!r}" + context
    for name in expect["names"]:
        if name == "stdin":  # standard input is named '<stdin>' by the corpus reader, '-' as given elsewhere
            assert "stdin" in line or line.startswith(f"{prefix} -:"), "the message should name stdin" + context
        else:
            assert name in line, f"the message should name {name!r}" + context
    assert r.stdout == b"", "nothing should be written to stdout" + context
    for path in expect["outputs"]:
        assert not path.exists(), f"output {path} was created" + context
    for path, data in expect["existing"].items():
        assert path.exists() and path.read_bytes() == data, f"pre-existing {path} was changed" + context
    for path in expect["dirs"]:
        assert path.is_dir() and not os.listdir(path), f"directory {path} was written into" + context
    allowed = {p.name for p in expect["existing"]} | {p.name for p in expect["dirs"]}
    left = sorted(set(os.listdir(outcome.out)) - allowed)
    assert not left, f"files left in the output folder: {left}" + context


@pytest.mark.parametrize("case_id", sorted(CASES))
def test_bad_input(case_id, outcomes, paths):
    case = CASES[case_id]
    if not _runnable(case, paths):
        pytest.skip(f"no {case.needs} folder on this machine (e.g. an unwritable one)")
    if case_id not in outcomes:
        outcomes[case_id] = _run_case(_prepare(case_id, case, paths))
    assert_failed_cleanly(outcomes[case_id])


def test_valid_arpa_control_converts(paths, tmp_path):
    """The broken ARPA files are all edits of this one, which converts, so each fails for its edit."""
    result = run_lmtool("convert", "-q", paths["arpa_valid"], tmp_path / "ok.lm")
    assert result.returncode == 0, result.stderr.decode()
    assert (tmp_path / "ok.lm").exists()


def test_newer_version_file_is_otherwise_intact(paths):
    """The 'newer version' model differs from a good one in the version field only."""
    good, newer = paths["lm"].read_bytes(), paths["m_newer"].read_bytes()
    assert len(good) == len(newer) and good[12:] == newer[12:] and good[:8] == newer[:8]


# --- Ctrl-C --------------------------------------------------------------------------------------

def _interrupt_count(tmp_path, when, extra=(), sig=signal.SIGINT, start=as_in_a_terminal):
    """Start ``lmtool count`` on the KJV training text (``start`` run in the child before exec),
    send ``sig`` at a moment when ``when(proc, out)`` holds (``signal_when``: the process is held
    still between the check and the signal)."""
    out = tmp_path / "out"
    out.mkdir()
    command = [sys.executable, "-m", "lmtool.cli", "count", "-q", *map(str, extra), "-o", str(out / "kjv.lm"),
               "--arpa", str(out / "kjv.arpa")]
    proc = subprocess.Popen(command, cwd=out, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            preexec_fn=start)
    seen = []

    def moment():
        seen[:] = sorted(os.listdir(out))
        return when(proc, out)

    try:
        if not signal_when(proc, moment, sig):
            pytest.fail(f"lmtool count finished (exit {proc.returncode}) before it could be interrupted; "
                        "use a larger input")
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return Outcome(["lmtool", *command[3:], f"# {sig.name} when {seen} were in the folder"],
                   subprocess.CompletedProcess(command, proc.returncode, stdout, stderr), out,
                   {"names": [], "outputs": [out / "kjv.lm", out / "kjv.arpa"], "existing": {}, "dirs": [],
                    "code": None})


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc to see what the process reads")
def test_interrupt_while_reading_leaves_nothing(tmp_path):
    outcome = _interrupt_count(tmp_path, lambda proc, out: has_open(proc.pid, KJV_TRAIN),
                               extra=(KJV_TRAIN, KJV_TRAIN, KJV_TRAIN, "--order", 3))
    assert_failed_cleanly(outcome, prefix="lmtool: interrupted")


def test_interrupt_while_writing_leaves_no_temporary_file(tmp_path):
    outcome = _interrupt_count(tmp_path, lambda proc, out: any(n.startswith(TMP_PREFIX) for n in os.listdir(out)),
                               extra=(KJV_TRAIN, "--order", 3))
    assert_failed_cleanly(outcome, prefix="lmtool: interrupted")
    assert outcome.result.stderr == b"lmtool: interrupted\n"  # one line: no blank one before it (click's)


def test_sigterm_while_writing_leaves_no_temporary_file(tmp_path):
    """``kill``, ``timeout`` and a cancelled CI job send SIGTERM: the same clean end as Ctrl-C."""
    outcome = _interrupt_count(tmp_path, lambda proc, out: any(n.startswith(TMP_PREFIX) for n in os.listdir(out)),
                               extra=(KJV_TRAIN, "--order", 3), sig=signal.SIGTERM)
    assert_failed_cleanly(outcome, prefix="lmtool: interrupted")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_a_background_job_stopped_leaves_no_temporary_file(tmp_path, sig):
    """A shell's background job (``lmtool count ... &`` in a script, then ``kill``) has SIGINT ignored:
    SIGTERM still ends it cleanly, and so does SIGHUP (its terminal closed)."""
    outcome = _interrupt_count(tmp_path, lambda proc, out: any(n.startswith(TMP_PREFIX) for n in os.listdir(out)),
                               extra=(KJV_TRAIN, "--order", 3), sig=sig, start=as_a_background_job)
    assert_failed_cleanly(outcome, prefix="lmtool: interrupted")


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_a_full_stdout_is_one_line(paths, tmp_path):
    with open("/dev/full", "wb") as full:
        r = subprocess.run([sys.executable, "-m", "lmtool.cli", "score", "-q", str(paths["lm"]), str(paths["text"])],
                           stdout=full, stderr=subprocess.PIPE, cwd=tmp_path)
    err = r.stderr.decode()
    assert r.returncode == 1 and err.count("\n") == 1, err
    assert err.startswith("lmtool: error: stdout: cannot write: No space left on device"), err


def _arpa_half_written(proc, out):
    """The ARPA file's staged copy has data (written first) while the model's is still empty."""
    sizes = sorted(os.path.getsize(out / n) for n in os.listdir(out) if n.startswith(TMP_PREFIX))
    return len(sizes) >= 2 and sizes[-1] > 0


def test_interrupt_after_the_arpa_file_leaves_no_output(tmp_path):
    """Ctrl-C once the ARPA file is written but before the model is: neither may appear."""
    outcome = _interrupt_count(tmp_path, _arpa_half_written, extra=(KJV_TRAIN, "--order", 3))
    assert not (tmp_path / "out" / "kjv.arpa").exists()
    assert_failed_cleanly(outcome, prefix="lmtool: interrupted")


def test_model_and_arpa_appear_together(tmp_path):
    result = run_lmtool("count", "-q", TINY_TRAIN, "-o", tmp_path / "m.lm", "--arpa", tmp_path / "m.arpa")
    assert result.returncode == 0, result.stderr.decode()
    assert sorted(os.listdir(tmp_path)) == ["m.arpa", "m.lm"]


_SWALLOWED = """
import os, signal, sys, time
import lmtool.ngram.build as build
from lmtool.ngram.options import CountOptions
from lmtool import interrupts
from lmtool.cli import main


class InterruptInDel:  # SIGINT from __del__: Python reports the KeyboardInterrupt as "ignored" and goes on
    def __del__(self):
        os.kill(os.getpid(), signal.SIGINT)
        for _ in range(10_000):  # the handler runs here, inside __del__
            pass


check = CountOptions.check


def check_then_interrupt(options):
    InterruptInDel()  # dropped at once
    return check(options)


def never_finished(*args, **kwargs):
    time.sleep(10)  # the interrupt, sent again, ends this sleep
    raise AssertionError("count went on after a swallowed Ctrl-C")


CountOptions.check, build.write_ngram_model = check_then_interrupt, never_finished
status = main(sys.argv[1:])
assert not interrupts.received()  # a later command or library call in the process is not refused
sys.exit(status)
"""


def test_a_swallowed_ctrl_c_still_stops_count(tmp_path):
    """What happens when Ctrl-C lands in importlib's module-lock callback while Numba loads."""
    result = subprocess.run([sys.executable, "-c", _SWALLOWED, "count", "-q", str(TINY_TRAIN), "-o",
                             str(tmp_path / "m.lm"), "--arpa", str(tmp_path / "m.arpa")],
                            capture_output=True, timeout=120, preexec_fn=as_in_a_terminal)
    err = result.stderr.decode()
    assert result.returncode == 130, err
    assert [line for line in err.splitlines() if line.strip()] == ["lmtool: interrupted"]
    assert os.listdir(tmp_path) == []  # neither output, no temporary file


def test_a_signal_while_numba_calls_back_into_python_is_raised_after():
    """Compiled Numba code calls back into Python now and then (to unpickle a constant on a kernel's
    first call); a KeyboardInterrupt raised there was lost in its C code, a SystemError or a crash
    (``count`` interrupted 0.8-0.9 s in). The handler sends the signal again instead."""
    from types import SimpleNamespace

    from lmtool import interrupts

    inside = SimpleNamespace(f_code=SimpleNamespace(co_filename=os.path.join(os.sep, "lib", "numba", "core",
                                                                              "serialize.py")))
    outside = SimpleNamespace(f_code=SimpleNamespace(co_filename=__file__))
    previous = signal.signal(signal.SIGINT, interrupts._handler)
    steps = []
    try:
        with pytest.raises(KeyboardInterrupt):
            interrupts._handler(signal.SIGINT, outside)
        try:
            interrupts._handler(signal.SIGINT, inside)
            steps.append("returned")
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                time.sleep(0.001)
            steps.append("never raised")
        except KeyboardInterrupt:
            steps.append("raised after")
    finally:
        signal.signal(signal.SIGINT, previous)
        interrupts._received.clear()  # the handler recorded the signals: later work in this process is not refused
    assert steps == ["returned", "raised after"]


def _closing(fd):
    def close():
        as_in_a_terminal()
        os.close(fd)
    return close


@pytest.mark.parametrize("command, closed, message", [
    ("score", 1, "lmtool: error: stdout: cannot write: it is closed"),
    ("perplexity", 1, "lmtool: error: stdout: cannot write: it is closed"),
    ("score-stdin", 0, "lmtool: error: <stdin>: it is closed"),
])
def test_a_closed_standard_stream_is_one_line(tiny_model, tmp_path, command, closed, message):
    """``>&-`` and ``<&-``: results that cannot go anywhere are an error, not a success printing
    nothing (or a traceback)."""
    name = "perplexity" if command == "perplexity" else "score"
    text = "-" if command == "score-stdin" else TINY_TEST
    done = subprocess.run([sys.executable, "-m", "lmtool.cli", name, "-q", str(tiny_model.lm), str(text)],
                          stdout=None if closed == 1 else subprocess.DEVNULL, stderr=subprocess.PIPE,
                          preexec_fn=_closing(closed), timeout=120, cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr.decode().strip() == message


def test_a_closed_stderr_leaves_the_model_as_it_should_be(tiny_model, tmp_path):
    """``2>&-``: the output's temporary file used to take descriptor 2, so that anything written to
    stderr (a progress bar, a warning) went into the model; and the progress bar failed the run."""
    out = tmp_path / "m.lm"
    done = subprocess.run([sys.executable, "-m", "lmtool.cli", "count", TINY_TRAIN, "--order", "3", "-o", str(out)],
                          stdout=subprocess.PIPE, preexec_fn=_closing(2), timeout=120, cwd=tmp_path)
    assert done.returncode == 0
    assert _same_arrays(out, tiny_model.lm)


def _same_arrays(a, b):
    from lmtool import modelfile

    x, y = modelfile.read(a), modelfile.read(b)
    return x.arrays.keys() == y.arrays.keys() and all(np.array_equal(x.arrays[k], y.arrays[k]) for k in x.arrays)


def test_a_removed_current_folder_is_one_line(tmp_path):
    """A shell left in a folder that was removed: relative paths mean nothing (it said "stdout:
    cannot write: No such file or directory")."""
    gone = tmp_path / "gone"
    gone.mkdir()

    def start():
        as_in_a_terminal()
        os.chdir(gone)
        os.rmdir(gone)

    done = subprocess.run([sys.executable, "-c", "import sys; from lmtool.cli import main; sys.exit(main())",
                           "count", "-q", str(TINY_TRAIN), "-o", "rel.lm"], capture_output=True, preexec_fn=start,
                          timeout=120)
    assert done.returncode == 1
    assert done.stderr.decode() == ("lmtool: error: the current folder no longer exists (it was removed); "
                                    "cd into one that does\n")
