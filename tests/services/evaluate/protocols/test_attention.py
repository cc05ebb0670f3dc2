"""The attention protocol's result: the maps' shape and mask coverage, no headline numbers."""

from __future__ import annotations

from services.evaluate.protocols.attention import AttentionResult


def test_section_headline_and_summary() -> None:
    result = AttentionResult(n_images=2, heads=3, grid=[4, 4], threshold=0.6, mask_fraction=0.96875,
                             head_mask_fraction=[0.625, 0.625, 0.625])
    assert result.section() == {"n_images": 2, "heads": 3, "grid": [4, 4], "threshold": 0.6,
                                "mask_fraction": 0.96875, "head_mask_fraction": [0.625, 0.625, 0.625]}
    assert list(result.section()) == ["n_images", "heads", "grid", "threshold", "mask_fraction", "head_mask_fraction"]
    assert result.headline() == {} and result.summary() == "artifacts written"
