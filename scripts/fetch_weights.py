"""Put the pretrained timm weights of the configured backbones into the Hugging Face cache.

Run once where the network is reachable (e.g. a login node), with the HF_HOME that training
will use; then ``model.pretrained=true`` works offline. All logic lives in
:mod:`lossd.models.weights`.

Usage:
    python scripts/fetch_weights.py                              # every model of conf/model/
    python scripts/fetch_weights.py --models unetformer sfanet   # only these
    python scripts/fetch_weights.py --check                      # report; exit 1 if any missing
"""

import argparse
import sys

from lossd.errors import LossdError
from lossd.models.weights import (
    PRETRAINED_BACKBONES,
    check_weights,
    fetch_weights,
    format_weight_status,
    hub_cache_dir,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--models",
        nargs="+",
        choices=list(PRETRAINED_BACKBONES),
        help="models whose backbones to fetch or check (default: all)",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="only report which weights are cached (no network); exit 1 if any is missing",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    print(f"Hugging Face cache: {hub_cache_dir()} (set HF_HOME to move it)")
    try:
        if args.check:
            statuses = check_weights(args.models)
        else:
            statuses = fetch_weights(args.models, log=print)
    except LossdError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(format_weight_status(statuses))
    missing = [s for s in statuses if not s.cached]
    if missing:
        print(f"{len(missing)} of {len(statuses)} missing; run without --check to fetch them")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
