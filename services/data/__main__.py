"""`python -m services.data`: data commands that need the research stack (the `bosun data` CLI runs them)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m services.data")
    sub = parser.add_subparsers(dest="command", required=True)
    make = sub.add_parser("make-synthetic", help="write the synthetic maritime set")
    make.add_argument("root", type=Path)
    make.add_argument("--n-images", type=int, default=240)
    make.add_argument("--image-size", type=int, default=128)
    make.add_argument("--seed", type=int, default=0)
    make.add_argument("--overwrite", action="store_true")
    make.add_argument("--fiftyone", metavar="NAME", default=None,
                      help="also register the set as FiftyOne datasets NAME (RGB) and NAME-thermal")
    stats = sub.add_parser("stats", help="per-channel mean/std of a dataset's train split, stored in its stats.json")
    stats.add_argument("name", help="folder below the data root, or a FiftyOne dataset name with --fiftyone")
    stats.add_argument("--data-root", type=Path, required=True)
    stats.add_argument("--fiftyone", action="store_true", help="NAME is a FiftyOne dataset")
    stats.add_argument("--spec", default="{}", help="further dataset spec fields as JSON, e.g. '{\"modality\": \"thermal\"}'")
    stats.add_argument("--split", default="train")
    stats.add_argument("--max-samples", type=int, default=None)
    stats.add_argument("--cache-dir", type=Path, default=None, help="crop cache of FiftyOne datasets")
    return parser


def _dataset_spec(args: argparse.Namespace) -> Any:
    """The validated dataset block NAME stands for: its kind from the folder layout, or 'fiftyone'."""
    from pydantic import TypeAdapter

    from shared.datasets import detect_kind
    from shared.specs.dataset import DatasetSpec

    fields = json.loads(args.spec)
    if args.fiftyone:
        fields = {"kind": "fiftyone", "dataset_name": args.name, **fields}
    else:
        kind = fields.get("kind") or detect_kind(args.data_root / args.name)
        if kind is None:
            raise SystemExit(f"{args.data_root / args.name} is no dataset bosun recognizes (pass --spec '{{\"kind\": ...}}')")
        fields = {"kind": kind, "path": args.name, **fields}
    return TypeAdapter(DatasetSpec).validate_python(fields)


def _stats(args: argparse.Namespace) -> dict[str, Any]:
    from services.data.datasets import build_dataset
    from services.data.stats import compute_stats, write_stats
    from shared.datasets import stats_key, stats_path

    spec = _dataset_spec(args)
    dataset = build_dataset(spec, args.split, data_root=args.data_root, cache_dir=args.cache_dir)
    mean, std = compute_stats(dataset, max_samples=args.max_samples)
    samples = min(len(dataset), args.max_samples or len(dataset))
    path = stats_path(args.data_root, spec)
    entry = write_stats(path, stats_key(spec), mean, std, split=args.split, samples=samples, channels=dataset.channels)
    return {"file": str(path), **entry}


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    if args.command == "make-synthetic":
        from services.data.synthetic import make_synthetic

        summary = make_synthetic(args.root, n_images=args.n_images, image_size=args.image_size, seed=args.seed,
                                 overwrite=args.overwrite)
        if args.fiftyone:
            from services.data.fiftyone_synthetic import write_fiftyone

            summary["fiftyone"] = write_fiftyone(args.root, args.fiftyone, overwrite=args.overwrite)
        print(json.dumps(summary))
    elif args.command == "stats":
        print(json.dumps(_stats(args)))


if __name__ == "__main__":
    main()
