"""Slow, obviously-correct NumPy versions of the recurrent and fixed-window networks, to test kernels against.

Written from the equations, one time step and one token at a time, without sharing code with
``lmtool.kernels`` or ``lmtool.neural``. Weight layouts follow the network's: U: [I, G*H] (x @ U),
W: [H, G*H], gate blocks in PyTorch's order; output weights [V, H] (logits = h @ W.T + b).
"""

import numpy as np


def sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


ACTIVATIONS = {"tanh": np.tanh, "relu": lambda a: np.maximum(a, 0.0), "sigmoid": sigmoid}


def _start(h, reset_t):
    """The state entering a step: zero for the rows flagged by reset_t."""
    return np.where(reset_t[:, None], 0.0, h).astype(h.dtype)


def rnn_layer(x, p, h0, reset, activation="tanh"):
    """h_t = f(x_t U + h_{t-1} W + b). Returns hs: [T, B, H] and the final state (h,)."""
    f = ACTIVATIONS[activation]
    h = h0
    out = []
    for t in range(x.shape[0]):
        h = f(x[t] @ p["U"] + _start(h, reset[t]) @ p["W"] + p["b"])
        out.append(h)
    return np.stack(out), (h,)


def lstm_layer(x, p, h0, c0, reset):
    """PyTorch's LSTM with one summed bias. Returns hs: [T, B, H] and the final state (h, c)."""
    H = h0.shape[1]
    h, c = h0, c0
    out = []
    for t in range(x.shape[0]):
        h, c = _start(h, reset[t]), _start(c, reset[t])
        a = x[t] @ p["U"] + h @ p["W"] + p["b"]
        i, f, g, o = (a[:, k * H:(k + 1) * H] for k in range(4))
        c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
        h = sigmoid(o) * np.tanh(c)
        out.append(h)
    return np.stack(out), (h, c)


def lstm_peephole_layer(x, p, h0, c0, reset):
    """Peephole LSTM (Gers & Schmidhuber 2000): i and f also see c_{t-1}, o sees c_t, through the
    diagonal weights p["peep"] = (p_i, p_f, p_o). Returns hs: [T, B, H] and the final state (h, c)."""
    H = h0.shape[1]
    p_i, p_f, p_o = (p["peep"][k * H:(k + 1) * H] for k in range(3))
    h, c = h0, c0
    out = []
    for t in range(x.shape[0]):
        h, c = _start(h, reset[t]), _start(c, reset[t])
        a = x[t] @ p["U"] + h @ p["W"] + p["b"]
        i, f, g, o = (a[:, k * H:(k + 1) * H] for k in range(4))
        c = sigmoid(f + p_f * c) * c + sigmoid(i + p_i * c) * np.tanh(g)
        h = sigmoid(o + p_o * c) * np.tanh(c)
        out.append(h)
    return np.stack(out), (h, c)


def lstm_coupled_layer(x, p, h0, c0, reset):
    """LSTM with coupled input and forget gates, blocks (f, g, o): c_t = f c_{t-1} + (1 - f) g.
    Returns hs: [T, B, H] and the final state (h, c)."""
    H = h0.shape[1]
    h, c = h0, c0
    out = []
    for t in range(x.shape[0]):
        h, c = _start(h, reset[t]), _start(c, reset[t])
        a = x[t] @ p["U"] + h @ p["W"] + p["b"]
        f, g, o = (a[:, k * H:(k + 1) * H] for k in range(3))
        f = sigmoid(f)
        c = f * c + (1 - f) * np.tanh(g)
        h = sigmoid(o) * np.tanh(c)
        out.append(h)
    return np.stack(out), (h, c)


def gru_layer(x, p, h0, reset):
    """PyTorch's GRU: bias b = (b_ir + b_hr, b_iz + b_hz, b_in), bn = b_hn. Returns hs and (h,)."""
    H = h0.shape[1]
    h = h0
    out = []
    for t in range(x.shape[0]):
        h = _start(h, reset[t])
        gi = x[t] @ p["U"] + p["b"]
        gh = h @ p["W"]
        r = sigmoid(gi[:, :H] + gh[:, :H])
        z = sigmoid(gi[:, H:2 * H] + gh[:, H:2 * H])
        n = np.tanh(gi[:, 2 * H:] + r * (gh[:, 2 * H:] + p["bn"]))
        h = (1 - z) * n + z * h
        out.append(h)
    return np.stack(out), (h,)


LAYERS = {"lstm": lambda x, p, state, reset, activation: lstm_layer(x, p, *state, reset),
          "lstm-peephole": lambda x, p, state, reset, activation: lstm_peephole_layer(x, p, *state, reset),
          "lstm-coupled": lambda x, p, state, reset, activation: lstm_coupled_layer(x, p, *state, reset),
          "gru": lambda x, p, state, reset, activation: gru_layer(x, p, state[0], reset),
          "rnn": lambda x, p, state, reset, activation: rnn_layer(x, p, state[0], reset, activation)}
"""The reference layer of each cell by its registry name: (x, p, state tuple, reset, activation) -> (hs, state)."""


def log_softmax(z):
    m = z.max()
    return z - m - np.log(np.sum(np.exp(z - m)))


def network_log_probs(params, cell, layers, x, y, state, reset, masks=None, activation="tanh",
                      classes=None):
    """Natural-log probabilities of the targets y: [T, B] (0 where y < 0), and the final state.

    params: {name: array} in the network's naming; state: list per layer of tuples (h,) or (h, c);
    masks: None or list of L+1 dropout masks (embedding output, then each layer's output);
    classes: None (full softmax) or (rank: int[V] word -> row, start: int[C+1]) for class softmax.
    Input ids < 0 give a zero input vector.
    """
    T, B = x.shape
    emb = params["embed"]
    rank = classes[0] if classes is not None else np.arange(emb.shape[0])
    inp = np.stack([np.stack([emb[rank[i]] if i >= 0 else np.zeros(emb.shape[1], emb.dtype)
                              for i in row]) for row in x])
    if masks is not None:
        inp = inp * masks[0]
    final = []
    for l in range(layers):
        p = {k.split(".", 1)[1]: v for k, v in params.items() if k.startswith(f"layer{l}.")}
        inp, st = LAYERS[cell](inp, p, state[l], reset, activation)
        final.append(st)
        if masks is not None:
            inp = inp * masks[l + 1]
    out = np.zeros((T, B), dtype=np.float64)
    for t in range(T):
        for b in range(B):
            if y[t, b] >= 0:
                out[t, b] = output_log_prob(params, inp[t, b].astype(np.float64), y[t, b], classes)
    return out, final


def output_log_prob(params, h, y, classes=None):
    """log p(y | h) of the output layer: softmax(W h + b) over all words, or with ``classes``
    (rank, start) p(class | h) p(y | class, h). W is ``output.W``, else the tied embedding."""
    W = params.get("output.W", params["embed"])
    if classes is None:
        return log_softmax(W @ h + params["output.b"])[y]
    rank, start = classes
    w = rank[y]
    c = np.searchsorted(start, w, side="right") - 1
    lc = log_softmax(params["output.Wc"] @ h + params["output.bc"])[c]
    s, e = start[c], start[c + 1]
    return lc + log_softmax(W[s:e] @ h + params["output.b"][s:e])[w - s]


def window_log_probs(params, ctx, y, direct=False, masks=None, classes=None):
    """Natural-log probabilities of the targets y: [B] (0 where y < 0) after the windows ctx: [B, N]
    of word ids, by the fixed-window model (Bengio et al. 2003), one window at a time:
        x = [C(w_1), .., C(w_N)];  h = tanh(x U + b);  log softmax over W [h] (or W [h, x]: direct)
    params: {name: array} in the network's naming (``hidden.U``, ``hidden.b``); masks: None or
    (float[B, N*E] for x, float[B, H] for h) dropout masks; classes: as ``network_log_probs``."""
    emb = params["embed"]
    rank = classes[0] if classes is not None else np.arange(emb.shape[0])
    out = np.zeros(len(y), dtype=np.float64)
    for i, words in enumerate(ctx):
        if y[i] < 0:
            continue
        x = np.concatenate([emb[rank[w]] for w in words]).astype(np.float64)
        if masks is not None:
            x = x * masks[0][i]
        h = np.tanh(x @ params["hidden.U"] + params["hidden.b"])
        if masks is not None:
            h = h * masks[1][i]
        out[i] = output_log_prob(params, np.concatenate([h, x]) if direct else h, y[i], classes)
    return out
