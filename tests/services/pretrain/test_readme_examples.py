"""The README's weights and strip-crop snippets: valid spec parts, and the strip recipe runs at a small size.

They are spec fragments, not job files (`tests/integration/test_examples.py` submits only blocks
that open with `# <name>.yaml` and hold a `type:`), so they are checked here.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from services.pretrain.pretrain_job import run
from shared.specs.evaluate import EvaluateSpec
from shared.specs.pretrain import DinoOptions, PretrainSpec
from tests.services.pretrain.helpers import local

README = Path(__file__).resolve().parents[3] / "README.md"


def readme_block(word: str) -> dict[str, Any]:
    """The README's one YAML block that holds `word`, parsed."""
    blocks = [b for b in re.findall(r"```yaml\n(.*?)```", README.read_text(), flags=re.S) if word in b]
    assert len(blocks) == 1, f"{len(blocks)} README blocks hold {word!r}"
    assert not re.match(r"# \S+\.yaml\n", blocks[0]), "a job file: tests/integration/test_examples.py would submit it"
    return yaml.safe_load(blocks[0])


def test_thermal_weights_fragment_is_a_valid_source_for_both_job_types() -> None:
    part = readme_block("first_conv")
    evaluate = EvaluateSpec.model_validate(part)
    assert evaluate.source.first_conv == "green" and evaluate.backbone.kwargs == {"in_chans": 1}
    pretrain = PretrainSpec.model_validate({"method": "dino", **part})
    assert pretrain.source == evaluate.source and pretrain.dataset.channels == "single"


def test_strip_recipe_runs_at_a_small_size(tmp_path: Path, data_root: Path) -> None:
    raw = readme_block("strip_crops")["spec"]
    written = PretrainSpec.model_validate(raw).dino
    assert (written.strip_crops, written.strip_width_scale, written.strip_size) == (4, (0.15, 0.35), (32, 8))
    raw["dino"].update(epochs=1, batch_size_per_gpu=8, num_workers=0, warmup_epochs=0, out_dim=32,
                       head_hidden_dim=32, head_bottleneck_dim=16)
    raw["dataset"]["max_per_split"] = 16
    spec = PretrainSpec.model_validate({**raw, "amp": "none", "knn_every": 0})
    torch.set_num_threads(1)
    ctx = local(tmp_path / "job1", data_root=data_root)
    result = run(spec, ctx)
    assert result["iterations"] == 2 and np.isfinite(result["loss"])
    assert torch.load(ctx.artifact_path("checkpoint.pt"), weights_only=True)["backbone"]["kwargs"]["dynamic_img_size"]


def test_extra_losses_fragment_is_a_valid_dino_block_naming_the_example_plugin() -> None:
    dino = DinoOptions.model_validate(readme_block("extra_losses")["dino"])
    (term,) = dino.extra_losses
    assert (term.name, term.weight, term.params) == ("focal", 0.1, {"gamma": 2.0})
    assert (dino.crop_policy.name, dino.crop_policy.params) == ("fivecrop", {"crop_fraction": 0.5})
    entry_points = (README.parent / "tests" / "plugins" / "focal" / "bosun_focal_plugin-0.1.0.dist-info"
                    / "entry_points.txt").read_text()
    assert "[bosun.losses]\nfocal = bosun_focal_plugin:FocalDistillation" in entry_points


def test_plugin_dataset_fragment_is_a_valid_dataset_block() -> None:
    from pydantic import TypeAdapter

    from shared.specs.dataset import DatasetSpec, PluginDataset

    dataset = TypeAdapter(DatasetSpec).validate_python(readme_block("kind: plugin")["dataset"])
    assert isinstance(dataset, PluginDataset) and (dataset.name, dataset.params) == ("squares", {"per_class": 20})


def test_plugin_method_fragment_is_a_valid_pretrain_spec_part() -> None:
    part = readme_block("method: plugin")
    spec = PretrainSpec.model_validate({"backbone": {"name": "resnet18"}, "dataset": {"kind": "folder", "path": "x"},
                                        **part})
    assert (spec.plugin.name, spec.plugin.params, spec.options.epochs) == ("rotnet", {"rotations": 4}, 100)
    assert spec.plugin_uses() == [(["spec", "plugin", "name"], "methods", "rotnet")]
