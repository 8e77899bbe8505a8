"""The course's command line: ``python -m ctutils COMMAND …`` (``--help`` on every level).

::

    python -m ctutils [--verbose] COMMAND …     --verbose: TensorFlow's C++ start-up log too
    python -m ctutils data synth --out DIR --normal N --abnormal N --seed S [--size 512] [--layout keras-example|full] [--grades G ...] [--shortcut-marker]
    python -m ctutils data download --dataset NAME --dest DIR [--registry FILE]
    python -m ctutils data preprocess --src DIR --out CACHE [--shape X Y Z] [--preset keras-example] [--strict]
    python -m ctutils data info PATH
    python -m ctutils train --cache CACHE --out RUN [--model NAME] [--recipe reference|improved] …
    python -m ctutils evaluate --cache CACHE --model MODEL.keras [--split test] [--json]
    python -m ctutils baseline DIR [--seed S] [--repeats N] [--max-inplane PX] [--workers N] [--mapping binary]
    python -m ctutils predict SCAN.nii.gz --model MODEL.keras [--json]
    python -m ctutils course run [--profile quick|full] [--dataset synthetic|mosmeddata] [--out runs/NAME]
    python -m ctutils course student --out DIR
    python -m ctutils course nbgrader --out DIR [--course-id ID] [--kernel NAME] [--timeout S] [--force]
    python -m ctutils course nbgrader-tag [--check]

Errors that come from bad input (a missing file, a bad scan, an offline download…) are printed
as one line naming the file, with exit status 2; TensorFlow is imported only by the commands
that need it, without its C++ start-up log (:mod:`ctutils.tfimport`; ``--verbose`` shows it).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

__all__ = ["main", "build_parser"]


class UserError(Exception):
    """An error to print as one line, without a traceback."""


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def _non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer ≥ 0, got {text}")
    return value


# ----------------------------------------------------------------------------- data


def _data_synth(args: argparse.Namespace) -> int:
    from collections import Counter

    from ctutils.synthetic import generate_dataset

    paths = generate_dataset(
        args.out, normal=args.normal, abnormal=args.abnormal, seed=args.seed, size=args.size,
        layout=args.layout, grades=args.grades, workers=args.workers, progress=not args.quiet,
        shortcut_marker=args.shortcut_marker,
    )
    folders = Counter(p.parent.name for p in paths)
    summary = ", ".join(f"{n} in {folder}" for folder, n in sorted(folders.items()))
    masks = f", lesion masks in {args.out / 'masks'}" if args.abnormal else ""
    print(f"{args.out}: {len(paths)} synthetic studies ({summary}){masks}")
    if args.shortcut_marker:
        print("deliberate flaw: every abnormal study has a skin marker (a shortcut to the label); "
              "generate the clean copy with the same seed without --shortcut-marker")
    return 0


def _data_download(args: argparse.Namespace) -> int:
    from ctutils.download import download_dataset

    dest = download_dataset(args.dataset, args.dest, registry=args.registry, progress=not args.quiet)
    print(f"{dest}: dataset {args.dataset} is ready")
    return 0


def _data_preprocess(args: argparse.Namespace) -> int:
    from ctutils.cache import build_cache
    from ctutils.preprocess import PreprocessConfig

    config_kwargs: dict = {"preset": args.preset, "hu_min": args.hu_min, "hu_max": args.hu_max}
    if args.shape:
        config_kwargs["shape"] = tuple(args.shape)
    if args.spacing_mm:
        config_kwargs["spacing_mm"] = tuple(args.spacing_mm)
    config = PreprocessConfig(**config_kwargs)
    cache = build_cache(
        args.src, args.out, config=config, dataset=args.dataset, mapping=args.mapping,
        workers=args.workers, strict=args.strict, seed=args.seed, progress=not args.quiet,
    )
    for record in cache.skipped:
        print(f"skipped {record['path']}: {record['error']}")
    state = "reused (nothing to do)" if cache.info.get("reused") else "written"
    print(f"{cache.root}: {len(cache)} volumes of {config.shape}, {len(cache.skipped)} skipped; cache {state}")
    print(_split_table(cache.info["counts"]))
    return 0


def _split_table(counts: dict) -> str:
    names = list(next(iter(counts.values())).keys()) if counts else []
    lines = ["split  " + "  ".join(f"{n:>9}" for n in names)]
    lines += [f"{split:<6} " + "  ".join(f"{counts[split][n]:>9}" for n in names) for split in counts]
    return "\n".join(lines)


def _data_info(args: argparse.Namespace) -> int:
    from ctutils.cache import INFO, open_cache

    path = Path(args.path)
    if not (path / INFO).exists() and any((path / name).exists() for name in ("volumes.npy", "manifest.csv")):
        raise UserError(f"{path / INFO}: missing; this cache is incomplete (interrupted?), rebuild it with `python -m ctutils data preprocess`")
    if (path / INFO).exists():
        cache = open_cache(path)
        info = {k: v for k, v in cache.info.items() if k not in ("reused",)}
        if args.json:
            print(json.dumps(info, indent=2))
            return 0
        print(f"cache {path}: {len(cache)} volumes {cache.volumes.shape[1:]}, float32, preset {cache.config.preset}, "
              f"window {cache.config.hu_min:g}…{cache.config.hu_max:g} HU, {len(cache.skipped)} skipped")
        print(_split_table(cache.info["counts"]))
        if cache.masks is not None:
            print(f"lesion masks: {int(cache.has_mask().sum())} of {len(cache)} rows (masks.npy)")
        return 0
    from ctutils.datasets import class_counts, detect_dataset, list_scans

    spec = detect_dataset(path)
    scans = list_scans(path, spec=spec, mapping=args.mapping)
    counts = class_counts(scans)
    if args.json:
        print(json.dumps({"dataset": spec.name, "root": str(path), "counts": counts}, indent=2))
        return 0
    described = f"dataset {spec.name}, layout {spec.layout_of(path)[0]}" if spec.layouts else f"layout of {spec.name}"
    print(f"dataset folder {path} ({described}): {len(scans)} scans")
    for name, count in counts.items():
        print(f"  {name:<10} {count}")
    return 0


# ----------------------------------------------------------------------------- training stack


def _train(args: argparse.Namespace) -> int:
    from ctutils.training import train

    result = train(
        args.cache, args.out, model=args.model, recipe=args.recipe, epochs=args.epochs,
        batch_size=args.batch_size, seed=args.seed, augment=not args.no_augment,
        tensorboard=args.tensorboard, resume=not args.no_resume, verbose=2,  # one line per epoch
    )
    print(f"{result.model_path}: best model; history in {Path(args.out) / 'history.csv'}")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from ctutils.evaluation import evaluate_model, format_report

    threshold: float | str | None = args.threshold
    if threshold is not None and threshold not in ("val-youden", "val-sensitivity"):
        try:
            threshold = float(threshold)
        except ValueError:
            raise UserError(f"--threshold must be a number in [0, 1], val-youden or val-sensitivity, got {threshold!r}") from None
    result = evaluate_model(args.cache, args.model, split=args.split, threshold=threshold, n_boot=args.n_boot, seed=args.seed)
    if args.baseline:
        from ctutils.baseline import evaluate_baseline
        from ctutils.evaluation import compare_with_baseline

        result["baseline"] = evaluate_baseline(args.cache, split=args.split, n_boot=args.n_boot, seed=args.seed)
        comparison = compare_with_baseline(result, result["baseline"], n_boot=args.n_boot, seed=args.seed)
        if comparison is not None:
            result["comparison"] = comparison
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(format_report(result))
    if args.baseline:
        base = result["baseline"]
        print(f"\none-feature baseline (GGO fraction > {base['threshold']:.4f}, threshold fitted on train), same split:")
        for name in ("roc_auc", "accuracy", "sensitivity", "specificity"):
            m = base["metrics"][name]
            print(f"  {name:<12} {m['value']:.3f}  [{m['low']:.3f}, {m['high']:.3f}]")
        if "comparison" not in result:
            print(f"\nno paired ROC-AUC comparison: split {args.split!r} holds one class only")
        else:
            c = result["comparison"]
            print(
                f"\nCNN - baseline ROC-AUC: {c['diff']:+.3f}  [{c['low']:+.3f}, {c['high']:+.3f}] "
                f"(paired bootstrap over the same scans; the CNN does not beat the baseline in "
                f"{100 * c['p_not_better']:.1f} % of resamples)"
            )
    return 0


def _baseline(args: argparse.Namespace) -> int:
    import numpy as np

    from ctutils.baseline import dataset_features, holdout_accuracy

    feats, labels, _ = dataset_features(args.root, max_inplane=args.max_inplane or None, workers=args.workers,
                                        mapping=args.mapping)
    for c in (0, 1):
        f = feats[labels == c]
        print(f"class {c}: n={f.size} ggo_fraction median {np.median(f):.4f} "
              f"(range {f.min():.4f}-{f.max():.4f})")
    res = holdout_accuracy(feats, labels, seed=args.seed)
    print(f"seed {args.seed}: threshold {res['threshold']:.4f}, train accuracy "
          f"{res['train_accuracy']:.3f}, held-out accuracy {res['test_accuracy']:.3f} "
          f"(n_test={res['n_test']})")
    if args.repeats > 0:
        accs = [holdout_accuracy(feats, labels, seed=s)["test_accuracy"] for s in range(args.repeats)]
        print(f"{args.repeats} random 70/30 splits: held-out accuracy mean {np.mean(accs):.3f} "
              f"(sd {np.std(accs):.3f}, min {np.min(accs):.3f}, max {np.max(accs):.3f})")
    return 0


def _predict(args: argparse.Namespace) -> int:
    from ctutils.predict import format_prediction, predict_scan, prediction_to_json

    prediction = predict_scan(args.scan, model_path=args.model)
    print(json.dumps(prediction_to_json(prediction), indent=2) if args.json else format_prediction(prediction))
    return 0


# ----------------------------------------------------------------------------- course


def _course_run(args: argparse.Namespace) -> int:
    from ctutils.runner import run_course

    out = run_course(profile=args.profile, dataset=args.dataset, out=args.out, chapters=args.chapters, write_back=args.write_back)
    print(f"{out}: executed notebooks in {out / 'notebooks'}, summary in {out / 'summary.md'}")
    return 0


def _course_seeds(args: argparse.Namespace) -> int:
    from ctutils.course import course_config
    from ctutils.experiments import seeds_summary, seeds_table

    cfg = course_config(args.profile, args.dataset, run_dir=args.out, seed=args.seeds[0])
    print(f"seeds study: profile {cfg.profile.name}, dataset {cfg.dataset}, {cfg.profile.model}, recipe "
          f"{cfg.profile.recipe}, {cfg.profile.epochs} epochs; seeds {' '.join(map(str, args.seeds))}", flush=True)

    def say(run: object) -> None:
        print(f"  seed {run.seed}: {cfg.relative(run.run_dir)} done", flush=True)  # type: ignore[attr-defined]

    runs = cfg.seed_study(args.seeds, on_run=say, progress=not args.quiet)
    print(seeds_table(runs))
    summary = seeds_summary(runs)
    print(f"\nval ROC-AUC mean {summary['val_auc_mean']:.3f} (lowest {summary['val_auc_min']:.3f}); "
          f"highest best val_loss {summary['best_val_loss_max']:.3f}; widest test 95 % interval "
          f"±{summary['test_auc_half_width_max']:.3f}")
    if args.json:
        args.json.write_text(json.dumps({"profile": cfg.profile.name, "dataset": cfg.dataset,
                                         "runs": [r.to_dict() for r in runs], "summary": summary}, indent=2) + "\n")
        print(f"written {args.json}")
    return 0


def _course_student(args: argparse.Namespace) -> int:
    from ctutils.student import make_student_copies

    written = make_student_copies(args.out, source=args.source)
    print(f"{args.out}: {len(written)} student notebooks written")
    return 0


def _course_nbgrader(args: argparse.Namespace) -> int:
    from ctutils.classroom import make_nbgrader_course

    written = make_nbgrader_course(args.out, source=args.source, chapters=args.chapters, course_id=args.course_id,
                                   kernel=args.kernel, timeout_s=args.timeout, force=args.force)
    chapters = sum(p.suffix == ".ipynb" for p in written)
    kept = [name for name in ("nbgrader_config.py", "README.md") if args.out / name not in written]
    print(f"{args.out}: {chapters} chapter(s) in source/"
          + (f"; kept the existing {' and '.join(kept)} (--force rewrites them)" if kept else "")
          + f". Next: cd {args.out} && nbgrader generate_assignment 00_setup (see README.md there)")
    return 0


def _course_nbgrader_tag(args: argparse.Namespace) -> int:
    from ctutils.classroom import tag_chapters

    changed = tag_chapters(args.source, check=args.check)
    names = ", ".join(p.name for p in changed) or "none"
    if args.check:
        print(f"chapters whose nbgrader metadata is out of date: {names}")
        return 1 if changed else 0
    print(f"nbgrader metadata updated in: {names}")
    return 0


# ----------------------------------------------------------------------------- parser

# What ``ArgumentParser.add_subparsers`` returns (argparse keeps that class's name private).
_Commands = Any


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``python -m ctutils``."""
    parser = argparse.ArgumentParser(prog="python -m ctutils", description="3D CNN classification of chest CT scans: the course's tools.")
    parser.add_argument("--verbose", action="store_true",
                        help="also show TensorFlow's C++ start-up log (hidden by default; see ctutils.tfimport)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    _add_data_commands(commands)
    _add_train_command(commands)
    _add_evaluate_command(commands)
    _add_baseline_command(commands)
    _add_predict_command(commands)
    _add_course_commands(commands)
    return parser


def _add_data_commands(commands: _Commands) -> None:
    """``data synth | download | preprocess | info``."""
    data = commands.add_parser("data", help="make, download, preprocess and inspect datasets")
    data_commands = data.add_subparsers(dest="data_command", required=True, metavar="SUBCOMMAND")

    synth = data_commands.add_parser("synth", help="generate the embedded synthetic dataset (CT phantoms)")
    synth.add_argument("--out", required=True, type=Path, help="dataset folder to write (CT-0/, CT-23/ or CT-1/ … CT-4/, masks/)")
    synth.add_argument("--normal", required=True, type=_non_negative, help="number of normal studies (CT-0)")
    synth.add_argument("--abnormal", required=True, type=_non_negative, help="number of abnormal studies (CT-23, or CT-1 … CT-4)")
    synth.add_argument("--seed", required=True, type=int, help="same seed, identical files")
    synth.add_argument("--size", type=_positive, default=512, help="in-plane size in voxels (default 512, as MosMedData)")
    synth.add_argument("--layout", default="keras-example",
                       help="keras-example (default): CT-0 and CT-23 (CT-2 and CT-3 disease), as in the Keras example; "
                            "full: CT-0 … CT-4 in MosMedData's proportions")
    synth.add_argument("--grades", type=int, nargs="+", default=None, metavar="G",
                       help="only these grades for the abnormal studies, e.g. --layout full --grades 1 (CT-0 against CT-1)")
    synth.add_argument("--workers", type=_positive, default=None, help="processes (default: all cores)")
    synth.add_argument("--quiet", action="store_true", help="no progress bar")
    synth.add_argument("--shortcut-marker", action="store_true",
                       help="teaching experiment: a dense skin marker in every abnormal study only (a deliberate "
                            "shortcut to the label); all else identical to the dataset without it at the same seed")
    synth.set_defaults(func=_data_synth)

    download = data_commands.add_parser("download", help="download a dataset of the registry (MosMedData)")
    download.add_argument("--dataset", required=True, help="registry name, e.g. mosmeddata-ct0-ct23")
    download.add_argument("--dest", required=True, type=Path, help="folder to download and extract into")
    download.add_argument("--registry", type=Path, default=None, help="another registry JSON file")
    download.add_argument("--quiet", action="store_true", help="no progress bar")
    download.set_defaults(func=_data_download)

    pre = data_commands.add_parser("preprocess", help="preprocess a dataset folder into a cache (volumes.npy + manifest.csv)")
    pre.add_argument("--src", required=True, type=Path, help="dataset folder with class folders CT-0, CT-23 …")
    pre.add_argument("--out", required=True, type=Path, help="cache folder to write")
    pre.add_argument("--shape", type=_positive, nargs=3, metavar=("X", "Y", "Z"), help="output shape (default 128 128 64)")
    pre.add_argument("--preset", choices=("course", "keras-example"), default="course", help="preprocessing steps (default: course)")
    pre.add_argument("--spacing-mm", type=float, nargs=3, metavar=("X", "Y", "Z"), help="resample to this voxel size before resizing")
    pre.add_argument("--hu-min", type=float, default=-1000.0, help="window low end in HU (default -1000)")
    pre.add_argument("--hu-max", type=float, default=400.0, help="window high end in HU (default 400)")
    pre.add_argument("--dataset", default=None, help="registry name (default: detected from the class folders)")
    pre.add_argument("--mapping", default=None, help="label mapping, e.g. binary or severity (default: the dataset's)")
    pre.add_argument("--seed", type=int, default=0, help="seed of the stratified split (default 0)")
    pre.add_argument("--workers", type=_positive, default=None, help="processes (default: all cores)")
    pre.add_argument("--strict", action="store_true", help="stop at the first bad scan instead of skipping it")
    pre.add_argument("--quiet", action="store_true", help="no progress bar")
    pre.set_defaults(func=_data_preprocess)

    info = data_commands.add_parser("info", help="describe a dataset folder or a cache")
    info.add_argument("path", type=Path, help="dataset folder or cache folder")
    info.add_argument("--mapping", default=None, help="label mapping for a dataset folder")
    info.add_argument("--json", action="store_true", help="machine-readable output")
    info.set_defaults(func=_data_info)


def _add_train_command(commands: _Commands) -> None:
    train = commands.add_parser("train", help="train a 3D CNN on a cache")
    train.add_argument("--cache", required=True, type=Path, help="cache folder (from data preprocess)")
    train.add_argument("--out", required=True, type=Path, help="run folder: model.keras, history, preprocess.json")
    train.add_argument("--model", default="cnn3d", help="model name (cnn3d = the reference, cnn3d-same, cnn3d-small = the quick profile's, resnet3d)")
    train.add_argument("--recipe", choices=("reference", "improved"), default="reference")
    train.add_argument("--epochs", type=_positive, default=None, help="default: the recipe's")
    train.add_argument("--batch-size", type=_positive, default=None, help="default: the recipe's")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--no-augment", action="store_true", help="train without augmentation")
    train.add_argument("--tensorboard", action="store_true", help="write TensorBoard logs to RUN/logs")
    train.add_argument("--no-resume", action="store_true", help="start afresh even if RUN holds a checkpoint")
    train.set_defaults(func=_train)


def _add_evaluate_command(commands: _Commands) -> None:
    evaluate = commands.add_parser("evaluate", help="evaluate a trained model on a split of a cache")
    evaluate.add_argument("--cache", required=True, type=Path)
    evaluate.add_argument("--model", required=True, type=Path, help="model.keras from train")
    evaluate.add_argument("--split", choices=("train", "val", "test"), default="test")
    evaluate.add_argument("--threshold", default=None, help="decision threshold: a number, or val-youden / val-sensitivity to choose it on the validation split (default 0.5)")
    evaluate.add_argument("--n-boot", type=_positive, default=1000, help="bootstrap resamples for the 95%% intervals")
    evaluate.add_argument("--seed", type=int, default=0)
    evaluate.add_argument("--baseline", action="store_true", help="also evaluate the one-feature baseline (GGO fraction) on the same split")
    evaluate.add_argument("--json", action="store_true", help="machine-readable output")
    evaluate.set_defaults(func=_evaluate)



def _add_baseline_command(commands: _Commands) -> None:
    base = commands.add_parser("baseline", help="held-out accuracy of the one-feature baseline (ground-glass fraction) on a dataset folder",
                               description="One-feature baseline: fraction of lung voxels in -750..-300 HU, thresholded.")
    base.add_argument("root", type=Path, help="dataset folder with CT-0 and CT-23 (or CT-1..CT-4)")
    base.add_argument("--seed", type=int, default=0, help="seed of the 70/30 split")
    base.add_argument("--repeats", type=int, default=100, help="extra random splits to average")
    base.add_argument("--max-inplane", type=int, default=128,
                      help="subsample in-plane to at most this size (0: full resolution)")
    base.add_argument("--workers", type=int, default=None)
    base.add_argument("--mapping", default=None, help="binary label mapping of the dataset (default: the dataset's)")
    base.set_defaults(func=_baseline)


def _add_predict_command(commands: _Commands) -> None:
    predict = commands.add_parser("predict", help="classify one raw NIfTI scan")
    predict.add_argument("scan", type=Path, help="a .nii or .nii.gz file")
    predict.add_argument("--model", required=True, type=Path, help="model.keras from train (preprocess.json beside it)")
    predict.add_argument("--json", action="store_true", help="machine-readable output")
    predict.set_defaults(func=_predict)


def _add_course_commands(commands: _Commands) -> None:
    """``course run | seeds | student | nbgrader | nbgrader-tag``."""
    from ctutils.classroom import CELL_TIMEOUT_S, COURSE_ID  # no third-party import

    course = commands.add_parser("course", help="run the whole course in batch, make student copies or an nbgrader course")
    course_commands = course.add_subparsers(dest="course_command", required=True, metavar="SUBCOMMAND")
    run = course_commands.add_parser("run", help="execute every chapter with papermill and write a summary")
    run.add_argument("--profile", choices=("quick", "full"), default="quick")
    run.add_argument("--dataset", choices=("synthetic", "mosmeddata"), default="synthetic")
    run.add_argument("--out", type=Path, default=None, help="run folder (default runs/<profile>-<dataset>)")
    run.add_argument("--chapters", nargs="*", default=None, help="only these chapters (e.g. 00 01)")
    run.add_argument("--write-back", action="store_true", help="copy the executed notebooks over notebooks/ (regenerates the committed outputs)")
    run.set_defaults(func=_course_run)
    seeds = course_commands.add_parser("seeds", help="train the profile's model for several seeds and tabulate val and test ROC-AUC")
    seeds.add_argument("--profile", choices=("quick", "full"), default="quick")
    seeds.add_argument("--dataset", choices=("synthetic", "mosmeddata"), default="synthetic")
    seeds.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2],
                       help="training seeds (default 0 1 2); the first one's run is RUN itself, the others RUN/seeds/seed-N")
    seeds.add_argument("--out", type=Path, default=None, help="run folder RUN (default runs/<profile>-<dataset>)")
    seeds.add_argument("--json", type=Path, default=None, help="also write the table as JSON to this file")
    seeds.add_argument("--quiet", action="store_true", help="no progress bar while the data are made")
    seeds.set_defaults(func=_course_seeds)
    student = course_commands.add_parser("student", help="write student copies without solutions")
    student.add_argument("--out", required=True, type=Path)
    student.add_argument("--source", type=Path, default=None, help="notebooks folder (default: the course's)")
    student.set_defaults(func=_course_student)
    nbg = course_commands.add_parser("nbgrader", help="write an nbgrader course folder (config, README, source/<chapter>/)")
    nbg.add_argument("--out", required=True, type=Path, help="the course folder to write (outside the notebooks folder)")
    nbg.add_argument("--source", type=Path, default=None, help="notebooks folder (default: the course's)")
    nbg.add_argument("--chapters", nargs="*", default=None, help="only these chapters (e.g. 00 03)")
    nbg.add_argument("--course-id", default=COURSE_ID, help=f"nbgrader's course id (default {COURSE_ID})")
    nbg.add_argument("--kernel", default="python3", help="Jupyter kernel that runs the chapters (default python3)")
    nbg.add_argument("--timeout", type=_positive, default=CELL_TIMEOUT_S,
                     help=f"seconds a cell may run when nbgrader executes a chapter (default {CELL_TIMEOUT_S}: chapter 05 trains)")
    nbg.add_argument("--force", action="store_true", help="rewrite an existing nbgrader_config.py and README.md")
    nbg.set_defaults(func=_course_nbgrader)
    tag = course_commands.add_parser("nbgrader-tag", help="write the nbgrader cell metadata into the chapters (idempotent)")
    tag.add_argument("--source", type=Path, default=None, help="notebooks folder (default: the course's)")
    tag.add_argument("--check", action="store_true", help="write nothing; exit 1 if a chapter's metadata is out of date")
    tag.set_defaults(func=_course_nbgrader_tag)


def _user_errors() -> tuple[type[BaseException], ...]:
    """Exception types that mean bad input: printed as one line."""
    errors: list[type[BaseException]] = [UserError, FileNotFoundError, ValueError]
    return tuple(errors)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = build_parser().parse_args(argv)
    if args.verbose:  # before any command imports TensorFlow (ctutils.tfimport reads it then)
        from ctutils.tfimport import LOG_ENV

        os.environ[LOG_ENV] = "1"
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except _user_errors() as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except OSError as error:  # DownloadError and friends derive from OSError/RuntimeError
        print(f"error: {error}", file=sys.stderr)
        return 2
    except RuntimeError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
