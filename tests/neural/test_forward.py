"""The recurrent network's NumPy forward pass (``lmtool.neural.forward``) against the kernels: every
cell and output layer, scores and next-token distributions within float32 rounding."""

import numpy as np
import pytest

from lmtool.neural.classes import make_classes
from lmtool.neural.config import NetworkConfig
from lmtool.neural.forward import CELLS
from lmtool.neural.model import RecurrentModel
from lmtool.vocab import Vocabulary

V = 70
VOCAB = Vocabulary(["<unk>", "<s>", "</s>"] + [f"w{i}" for i in range(V - 3)])
CONFIGS = [dict(cell="lstm"), dict(cell="gru"), dict(cell="rnn", activation="tanh"),
           dict(cell="rnn", activation="relu"), dict(cell="rnn", activation="sigmoid"),
           dict(cell="lstm", softmax="class"), dict(cell="gru", softmax="class"), dict(cell="lstm", tie=True, embed=16),
           dict(cell="gru", layers=1, softmax="class", tie=True, embed=16), dict(cell="lstm-peephole"),
           dict(cell="lstm-coupled"), dict(cell="lstm-peephole", layers=1, softmax="class")]


def random_model(seed, **fields):
    rng = np.random.default_rng(seed)
    classes = make_classes(rng.integers(1, 500, V), 8) if fields.get("softmax") == "class" else None
    config = NetworkConfig(**dict(dict(vocab_size=V, hidden=16, embed=12, layers=2,
                                       n_classes=classes.n_classes if classes else 0), **fields))
    model = RecurrentModel.create(VOCAB, config, classes, seed=seed)
    model.params[:] = rng.normal(0, 0.6, model.params.shape)  # larger than the initial weights: saturating gates
    return model


@pytest.mark.parametrize("fields", CONFIGS, ids=lambda f: "-".join(f"{k}={v}" for k, v in f.items()))
def test_scores_agree_with_the_kernels(fields):
    model = random_model(1, **fields)
    rng = np.random.default_rng(2)
    lengths = rng.integers(0, 12, 90).astype(np.int32)
    ids = rng.integers(0, V, int(lengths.sum())).astype(np.int32)
    numpy_path = model.score_ids_numpy(ids, lengths)
    compiled = model.score_ids_compiled(ids, lengths)
    np.testing.assert_allclose(numpy_path.token, compiled.token, atol=2e-5, rtol=1e-5)
    np.testing.assert_allclose(numpy_path.sentence, compiled.sentence, atol=1e-4, rtol=1e-5)


@pytest.mark.parametrize("fields", CONFIGS, ids=lambda f: "-".join(f"{k}={v}" for k, v in f.items()))
def test_steps_and_distributions_agree_with_the_kernels(fields):
    model = random_model(3, **fields)
    rng = np.random.default_rng(4)
    numpy_state, kernel_state = model.forward.init_state(4), model.network.init_state(4)
    for tokens in rng.integers(0, V, (5, 4)).astype(np.int32):
        numpy_state = model.forward.step(tokens, numpy_state)
        kernel_state = model.network.step(tokens, kernel_state)
        np.testing.assert_allclose(numpy_state.h, kernel_state.h, atol=2e-6)
        a, b = model.forward.next_distribution(numpy_state), model.network.next_distribution(kernel_state)
        np.testing.assert_allclose(a, b, atol=2e-6, rtol=1e-5)
        np.testing.assert_allclose(a.sum(axis=1), 1, atol=1e-5)


def test_cells_lay_out_their_weights_as_the_kernels_do():
    from lmtool.neural.choices import CELLS as KERNEL_CELLS

    for name, cell in CELLS.items():
        assert cell.param_shapes(12, 16) == KERNEL_CELLS[name].param_shapes(12, 16)
        assert cell.STATE == KERNEL_CELLS[name].STATE


def test_the_path_depends_on_the_batch_alone(tmp_path):
    """Small batches take the NumPy pass whatever ran before, large ones the kernels."""
    from lmtool.compiled import RECURRENT_NUMPY_TOKENS

    import lmtool

    path = tmp_path / "m.lm"
    random_model(5).save(path)
    model = lmtool.load(path)
    few, many = np.zeros(RECURRENT_NUMPY_TOKENS - 1, np.int32), np.zeros(RECURRENT_NUMPY_TOKENS, np.int32)
    assert model.numpy_pays(few, np.array([len(few)])) and not model.numpy_pays(many, np.array([len(many)]))
    one = model.score("w1 w2 w3")
    model.score_ids_compiled(np.array([3, 4], np.int32), np.array([2], np.int32))  # the kernels loaded now
    assert model.score("w1 w2 w3") == one


WINDOW_CONFIGS = [dict(), dict(direct=True), dict(softmax="class"), dict(softmax="class", direct=True),
                  dict(tie=True, embed=16, window=2)]


def random_window_model(seed, **fields):
    from lmtool.neural.window_config import WindowConfig
    from lmtool.neural.window_model import WindowModel

    rng = np.random.default_rng(seed)
    classes = make_classes(rng.integers(1, 500, V), 8) if fields.get("softmax") == "class" else None
    config = WindowConfig(**dict(dict(vocab_size=V, window=3, hidden=16, embed=12,
                                      n_classes=classes.n_classes if classes else 0), **fields))
    model = WindowModel.create(VOCAB, config, classes, seed=seed)
    model.params[:] = rng.normal(0, 0.6, model.params.shape)
    return model


@pytest.mark.parametrize("fields", WINDOW_CONFIGS, ids=lambda f: "-".join(f"{k}={v}" for k, v in f.items()) or "plain")
def test_window_scores_and_distributions_agree_with_the_kernels(fields):
    from lmtool.kernels.window import contexts
    from lmtool.neural.forward import window_contexts
    from lmtool.neural.window_config import windowed

    model = random_window_model(6, **fields)
    rng = np.random.default_rng(7)
    lengths = rng.integers(0, 9, 60).astype(np.int32)
    ids = rng.integers(0, V, int(lengths.sum())).astype(np.int32)
    x, _, offset = windowed(ids, lengths)
    rows = np.arange(len(x))
    assert window_contexts(x, offset, rows, 3, 1).tolist() == contexts(x, offset, rows, 3, 1).tolist()
    numpy_path, compiled = model.score_ids_numpy(ids, lengths), model.score_ids_compiled(ids, lengths)
    np.testing.assert_allclose(numpy_path.token, compiled.token, atol=2e-5, rtol=1e-5)
    np.testing.assert_allclose(numpy_path.sentence, compiled.sentence, atol=1e-4, rtol=1e-5)
    state = model.begin([ids[:2], ids[:0], ids[2:7]])
    a, b = model.forward.next_distribution(state), model.network.next_distribution(state)
    np.testing.assert_allclose(a, b, atol=2e-6, rtol=1e-5)
    np.testing.assert_allclose(a.sum(axis=1), 1, atol=1e-5)
