"""What the chapters use to run on their own: profiles, paths, artefacts built when missing, key metrics.

Every chapter (``notebooks/NN_topic.ipynb``) starts the same way::

    profile = "quick"        # the cell tagged "parameters" (papermill injects other values)
    dataset = "synthetic"
    run_dir = None
    ...
    cfg = course.course_config(profile, dataset, chapter="05_training", run_dir=run_dir, ...)
    cache = course.ensure_cache(cfg)          # builds the dataset and the cache if missing

so that each chapter runs on its own, in JupyterLab, in Colab and in batch.

Profiles (:data:`PROFILES`)
    ``quick``: 2 × 100 synthetic studies at 256 × 256 in-plane, cached at 64 × 64 × 32, a small
    same-padding CNN trained for a few epochs: the whole course runs on a laptop CPU in minutes.
    ``full``: 2 × 100 studies at 512 × 512 (or the real MosMedData subset), 128 × 128 × 64 and the
    reference CNN and recipe (100 epochs with early stopping): a GPU is advised.

Paths (:func:`course_config`), relative to the repository root (:func:`find_root`: the folder named
by the environment variable ``CT3D_COURSE_ROOT`` when it is set, as an nbgrader course folder's
``nbgrader_config.py`` does; else found by walking up from the current folder to ``pyproject.toml``, so
notebooks run in ``notebooks/`` find ``../data``; in Colab, where there is no checkout above the current
folder, the current folder is the root). A folder passed as a parameter (``data_dir``, ``cache_dir``,
``run_dir``) is taken as given: a relative one from the current folder, where the notebook runs::

    data/synthetic-quick/                     the dataset (CT-0/, CT-23/), or data/mosmeddata/
    data/real-ct/lung1.nii.gz                 one real chest CT, in the repository (:func:`real_ct_path`)
    data/cache/synthetic-quick-64x64x32/      the preprocessed cache (volumes.npy, manifest.csv)
    runs/quick-synthetic/                     the run folder RUN (= the batch runner's OUT):
        model.keras, history.csv, …           the profile's trained model (ctutils.training.train)
        metrics.json                          key metrics, one entry per chapter (CourseConfig.record)
        figures/NN_topic-NAME.png             key figures (CourseConfig.save_figure)
        notebooks/NN_topic.ipynb              executed chapters (batch runs only)
        summary.md                            per chapter: status, time, metrics, figures

The tools around the chapters live beside this module: the batch runner
(``python -m ctutils course run``, :mod:`ctutils.runner`), student copies (``python -m ctutils course
student``, :mod:`ctutils.student`), nbgrader (``python -m ctutils course nbgrader``,
:mod:`ctutils.classroom`) and the Colab badges (:mod:`ctutils.colab`).

This module imports neither TensorFlow nor papermill at import time.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ctutils.atomic import atomic_path, write_json
from ctutils.runs import FIGURES_DIR, METRICS_FILE, MODEL_FILE, STATE_FILE

__all__ = [
    "DATASETS",
    "PROFILES",
    "REAL_CT_FILE",
    "ROOT_ENV",
    "CourseConfig",
    "Profile",
    "course_config",
    "ensure_cache",
    "ensure_dataset",
    "ensure_model",
    "find_root",
    "list_chapters",
    "notebooks_dir",
    "read_metrics",
    "real_ct_path",
    "record_metrics",
    "select_chapters",
]

#: Environment variable naming the course repository's root; wins over the search from the current
#: folder (:func:`find_root`). ``python -m ctutils course nbgrader`` sets it in ``nbgrader_config.py``,
#: since nbgrader runs the chapters in ``autograded/<student>/<assignment>/`` of its own folder.
ROOT_ENV = "CT3D_COURSE_ROOT"

_CHAPTER_NAME = re.compile(r"^(\d\d)_[A-Za-z0-9_-]+\.ipynb$")
REAL_CT_FILE = "data/real-ct/lung1.nii.gz"  # relative to the repository root; see data/real-ct/README.md


# ----------------------------------------------------------------------------- profiles


@dataclass(frozen=True)
class Profile:
    """How big a course run is: the synthetic dataset, the cache shape, the model and its training.

    Attributes
    ----------
    name : str
        ``"quick"`` or ``"full"``.
    description : str
        One line for learners.
    n_normal, n_abnormal : int
        Synthetic studies per class (CT-0 / CT-23); the real MosMedData subset has 100 + 100.
    size : int
        In-plane size of the synthetic studies in voxels (MosMedData: 512).
    data_seed : int
        Seed of the synthetic dataset and of the train/val/test split (fixed, so that every
        chapter sees the same data; the chapters' ``seed`` parameter seeds the training).
    shape : tuple of 3 int
        Preprocessed volume shape (X, Y, Z) in voxels: the cache and the model input.
    model : str
        A name of ``ctutils.models.MODELS``.
    model_kwargs : dict
        Extra arguments of the model builder (e.g. fewer filters).
    recipe : str
        A name of ``ctutils.training.RECIPES`` (``"reference"`` or ``"improved"``).
    epochs, batch_size : int
        Training length (early stopping may end it sooner) and batch size.
    """

    name: str
    description: str
    n_normal: int
    n_abnormal: int
    size: int
    data_seed: int
    shape: tuple[int, int, int]
    model: str
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    recipe: str = "improved"
    epochs: int = 10
    batch_size: int = 4

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields (lists for tuples)."""
        return json.loads(json.dumps(asdict(self)))


#: The course's run sizes. ``quick`` is sized for a laptop CPU; ``full`` is the reference's setting,
#: for a GPU (a reference epoch on a CPU is slow). Their measured times: docs/measurements.md and
#: every batch run's summary.md.
PROFILES: dict[str, Profile] = {
    "quick": Profile(
        name="quick",
        description="2 × 100 synthetic studies at 256 px, 64 × 64 × 32 voxels, a small CNN: minutes on a laptop CPU",
        # 100 + 100 (140 / 30 / 30 scans): 30-scan validation and test splits keep the ROC-AUC's
        # 95 % interval within about ±0.15. 20 epochs: by then the validation loss has levelled
        # off on the graded data (the seeds measured: docs/measurements.md).
        n_normal=100,
        n_abnormal=100,
        size=256,
        data_seed=0,
        shape=(64, 64, 32),
        model="cnn3d-small",  # same padding, filters (16, 32, 64, 128), dense 128, BN momentum 0.9
        model_kwargs={},
        recipe="improved",
        epochs=20,
        batch_size=4,
    ),
    "full": Profile(
        name="full",
        description="2 × 100 studies at 512 px (as MosMedData), 128 × 128 × 64 voxels, the reference CNN and recipe: GPU advised",
        n_normal=100,
        n_abnormal=100,
        size=512,
        data_seed=0,
        shape=(128, 128, 64),
        model="cnn3d",
        model_kwargs={},
        recipe="reference",
        epochs=100,
        batch_size=2,
    ),
}

#: The datasets a course run can use: the registry entry (``ctutils/registry.json``) and the
#: folder under ``data/`` (``{profile}`` is replaced by the profile's name: the synthetic
#: dataset's size depends on it, the real one does not).
DATASETS: dict[str, dict[str, str]] = {
    "synthetic": {
        "registry": "synthetic",
        "folder": "synthetic-{profile}",
        "description": "embedded synthetic chest-CT phantoms (computer-generated; generated offline in about a minute)",
    },
    "mosmeddata": {
        "registry": "mosmeddata-ct0-ct23",
        "folder": "mosmeddata",
        "description": "the real MosMedData subset of the Keras example (CT-0 + CT-23, 2.1 GB download, CC BY-NC-ND 3.0)",
    },
}


# ----------------------------------------------------------------------------- paths


def find_root(start: str | os.PathLike[str] | None = None) -> Path:
    """The course repository's root: the first folder from ``start`` upwards with ``pyproject.toml`` and ``ctutils/``.

    Parameters
    ----------
    start : path-like, optional
        Where to start (default: the current folder). Notebooks run in ``notebooks/``, so the
        root is usually its parent. Without ``start``, the environment variable
        ``CT3D_COURSE_ROOT`` (:data:`ROOT_ENV`), when set, names the root instead: how chapters
        run by nbgrader in a course folder outside the repository find its data and runs.

    Returns
    -------
    Path
        The root, or ``start`` itself (resolved) when no folder above it is a checkout of the
        course (e.g. Colab before the set-up cell changed folder).

    Raises
    ------
    FileNotFoundError
        ``CT3D_COURSE_ROOT`` is set but names no folder.

    Examples
    --------
    >>> import tempfile
    >>> here = Path(tempfile.mkdtemp()).resolve()
    >>> find_root(here) == here
    True
    """
    if start is None and os.environ.get(ROOT_ENV):
        named = Path(os.environ[ROOT_ENV]).expanduser().resolve()
        if not named.is_dir():
            raise FileNotFoundError(f"{named}: the course root named by {ROOT_ENV} is not a folder")
        return named
    here = Path.cwd() if start is None else Path(start)
    here = here.resolve()
    for folder in (here, *here.parents):
        if (folder / "pyproject.toml").is_file() and (folder / "ctutils").is_dir():
            return folder
    return here


def notebooks_dir() -> Path:
    """The folder of the course's chapters: ``notebooks/`` beside the ``ctutils`` package, else under :func:`find_root`."""
    beside = Path(__file__).resolve().parents[1] / "notebooks"
    return beside if beside.is_dir() else find_root() / "notebooks"


def real_ct_path() -> Path:
    """The real chest CT that ships with the course: ``data/real-ct/lung1.nii.gz`` of the repository.

    A lung-cancer patient with a small nodule, not pneumonia: 256 x 199 x 48 int16 HU, stored
    L, P, S (provenance, licence and SHA-256 in ``data/real-ct/README.md``). Chapter 01 shows it
    beside a phantom and chapter 06 runs single-scan prediction on it.

    Returns
    -------
    Path
        Beside the ``ctutils`` package in a checkout, else under :func:`find_root` (as
        :func:`notebooks_dir`); the path may not exist outside a checkout of the course.

    Examples
    --------
    >>> real_ct_path().parts[-3:]
    ('data', 'real-ct', 'lung1.nii.gz')
    """
    beside = Path(__file__).resolve().parents[1] / REAL_CT_FILE
    return beside if beside.is_file() else find_root() / REAL_CT_FILE


@dataclass(frozen=True)
class CourseConfig:
    """Where a chapter reads and writes, and what it trains; made by :func:`course_config`.

    Attributes
    ----------
    profile : Profile
        The run size (:data:`PROFILES`).
    dataset : str
        ``"synthetic"`` or ``"mosmeddata"`` (:data:`DATASETS`).
    root : Path
        The repository root (or the current folder in Colab).
    data_dir, cache_dir, run_dir : Path
        Dataset folder, cache folder, run folder (absolute).
    seed : int
        Training seed (weights, shuffling, augmentation).
    chapter : str or None
        The chapter's file stem (e.g. ``"00_setup"``): the key of its metrics and figures.
    """

    profile: Profile
    dataset: str
    root: Path
    data_dir: Path
    cache_dir: Path
    run_dir: Path
    seed: int = 0
    chapter: str | None = None

    @property
    def registry_name(self) -> str:
        """The dataset's name in ``ctutils/registry.json``."""
        return DATASETS[self.dataset]["registry"]

    @property
    def preprocess(self) -> Any:
        """The :class:`ctutils.preprocess.PreprocessConfig` of the profile (course preset, ``profile.shape``)."""
        from ctutils.preprocess import PreprocessConfig

        return PreprocessConfig(shape=self.profile.shape)

    @property
    def model_path(self) -> Path:
        """``RUN/model.keras``: the profile's trained model."""
        return self.run_dir / MODEL_FILE

    @property
    def metrics_path(self) -> Path:
        """``RUN/metrics.json``: key metrics per chapter, read by the batch runner's summary."""
        return self.run_dir / METRICS_FILE

    @property
    def figures_dir(self) -> Path:
        """``RUN/figures``: key figures, listed in the batch runner's summary."""
        return self.run_dir / FIGURES_DIR

    def train_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of ``ctutils.training.train`` for the profile's model.

        Examples
        --------
        >>> course_config("full").train_kwargs()["model"]
        'cnn3d'
        """
        p = self.profile
        return {
            "model": p.model,
            "recipe": p.recipe,
            "epochs": p.epochs,
            "batch_size": p.batch_size,
            "seed": self.seed,
            "model_kwargs": dict(p.model_kwargs),
        }

    def seed_run_dir(self, seed: int) -> Path:
        """The run folder of a training seed: ``RUN`` for the chapter's seed, else ``RUN/seeds/seed-N``.

        The seeds study (chapter 06, ``python -m ctutils course seeds``) trains the profile's
        model with the same recipe and epochs for other seeds; the chapter's own run is one of them.

        Examples
        --------
        >>> cfg = course_config("quick", root="/course")
        >>> cfg.relative(cfg.seed_run_dir(0)), cfg.relative(cfg.seed_run_dir(2))
        ('runs/quick-synthetic', 'runs/quick-synthetic/seeds/seed-2')
        """
        return self.run_dir if int(seed) == self.seed else self.run_dir / "seeds" / f"seed-{int(seed)}"

    def seed_study(self, seeds: Sequence[int] = (0, 1, 2), *, verbose: str | int = 0,
                   on_run: Any = None, progress: bool = False) -> list[Any]:
        """Train (or reuse) the profile's model for each seed, same recipe and epochs; score val and test.

        See :func:`ctutils.experiments.seed_study`; the runs live in :meth:`seed_run_dir`.
        """
        from ctutils.experiments import seed_study

        ensure_cache(self, progress=progress)
        kwargs = {k: v for k, v in self.train_kwargs().items() if k != "seed"}
        return seed_study(self.cache_dir, {int(s): self.seed_run_dir(s) for s in seeds}, train_kwargs=kwargs,
                          verbose=verbose, on_run=on_run)

    def relative(self, path: str | os.PathLike[str]) -> str:
        """``path`` relative to the root when it lies inside it (for printing), else absolute."""
        from ctutils.frontend import display_path

        return display_path(path, root=self.root)

    def describe(self) -> str:
        """A few lines for learners: profile, dataset and folders (relative to the root)."""
        p = self.profile
        shape = " × ".join(str(n) for n in p.shape)
        lines = [
            f"profile   {p.name}: {p.description}",
            f"dataset   {self.dataset}: {DATASETS[self.dataset]['description']}",
            f"data      {self.relative(self.data_dir)}",
            f"cache     {self.relative(self.cache_dir)}  ({shape} voxels)",
            f"run       {self.relative(self.run_dir)}  (model {p.model}, recipe {p.recipe}, "
            f"{p.epochs} epochs, batch {p.batch_size}, seed {self.seed})",
        ]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.describe()

    def record(self, **values: Any) -> Path:
        """Add key metrics of this chapter to ``RUN/metrics.json`` (see :func:`record_metrics`)."""
        return record_metrics(self.run_dir, self._chapter(), values)

    def save_figure(self, fig: Any, name: str, *, dpi: int = 80) -> Path:
        """Save a key figure as ``RUN/figures/<chapter>-<name>.png`` (atomic) and return its path."""
        if not re.fullmatch(r"[A-Za-z0-9_-]+", name):
            raise ValueError(f"figure name {name!r}: use letters, digits, '_' and '-' only")
        path = self.figures_dir / f"{self._chapter()}-{name}.png"
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=dpi, bbox_inches="tight")
        return path

    def _chapter(self) -> str:
        if not self.chapter:
            raise ValueError("this CourseConfig has no chapter: pass chapter='NN_topic' to course_config()")
        return self.chapter


def _given(value: Any) -> bool:
    return value is not None and value != ""


def _as_given(value: str | os.PathLike[str]) -> Path:
    """A folder passed as a parameter: ``~`` expanded, a relative path taken from the current folder."""
    return Path(value).expanduser().resolve()


def course_config(
    profile: str = "quick",
    dataset: str = "synthetic",
    *,
    chapter: str | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    run_dir: str | os.PathLike[str] | None = None,
    seed: int | None = None,
    root: str | os.PathLike[str] | None = None,
) -> CourseConfig:
    """Resolve a chapter's parameters into folders and settings.

    Parameters
    ----------
    profile : {"quick", "full"}
        Run size (:data:`PROFILES`).
    dataset : {"synthetic", "mosmeddata"}
        Which data (:data:`DATASETS`).
    chapter : str, optional
        The chapter's file stem, e.g. ``"00_setup"`` (needed for :meth:`CourseConfig.record`).
    data_dir, cache_dir, run_dir : path-like, optional
        Override a folder; None (or ``""``) means the default under the root:
        ``data/<dataset folder>``, ``data/cache/<dataset folder>-XxYxZ``, ``runs/<profile>-<dataset>``.
        One rule for both: a default is relative to the root, a folder passed here is taken as
        given, so a relative one is relative to the current folder (where a notebook runs:
        ``papermill … --cwd notebooks -p run_dir runs/x`` writes to ``notebooks/runs/x``); ``~``
        is expanded. Every folder of the result is absolute.
    seed : int, optional
        Training seed (default 0).
    root : path-like, optional
        Repository root (default :func:`find_root` from the current folder).

    Returns
    -------
    CourseConfig

    Raises
    ------
    ValueError
        Unknown profile or dataset (the message lists the known ones), or a seed that is not an integer.

    Examples
    --------
    >>> cfg = course_config("quick", "synthetic", root="/course")
    >>> cfg.relative(cfg.data_dir), cfg.relative(cfg.cache_dir), cfg.relative(cfg.run_dir)
    ('data/synthetic-quick', 'data/cache/synthetic-quick-64x64x32', 'runs/quick-synthetic')
    """
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; choose one of {', '.join(PROFILES)}")
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; choose one of {', '.join(DATASETS)}")
    if seed is None:
        seed = 0
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"seed must be an integer, got {seed!r}")
    prof = PROFILES[profile]
    base = find_root() if root is None else Path(root).resolve()
    folder = DATASETS[dataset]["folder"].format(profile=profile)
    shape = "x".join(str(n) for n in prof.shape)
    data = _as_given(data_dir) if _given(data_dir) else base / "data" / folder
    cache = _as_given(cache_dir) if _given(cache_dir) else base / "data" / "cache" / f"{folder}-{shape}"
    run = _as_given(run_dir) if _given(run_dir) else base / "runs" / f"{profile}-{dataset}"
    return CourseConfig(profile=prof, dataset=dataset, root=base, data_dir=data, cache_dir=cache,
                        run_dir=run, seed=seed, chapter=chapter or None)


# ----------------------------------------------------------------------------- artefacts


def _synthetic_complete(cfg: CourseConfig) -> bool:
    """True when ``synthetic.json`` says the generator finished this profile's dataset and every study exists."""
    from ctutils.datasets import SYNTHETIC_MARKER
    from ctutils.phantoms import PHANTOM_VERSION
    from ctutils.synthetic import LAYOUTS

    path = cfg.data_dir / SYNTHETIC_MARKER
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return False
    p = cfg.profile
    wanted = {"complete": True, "version": PHANTOM_VERSION, "seed": p.data_seed, "normal": p.n_normal,
              "abnormal": p.n_abnormal, "size": p.size, "layout": "keras-example",
              "grades": list(LAYOUTS["keras-example"]["grades"])}
    if not isinstance(meta, dict) or any(meta.get(k) != v for k, v in wanted.items()):
        return False
    if meta.get("shortcut_marker", False):  # the teaching flaw is never the course's dataset
        return False
    studies = meta.get("studies", [])
    return len(studies) == p.n_normal + p.n_abnormal and all(
        (cfg.data_dir / str(s.get("path", ""))).is_file() for s in studies
    )


def ensure_dataset(cfg: CourseConfig, *, progress: bool = True) -> Path:
    """Make sure the dataset folder holds the data; cheap when it does.

    Synthetic: nothing when ``synthetic.json`` records this profile's complete dataset, else
    :func:`ctutils.synthetic.generate_dataset` (which skips the studies that exist).
    MosMedData: :func:`ctutils.download.download_dataset` (it returns at once when the data is
    extracted or placed by hand; offline, its error says how to place the files by hand).

    Returns
    -------
    Path
        ``cfg.data_dir``.
    """
    if cfg.dataset == "synthetic":
        if _synthetic_complete(cfg):
            return cfg.data_dir
        from ctutils.synthetic import generate_dataset

        p = cfg.profile
        generate_dataset(cfg.data_dir, normal=p.n_normal, abnormal=p.n_abnormal, seed=p.data_seed,
                         size=p.size, progress=progress)
    else:
        from ctutils.download import download_dataset

        download_dataset(cfg.registry_name, cfg.data_dir, progress=progress)
    return cfg.data_dir


def ensure_cache(cfg: CourseConfig, *, progress: bool = True) -> Any:
    """Make sure the dataset and its preprocessed cache exist (chapter 02); cheap when they do.

    Returns
    -------
    ctutils.cache.Cache
        The opened cache (``cache.info["reused"]`` tells whether it was already current).
    """
    from ctutils.cache import build_cache

    ensure_dataset(cfg, progress=progress)
    return build_cache(cfg.data_dir, cfg.cache_dir, config=cfg.preprocess, dataset=cfg.registry_name,
                       seed=cfg.profile.data_seed, progress=progress)


def ensure_model(cfg: CourseConfig, *, verbose: str | int = 2) -> Path:
    """Return ``RUN/model.keras`` of a *finished* training run, training or resuming it first (chapter 05).

    A complete run (``RUN/state.json`` says all epochs or early stopping are done) is used as it
    is, in a fraction of a second. An interrupted run is resumed from its last checkpoint rather
    than used half-trained. A ``model.keras`` without ``state.json`` (copied by hand) is used as
    it is. Delete the run folder to retrain from scratch.

    Parameters
    ----------
    verbose : "auto", 0, 1 or 2
        Passed to ``model.fit`` (2: one line per epoch).
    """
    state_path = cfg.run_dir / STATE_FILE
    if cfg.model_path.is_file() and not state_path.is_file():
        return cfg.model_path
    if cfg.model_path.is_file():
        try:
            state = json.loads(state_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            state = {}  # unreadable: train() below says what is wrong with it
        if state.get("finished") or state.get("stop_reason") in ("early_stopping", "epochs"):
            return cfg.model_path  # a finished run, whatever its epoch count (chapter 05 may have changed it)
    ensure_cache(cfg)
    from ctutils.training import train

    return train(cfg.cache_dir, cfg.run_dir, **cfg.train_kwargs(), verbose=verbose, resume=True).model_path


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (str, bool)) or value is None:
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if hasattr(value, "item"):  # numpy scalars and 0-d arrays
        return _jsonable(value.item())
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise ValueError(f"metric value {value!r} ({type(value).__name__}) cannot be written as JSON")


def read_metrics(run_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """The key metrics of a run, ``run_dir/metrics.json``, by chapter; ``{}`` when there are none yet.

    Raises
    ------
    ValueError
        The file is unreadable or not a JSON object (the message names it).
    """
    path = Path(run_dir) / METRICS_FILE
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(f"{path}: unreadable metrics file ({error}); delete it to start afresh") from error
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object of chapters, got {type(data).__name__}")
    return data


def record_metrics(run_dir: str | os.PathLike[str], chapter: str, values: Mapping[str, Any]) -> Path:
    """Merge ``values`` into ``run_dir/metrics.json`` under ``chapter`` (atomic write).

    Parameters
    ----------
    run_dir : path-like
        The run folder.
    chapter : str
        The chapter's file stem, e.g. ``"05_training"``.
    values : mapping of str to number, str, bool or list
        Key metrics (numpy scalars are converted; NaN and inf become null).

    Returns
    -------
    Path
        The metrics file.

    Examples
    --------
    >>> import tempfile
    >>> run = Path(tempfile.mkdtemp())
    >>> path = record_metrics(run, "00_setup", {"n_scans": 80})
    >>> json.loads(path.read_text())
    {'00_setup': {'n_scans': 80}}
    """
    data = read_metrics(run_dir)
    entry = dict(data.get(chapter, {}))
    entry.update(_jsonable(dict(values)))
    data[chapter] = entry
    path = write_json(Path(run_dir) / METRICS_FILE, data)
    return path


# ----------------------------------------------------------------------------- chapters


def list_chapters(source: str | os.PathLike[str] | None = None) -> list[Path]:
    """The chapters ``NN_topic.ipynb`` of a notebooks folder, in order.

    Raises
    ------
    FileNotFoundError
        If the folder does not exist or holds no chapter.
    """
    folder = notebooks_dir() if source is None else Path(source)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: notebooks folder not found")
    chapters = sorted(p for p in folder.iterdir() if p.is_file() and _CHAPTER_NAME.match(p.name))
    if not chapters:
        raise FileNotFoundError(f"{folder}: no chapter notebooks (NN_topic.ipynb) found")
    return chapters


def select_chapters(chapters: list[Path], wanted: Sequence[str] | None) -> list[Path]:
    """The chapters of ``chapters`` named in ``wanted`` by number or name (``["00", "01_data"]``); all when empty.

    Raises
    ------
    ValueError
        An unknown chapter (the message lists the chapters).
    """
    if not wanted:
        return chapters
    chosen = []
    for item in wanted:
        text = str(item)
        matches = [p for p in chapters if text in (p.name, p.stem) or p.name.startswith(f"{text}_")]
        if not matches:
            known = ", ".join(p.stem for p in chapters)
            raise ValueError(f"unknown chapter {text!r}; the chapters are {known}")
        chosen.extend(m for m in matches if m not in chosen)
    return sorted(chosen)
