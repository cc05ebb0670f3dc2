"""`python -m services.data`: data commands that need the research stack (the `bosun data` CLI runs them).

`catalog` prints every FiftyOne dataset's catalog entry as JSON; workers run it to refresh the
catalog the API lists (worker.catalog_refresh). A DatasetError (a missing path, FiftyOne not installed:
`install bosun[fiftyone]`) ends a command with its one-line reason on stderr and exit status 1.
"""

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
    make.add_argument("--difficulty", default="easy",
                      help="nuisance variation: 'easy' (the original set), 'hard', or a level in [0, 1]")
    make.add_argument("--fiftyone", metavar="NAME", default=None,
                      help="also register the set as FiftyOne datasets NAME (RGB) and NAME-thermal")
    stats = sub.add_parser("stats", help="per-channel mean/std of a dataset's train split, stored in its stats.json")
    stats.add_argument("name", help="folder below the data root, or a FiftyOne dataset name with --fiftyone")
    stats.add_argument("--data-root", type=Path, required=True)
    stats.add_argument("--fiftyone", action="store_true", help="NAME is a FiftyOne dataset")
    stats.add_argument("--spec", default="{}",
                       help="further dataset spec fields as JSON, e.g. '{\"modality\": \"thermal\"}'")
    stats.add_argument("--split", default="train")
    stats.add_argument("--max-samples", type=int, default=None)
    stats.add_argument("--cache-dir", type=Path, default=None, help="crop cache of FiftyOne datasets")
    sub.add_parser("catalog",
                   help="every FiftyOne dataset's splits, classes and fields, as JSON (needs bosun[fiftyone])")
    return parser


def _dataset_spec(args: argparse.Namespace) -> Any:
    """The validated dataset block NAME stands for: its kind from the folder layout, or 'fiftyone'."""
    from pydantic import TypeAdapter

    from services.data.layout import detect_kind
    from shared.specs.dataset import DatasetSpec

    fields = json.loads(args.spec)
    if args.fiftyone:
        fields = {"kind": "fiftyone", "dataset_name": args.name, **fields}
    else:
        kind = fields.get("kind") or detect_kind(args.data_root / args.name)
        if kind is None:
            raise SystemExit(f"{args.data_root / args.name} is no dataset bosun recognizes "
                             f"(pass --spec '{{\"kind\": ...}}')")
        fields = {"kind": kind, "path": args.name, **fields}
    return TypeAdapter(DatasetSpec).validate_python(fields)


def _stats(args: argparse.Namespace) -> dict[str, Any]:
    from services.data.builders import build_dataset
    from services.data.stats import compute_stats, stats_key, stats_path, write_stats

    spec = _dataset_spec(args)
    dataset = build_dataset(spec, args.split, data_root=args.data_root, cache_dir=args.cache_dir)
    mean, std = compute_stats(dataset, max_samples=args.max_samples)
    samples = min(len(dataset), args.max_samples or len(dataset))
    path = stats_path(args.data_root, spec)
    entry = write_stats(path, stats_key(spec), mean, std, split=args.split, samples=samples, channels=dataset.channels)
    return {"file": str(path), **entry}


def main(argv: list[str] | None = None) -> None:
    from services.data.errors import DatasetError

    args = _parser().parse_args(argv)
    try:
        _run(args)
    except DatasetError as exc:
        raise SystemExit(f"error: {exc}") from None


def _run(args: argparse.Namespace) -> None:
    if args.command == "make-synthetic":
        from services.data.synthetic import make_synthetic

        summary = make_synthetic(args.root, n_images=args.n_images, image_size=args.image_size, seed=args.seed,
                                 overwrite=args.overwrite, difficulty=args.difficulty)
        if args.fiftyone:
            from services.data.fiftyone_synthetic import write_fiftyone

            summary["fiftyone"] = write_fiftyone(args.root, args.fiftyone, overwrite=args.overwrite)
        print(json.dumps(summary))
    elif args.command == "stats":
        print(json.dumps(_stats(args)))
    elif args.command == "catalog":
        from services.data.fiftyone_catalog import describe_datasets

        print(json.dumps(describe_datasets()))


if __name__ == "__main__":
    main()
