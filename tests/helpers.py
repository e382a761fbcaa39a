"""Small builders shared by the tests."""

import warnings

from lmtool.ngram.build import build_ngram_model


def model_from_text(tmp_path, text, order=3, smoothing="modified-kneser-ney", name="corpus.txt", **options):
    """Build an n-gram model from ``text`` written to a file in ``tmp_path`` (warnings silenced)."""
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return build_ngram_model([str(path)], order=order, smoothing=smoothing, **options)
