"""The recurrent state a network carries from one step to the next, per layer and stream."""

import numpy as np


class NetworkState:
    """Recurrent state per layer: h: float[L, B, H], and c: float[L, B, H] for LSTM (else None)."""

    def __init__(self, h, c=None):
        self.h, self.c = h, c

    @property
    def batch(self):
        return self.h.shape[1]

    def reset_rows(self, rows):
        """Zero the state of the streams flagged by rows: bool[B] (in place); returns self."""
        self.h[:, rows] = 0
        if self.c is not None:
            self.c[:, rows] = 0
        return self

    def select(self, rows):
        """A new state made of the given streams (index array or bool[B]), e.g. to shrink a batch."""
        return NetworkState(self.h[:, rows].copy(), None if self.c is None else self.c[:, rows].copy())

    def copy(self):
        return self.select(slice(None))

    @staticmethod
    def joined(states):
        """One state holding the streams of ``states`` side by side, in order."""
        h = np.concatenate([s.h for s in states], axis=1)
        c = np.concatenate([s.c for s in states], axis=1) if states[0].c is not None else None
        return NetworkState(h, c)
