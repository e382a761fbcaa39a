"""The fixed-window neural LM (Bengio et al. 2003) in PyTorch, the same model as ``lmtool train --cell window``.

nn.Embedding(V, E) -> the N previous words' vectors concatenated -> nn.Linear(N*E, H) -> tanh ->
nn.Linear(H [+ N*E with --direct], V) -> log-softmax, NLL loss averaged over a minibatch of windows
drawn in a shuffled order; gradient-norm clipping, then SGD or Adam (``torch.optim``). Windows are
cut as lmtool cuts them: every target of a sentence (``</s>`` included) with ``<s>`` before the
sentence start. ``bench/bench_window.py`` imports ``WindowLM`` and ``trainer`` to time a training
step side by side with lmtool's; run alone, this script trains for a budget and prints test perplexity:

    taskset -c 1 python bench/torch_window_lm.py --window 4 --budget 60 [--optimizer adam] [--direct]
"""

import argparse
import math
import os
import time

import numpy as np
import torch
import torch.nn as nn

KJV = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "corpora", "kjv")


class WindowLM(nn.Module):
    """log p(w | window): int64[B, N] windows -> float[B, V]."""

    def __init__(self, V, window, embed, hidden, direct=False, dropout=0.0, init_range=0.1):
        super().__init__()
        self.window, self.direct = window, direct
        self.embed = nn.Embedding(V, embed)
        self.hidden = nn.Linear(window * embed, hidden)
        self.out = nn.Linear(hidden + (window * embed if direct else 0), V)
        self.drop = nn.Dropout(dropout)
        nn.init.uniform_(self.embed.weight, -init_range, init_range)
        nn.init.uniform_(self.out.weight, -init_range, init_range)
        nn.init.zeros_(self.out.bias)

    def forward(self, ctx):
        x = self.drop(self.embed(ctx).view(ctx.shape[0], -1))  # [B, N*E]
        h = self.drop(torch.tanh(self.hidden(x)))  # [B, H]
        return torch.log_softmax(self.out(torch.cat([h, x], 1) if self.direct else h), dim=-1)  # [B, V]


def trainer(V, window=4, embed=200, hidden=200, direct=False, optimizer="sgd", lr=None, clip=0.25, seed=1111):
    """A training step ``step(ctx, y)`` on int32[B, N] windows and int32[B] targets, one thread."""
    torch.set_num_threads(1)
    torch.manual_seed(seed)
    model = WindowLM(V, window, embed, hidden, direct)
    model.train()
    lr = lr if lr is not None else {"sgd": 20.0, "adam": 2e-3}[optimizer]
    opt = torch.optim.SGD(model.parameters(), lr=lr) if optimizer == "sgd" else torch.optim.Adam(model.parameters(),
                                                                                                 lr=lr)
    loss_fn = nn.NLLLoss()

    def step(ctx, y):
        opt.zero_grad()
        loss = loss_fn(model(torch.from_numpy(ctx).long()), torch.from_numpy(y).long())
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        opt.step()
        return loss.item()

    step.model = model
    return step


def read_windows(path, index, window):
    """(ctx: int32[n, N], y: int32[n]) of every target of ``path``, ``<s>`` before each sentence."""
    ctx, y = [], []
    bos, unk = index["<s>"], index["<unk>"]
    with open(path, encoding="utf-8") as f:
        for line in f:
            words = [index.get(w, unk) for w in line.split()] + [index["</s>"]]
            history = [bos] * window
            for w in words:
                ctx.append(history[-window:])
                y.append(w)
                history.append(w)
    return np.array(ctx, np.int32), np.array(y, np.int32)


def kjv_vocabulary():
    """Word -> id over KJV train with ``<s>``, ``</s>``, ``<unk>``."""
    with open(os.path.join(KJV, "train.txt"), encoding="utf-8") as f:
        words = sorted({w for line in f for w in line.split()} | {"<s>", "</s>", "<unk>"})
    return {w: i for i, w in enumerate(words)}


def perplexity(model, ctx, y, block=1024):
    model.eval()
    total = 0.0
    with torch.no_grad():
        for a in range(0, len(y), block):
            logp = model(torch.from_numpy(ctx[a:a + block]).long())
            total -= float(logp.gather(1, torch.from_numpy(y[a:a + block]).long()[:, None]).sum())
    model.train()
    return math.exp(total / len(y))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--window", type=int, default=4)
    ap.add_argument("--embed", type=int, default=200)
    ap.add_argument("--hidden", type=int, default=200)
    ap.add_argument("--direct", action="store_true")
    ap.add_argument("--batch", type=int, default=1024)
    ap.add_argument("--optimizer", choices=["sgd", "adam"], default="adam")
    ap.add_argument("--lr", type=float)
    ap.add_argument("--budget", type=float, default=60, help="seconds of training")
    a = ap.parse_args()
    index = kjv_vocabulary()
    train = read_windows(os.path.join(KJV, "train.txt"), index, a.window)
    test = read_windows(os.path.join(KJV, "test.txt"), index, a.window)
    step = trainer(len(index), a.window, a.embed, a.hidden, a.direct, a.optimizer, a.lr)
    rng = np.random.default_rng(1)
    spent, tokens, epoch = 0.0, 0, 0
    while spent < a.budget:
        epoch += 1
        order = rng.permutation(len(train[1]))
        for k in range(0, len(order), a.batch):
            rows = order[k:k + a.batch]
            t = time.perf_counter()
            step(train[0][rows], train[1][rows])
            spent += time.perf_counter() - t
            tokens += len(rows)
            if spent >= a.budget:
                break
    print(f"torch {torch.__version__}: {tokens / spent:,.0f} tokens/s over {spent:.0f} s ({epoch} epoch(s)), "
          f"test perplexity {perplexity(step.model, *test):.2f}")


if __name__ == "__main__":
    main()
