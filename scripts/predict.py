r"""Predict images, folders or GeoTIFFs with a trained checkpoint.

Examples:
    # GeoTIFF -> class GeoTIFF (same CRS/transform) + colour and overlay PNGs, windowed I/O
    python scripts/predict.py top_potsdam_2_13_RGB.tif --checkpoint best.ckpt --out pred/
    # a folder of PNG/JPEG files, flip TTA, only the colour masks
    python scripts/predict.py photos/ --checkpoint best.ckpt --out pred/ --tta flip --format colour
    # LoveDA test server zip from the raw test images (or the prepared test split)
    python scripts/predict.py data/raw/loveda/Test --checkpoint best.ckpt \
        --submission loveda --out loveda_test.zip
    # UAVid test server zip: whole frames as GeoSeg's inference_uavid.py predicts them
    # (the dataset's test rule, conf/inference/uavid.yaml: padded 1152x1024 windows, lr TTA)
    python scripts/predict.py raw/uavid_test --checkpoint best.ckpt --submission uavid \
        --out uavid_test.zip

With --submission the inference flags default to the dataset's test rule
(conf/inference/<dataset>.yaml), the one the training run's test uses.
"""

import argparse
import sys

from lossd.data.submission import submission_datasets
from lossd.engine.cli import add_inference_arguments, dataset_inference, inference_options_from_args
from lossd.engine.predict import FORMATS, Predictor, predict_paths, predict_submission
from lossd.errors import LossdError

# Whole rasters by sliding window by default (conf/inference keys, other defaults than eval).
PREDICT_DEFAULTS = {"patch_size": [1024], "overlap": 0.25, "batch_size": 2}


def _bands(text: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",")]
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"--bands {text!r}: expected e.g. 1,2,3") from err


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    first = argparse.ArgumentParser(add_help=False)
    first.add_argument("--submission", choices=submission_datasets(), default=None)
    submission = first.parse_known_args(argv)[0].submission
    defaults = PREDICT_DEFAULTS if submission is None else dataset_inference(submission)
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n".join(__doc__.splitlines()[2:]) if __doc__ else None,
    )
    parser.add_argument("inputs", nargs="+", help="image files or folders (searched recursively)")
    parser.add_argument("--checkpoint", required=True, help="training checkpoint (best.ckpt)")
    parser.add_argument(
        "--out", required=True, help="output folder (with --submission: the .zip to write)"
    )
    add_inference_arguments(parser, defaults)
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda")
    parser.add_argument("--precision", default="32", help="32 | bf16 | fp16 (CUDA) | auto")
    parser.add_argument(
        "--bands", type=_bands, default=None, help="1-based bands to use, e.g. 1,2,3 of RGBIR"
    )
    parser.add_argument(
        "--format",
        nargs="+",
        choices=[*FORMATS, "all"],
        default=["all"],
        help="outputs: indices (class map), colour, overlay, all (default)",
    )
    parser.add_argument("--submission", choices=submission_datasets(), default=None)
    parser.add_argument("--model", default=None, help="expected model name (checked)")
    parser.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    parser.add_argument("--no-progress", action="store_true")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    try:
        options = inference_options_from_args(args)
        num_classes = None
        if args.submission is not None:
            from lossd.data import get_info

            num_classes = get_info(args.submission).num_classes
        predictor = Predictor.from_checkpoint(
            args.checkpoint,
            options,
            args.device,
            bands=args.bands,
            precision=args.precision,
            expect_model=args.model,
            expect_num_classes=num_classes,
            progress=not args.no_progress,
        )
        if args.submission is not None:
            summary = predict_submission(
                predictor, args.inputs, args.submission, args.out, args.overwrite
            )
            print(summary.describe())
            return
        formats = list(FORMATS) if "all" in args.format else args.format
        written = predict_paths(predictor, args.inputs, args.out, formats, args.overwrite)
        print(f"wrote {len(written)} file(s) to {args.out}")
    except LossdError as err:  # a user-facing problem: one line, no traceback
        sys.exit(f"error: {err}")


if __name__ == "__main__":
    main()
