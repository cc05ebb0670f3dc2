"""The t-SNE protocol's result: settings only, no headline numbers."""

from __future__ import annotations

from services.evaluate.protocols.tsne import TsneResult


def test_section_headline_and_summary() -> None:
    result = TsneResult(n_points=20, perplexity=5.0, learning_rate="auto", max_iter=250)
    assert result.section() == {"n_points": 20, "perplexity": 5.0, "learning_rate": "auto", "max_iter": 250}
    assert list(result.section()) == ["n_points", "perplexity", "learning_rate", "max_iter"]
    assert result.headline() == {} and result.summary() == "artifacts written"
