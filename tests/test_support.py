"""Gradient support spans (``neural.spans``) and the optimiser kernels over them."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from lmtool.kernels.param_update import (add_spans, sgd_step, sgd_step_spans, squared_norm, squared_norm_spans,
                                         zero_spans)
from lmtool.neural.optimizer import Optimizer, clip_scale
from lmtool.neural.spans import merge_spans, range_spans, row_spans, split_spans

SIZE = 64
span = st.tuples(st.integers(0, SIZE), st.integers(0, SIZE)).map(lambda t: (min(t), max(t)))


def mask_of(spans, size=SIZE):
    m = np.zeros(size, bool)
    for a, b in spans:
        m[a:b] = True
    return m


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(span, max_size=6), max_size=4))
def test_merged_spans_are_sorted_disjoint_and_cover_the_union(parts):
    merged = merge_spans([np.array(p, np.int64).reshape(-1, 2) for p in parts] or [np.empty((0, 2))])
    np.testing.assert_array_equal(mask_of(merged), mask_of([s for p in parts for s in p]))
    assert np.all(merged[:, 1] > merged[:, 0])
    assert np.all(merged[1:, 0] > merged[:-1, 1])  # disjoint and not even touching: merged


@settings(max_examples=200, deadline=None)
@given(st.lists(span, max_size=8), st.integers(1, 5))
def test_split_spans_share_the_support_in_order_and_near_equal_parts(raw, parts):
    spans = merge_spans([np.array(raw, np.int64).reshape(-1, 2)])
    pieces = split_spans(spans, parts)
    assert len(pieces) == parts
    joined = np.concatenate(pieces)
    np.testing.assert_array_equal(mask_of(joined), mask_of(spans))
    lengths = [int((p[:, 1] - p[:, 0]).sum()) for p in pieces]
    assert sum(lengths) == int((spans[:, 1] - spans[:, 0]).sum()) and max(lengths) - min(lengths) <= 1
    assert np.all(joined[1:, 0] >= joined[:-1, 1])  # in order, no overlap


def test_row_and_range_spans_address_rows_of_a_matrix_in_the_flat_vector():
    np.testing.assert_array_equal(row_spans(10, 4, np.array([3, 1, 3])), [[14, 18], [22, 26]])
    np.testing.assert_array_equal(range_spans(10, 4, [0, 5], [2, 6]), [[10, 18], [30, 34]])


def test_span_kernels_match_the_whole_vector_ones():
    rng = np.random.default_rng(0)
    spans = np.array([[3, 9], [20, 21], [40, 64]], np.int64)
    grad = np.zeros(SIZE, np.float32)
    inside = mask_of(spans)
    grad[inside] = rng.standard_normal(inside.sum()).astype(np.float32)
    assert np.isclose(squared_norm_spans(grad, spans), squared_norm(grad), rtol=1e-12)
    p1 = rng.standard_normal(SIZE).astype(np.float32)
    p2 = p1.copy()
    sgd_step(p1, grad, np.float32(0.5))
    sgd_step_spans(p2, grad, np.float32(0.5), spans)
    np.testing.assert_array_equal(p1, p2)
    total = rng.standard_normal(SIZE).astype(np.float32)
    expected = np.where(inside, total + grad, total)
    norm = add_spans(total, np.where(inside, grad, 100).astype(np.float32), spans)  # only the spans are added
    np.testing.assert_array_equal(total, expected)
    assert np.isclose(norm, np.sum(expected[inside].astype(np.float64) ** 2), rtol=1e-12)  # of the sums
    p3 = p2.copy()
    sgd_step_spans(p2, grad, np.float32(0.5), spans)
    cleared = grad.copy()
    sgd_step_spans(p3, cleared, np.float32(0.5), spans, True)  # the same step, and grad zeroed
    np.testing.assert_array_equal(p2, p3)
    assert not cleared.any()
    zero_spans(grad, spans)
    assert not grad.any()


def test_sgd_with_a_support_equals_sgd_without_and_adam_ignores_it():
    rng = np.random.default_rng(1)
    spans = np.array([[0, 5], [30, 40]], np.int64)
    grad = np.zeros(SIZE, np.float32)
    grad[mask_of(spans)] = rng.standard_normal(15).astype(np.float32)
    dense_scale, _ = clip_scale(grad, 0.5)
    sparse_scale, _ = clip_scale(grad, 0.5, spans)
    assert np.isclose(dense_scale, sparse_scale, rtol=1e-12) and dense_scale < 1
    for kind, support in (("sgd", spans), ("adam", spans[:1])):  # Adam must update [30, 40) too
        start = rng.standard_normal(SIZE).astype(np.float32)
        p1, p2 = start.copy(), start.copy()
        o1, o2 = Optimizer(kind, SIZE), Optimizer(kind, SIZE)
        for _ in range(3):
            o1.step(p1, grad, 0.1, dense_scale)
            o2.step(p2, grad, 0.1, dense_scale, support=support)
        np.testing.assert_array_equal(p1, p2)
        assert not np.array_equal(p1, start)
        kept = grad.copy()
        assert o2.step(p2, kept, 0.1, dense_scale, support=support, clear=True) == (kind == "sgd")
        assert kept.any() == (kind == "adam")  # SGD over the support zeroed it; Adam leaves it
