"""`python -m services.data`: data commands that need the research stack (the `bosun data` CLI runs them)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m services.data")
    sub = parser.add_subparsers(dest="command", required=True)
    make = sub.add_parser("make-synthetic", help="write the synthetic maritime set")
    make.add_argument("root", type=Path)
    make.add_argument("--n-images", type=int, default=240)
    make.add_argument("--image-size", type=int, default=128)
    make.add_argument("--seed", type=int, default=0)
    make.add_argument("--overwrite", action="store_true")
    args = parser.parse_args(argv)

    if args.command == "make-synthetic":
        from services.data.synthetic import make_synthetic

        summary = make_synthetic(args.root, n_images=args.n_images, image_size=args.image_size, seed=args.seed,
                                 overwrite=args.overwrite)
        print(json.dumps(summary))


if __name__ == "__main__":
    main()
