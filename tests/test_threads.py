"""--threads: scoring on N threads prints what one thread prints; data-parallel training is
deterministic and matches the one-thread gradient; bad values are refused; the synthetic-corpus
sampler is exact and gives the same bytes for a seed whatever the thread count."""

import copy
import runpy

import numpy as np
import pytest
from click.testing import CliRunner

import lmtool
from lmtool.cli import cli, main
from lmtool.neural.classes import make_classes
from lmtool.neural.config import NetworkConfig
from lmtool.neural.network import RecurrentNetwork
from lmtool.neural.optimizer import Optimizer
from lmtool.neural.parallel import DataParallel
from lmtool.neural.options import TrainOptions
from lmtool.neural.pipeline import run_training
from lmtool.scoring import format_scores, score_chunks

from .conftest import KJV_TRAIN, ROOT, TINY_TEST, TINY_TRAIN


def lmtool_out(*args):
    result = CliRunner().invoke(cli, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.fixture(scope="module")
def recurrent_model(tmp_path_factory):
    path = tmp_path_factory.mktemp("rnn") / "r.lm"
    run_training(TrainOptions(corpus=[str(TINY_TRAIN)], output=str(path), hidden=16, embed=16, epochs=1, batch=8,
                              bptt=12, softmax="class", seed=1))
    return path


def scored_text(model, threads, per_token):
    lm = lmtool.load(model)
    return "".join(format_scores(lm, chunk, per_token=per_token)
                   for chunk in score_chunks(lm, [str(TINY_TEST)], chunk_bytes=2048, threads=threads))


@pytest.mark.parametrize("kind", ["ngram", "recurrent"])
def test_scoring_chunks_on_threads_gives_identical_output(kind, tiny_model, recurrent_model):
    model = tiny_model.lm if kind == "ngram" else recurrent_model
    one = scored_text(model, 1, per_token=True)
    assert one.count("\n") == len(TINY_TEST.read_text().splitlines())
    assert scored_text(model, 2, per_token=True) == one
    assert scored_text(model, 3, per_token=False) == scored_text(model, 1, per_token=False)


def test_score_and_perplexity_commands_with_threads(tiny_model, recurrent_model):
    for model, text in ((tiny_model.lm, KJV_TRAIN), (recurrent_model, TINY_TEST)):
        for command in (["score"], ["perplexity", "--json"]):
            one = lmtool_out(*command, model, text, "--threads", 1)
            assert lmtool_out(*command, model, text, "--threads", 2) == one


@pytest.mark.parametrize("args", [
    ["score", "{model}", "{text}", "--threads", "0"],
    ["perplexity", "{model}", "{text}", "--threads", "-2"],
    ["score", "{model}", "{text}", "--threads", "1025"],
    ["train", "{text}", "-o", "{out}", "--threads", "0"],
    ["train", "{text}", "-o", "{out}", "--threads", "5000"],
])
def test_bad_thread_counts_are_refused_with_one_line(args, tiny_model, tmp_path, capsys):
    argv = [a.format(model=tiny_model.lm, text=TINY_TEST, out=tmp_path / "m.lm") for a in args]
    assert main(argv) != 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("lmtool: error: --threads"), err


def network(kw):
    V = 40
    classes = make_classes(np.arange(V, 0, -1)) if kw.get("softmax") == "class" else None
    config = NetworkConfig(vocab_size=V, embed=12, hidden=12, dtype="float64",
                           n_classes=classes.n_classes if classes else 0, **kw)
    return RecurrentNetwork(config, classes, seed=2)


@pytest.mark.parametrize("kw", [dict(cell="lstm", layers=2, dropout=0.3), dict(cell="gru", softmax="class"),
                                dict(cell="rnn", tie=True, dropout=0.2),
                                dict(cell="lstm-peephole", layers=2, dropout=0.3, softmax="class"),
                                dict(cell="lstm-coupled", layers=2, tie=True)])
def test_sharded_gradient_equals_the_whole_batch_gradient(kw):
    net = network(kw)
    rng = np.random.default_rng(0)
    T, B = 6, 7
    x = rng.integers(0, 40, (T, B)).astype(np.int32)
    y = rng.integers(0, 40, (T, B)).astype(np.int32)
    y[2, 4] = -1
    reset = rng.random((T, B)) < 0.2
    state = net.init_state(B)
    state.h[:] = rng.normal(size=state.h.shape)
    if state.c is not None:
        state.c[:] = rng.normal(size=state.c.shape)
    drop1 = np.random.Generator(np.random.PCG64(5))
    drop2 = copy.deepcopy(drop1)
    loss1, n1, after1 = net.forward_backward(x, y, state.copy(), drop1, reset=reset)
    grad1 = net.grad.copy()
    parallel = DataParallel(net, B, 3)
    try:
        loss2, n2, after2 = parallel.forward_backward(x, y, state.copy(), drop2, reset=reset)
        assert parallel.grad_norm == pytest.approx(np.linalg.norm(net.grad), rel=1e-12)
        stepped = net.params.copy()
        Optimizer("sgd", net.params.size).step(stepped, net.grad, 20.0, 0.5, support=net.grad_support)
        Optimizer("sgd", net.params.size).step(net.params, net.grad, 20.0, 0.5, map_spans=parallel.map_spans,
                                               support=net.grad_support)  # each thread its part of the support
        np.testing.assert_array_equal(net.params, stepped)
    finally:
        parallel.close()
    assert n1 == n2 and loss2 == pytest.approx(loss1, rel=1e-12)
    np.testing.assert_allclose(net.grad, grad1, rtol=0, atol=1e-12 * np.abs(grad1).max())
    np.testing.assert_array_equal(after1.h, after2.h)
    assert drop1.random() == drop2.random()  # the same dropout draws were consumed


@pytest.mark.parametrize("kw", [dict(cell="gru", softmax="class"), dict(cell="lstm", softmax="class", layers=2,
                                                                           dropout=0.3), dict(cell="lstm")])
def test_sharded_deferred_gradient_gives_the_whole_batch_norm_and_step(kw):
    """With ``defer_output`` the shards' output-weight gradients (class softmax: factors; full:
    transposed) are joined, normed and applied on the threads: the same norm and SGD step as the
    whole batch's written gradient."""
    net, whole = network(kw), network(kw)
    rng = np.random.default_rng(1)
    T, B = 6, 7
    x = rng.integers(0, 40, (T, B)).astype(np.int32)
    y = rng.integers(0, 40, (T, B)).astype(np.int32)
    y[2, 4] = -1
    whole.forward_backward(x, y, whole.init_state(B), np.random.default_rng(5))
    norm = np.linalg.norm(whole.grad)
    Optimizer("sgd", whole.params.size).step(whole.params, whole.grad, 20.0, 0.5)
    parallel = DataParallel(net, B, 3)
    try:
        parallel.forward_backward(x, y, net.init_state(B), np.random.default_rng(5), defer_output=True)
        assert net.deferred is not None and all(n.deferred is None for n in parallel.nets[1:])
        assert parallel.grad_norm == pytest.approx(norm, rel=1e-12)
        Optimizer("sgd", net.params.size).step(net.params, net.grad, 20.0, 0.5, map_spans=parallel.map_spans,
                                               support=net.grad_support)
        parallel.apply_deferred(20.0 * 0.5)
        assert net.deferred is None
    finally:
        parallel.close()
    np.testing.assert_allclose(net.params, whole.params, rtol=0, atol=1e-12)


@pytest.mark.parametrize("kw", [dict(optimizer="adam"), dict(optimizer="sgd", lr=5.0),
                                dict(softmax="class", optimizer="sgd", lr=5.0),
                                dict(cell="lstm-peephole", softmax="class", optimizer="sgd", lr=5.0),
                                dict(cell="lstm-coupled", optimizer="adam")],
                         ids=["full-adam", "full-sgd", "class-sgd", "peephole-class-sgd", "coupled-full-adam"])
# (SGD at lr 20 makes float sums' order visible)
def test_training_on_two_threads_is_deterministic_and_close_to_one(kw, tmp_path):
    def train(name, threads):
        run_training(TrainOptions(corpus=[str(TINY_TRAIN)], output=str(tmp_path / name), valid=str(TINY_TEST),
                                  hidden=16, embed=16, epochs=1, batch=8, bptt=12, dropout=0.1, seed=3,
                                  threads=threads, **kw))
        return lmtool.load(tmp_path / name)

    one, two = train("one.lm", 1), train("two.lm", 2)
    train("again.lm", 2)
    assert (tmp_path / "two.lm").read_bytes() == (tmp_path / "again.lm").read_bytes()
    assert two.meta["training"]["threads"] == 2 and "threads" not in one.meta["training"]
    ppl1, ppl2 = one.meta["history"][0]["valid_ppl"], two.meta["history"][0]["valid_ppl"]
    assert ppl2 == pytest.approx(ppl1, rel=0.01)


@pytest.fixture(scope="module")
def make_corpus():
    return runpy.run_path(str(ROOT / "bench" / "make_corpus.py"), run_name="make_corpus")


def test_make_corpus_same_seed_same_bytes_on_any_thread_count(make_corpus, tiny_model):
    model = lmtool.load(tiny_model.lm)

    def text(seed, threads):
        blocks = list(make_corpus["generate"](model, 20000, seed=seed, threads=threads))
        assert sum(n for _, n in blocks) >= 20000
        return b"".join(t for t, _ in blocks)

    one = text(1, 1)
    assert text(1, 3) == one and text(2, 1) != one
    words = one.split()
    assert 20000 <= len(words) < 20000 + 200 and b"<unk>" not in words
    assert make_corpus["parse_tokens"]("200M") == 200_000_000 and make_corpus["parse_tokens"]("10k") == 10_000


def test_sampler_draws_from_the_model_distribution(tiny_model):
    from lmtool.ngram.sampler import NgramSampler
    from lmtool.vocab import EOS, UNK

    model = lmtool.load(tiny_model.lm)
    ids, lengths = NgramSampler(model, max_len=2, block=200000).ids(seed=7, index=0)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])

    def distance(tokens, context):
        counts = np.bincount(tokens, minlength=len(model.vocab)).astype(float)
        expected = model.next_token_probs(context)
        expected[UNK] = 0
        return 0.5 * np.abs(counts / counts.sum() - expected / expected.sum()).sum()

    first = np.where(lengths > 0, ids[np.minimum(starts, len(ids) - 1)], EOS)  # no word: </s> came first
    assert distance(first, "") < 0.02
    top = np.bincount(first).argmax()
    after = (lengths > 0) & (first == top)
    second = np.where(lengths[after] > 1, ids[np.minimum(starts[after] + 1, len(ids) - 1)], EOS)
    assert distance(second, model.vocab.tokens[top]) < 0.03
