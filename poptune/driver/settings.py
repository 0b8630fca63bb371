"""Every knob of a search, in one frozen object built once by the CLI (or by hand in Python)."""

from __future__ import annotations

import math
import secrets
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from poptune import uri
from poptune.data import DEDUPE_CHOICES, DataSource
from poptune.errors import UsageError
from poptune.options import Option, check_choices, integer, number, option

if TYPE_CHECKING:
    from poptune.storage.location import ExperimentLocation

SCHEDULERS = ("asha", "fifo")
SAMPLERS = ("tpe", "random")
# --time-budget without --num-samples: the budget alone decides when the search stops.
BUDGET_SAMPLE_CAP = 100_000
DEFAULT_NUM_SAMPLES = 24
# More epochs than any trial here could run (at a second an epoch, 28 hours): a larger number is
# a typo or a stand-in for "no limit", which is what --time-budget is for.
MAX_EPOCHS_CAP = 100_000
# URI schemes pyarrow's filesystem layer (Ray's storage backend) understands.
STORAGE_SCHEMES = ("s3", "gs", "gcs", "hdfs", "abfs", "abfss", "file")
# Tracking URI schemes MLflow's client understands; a plain path means a local file store.
MLFLOW_SCHEMES = ("file", "http", "https", "sqlite", "postgresql", "mysql", "mssql", "databricks")


# The options that build SearchSettings.data (a DataSource): a CSV, or the built-in dataset.
DATA_OPTIONS = (
    Option("data", metavar="PATH",
           help="tracks CSV (.csv or .csv.gz); default: the built-in synthetic dataset"),
    Option("synthetic_rows", parse=integer, metavar="N",
           help="rows of the built-in dataset when --data is not given (default: 30000)"),
    Option("synthetic_difficulty", metavar="easy|real",
           help="noise of the built-in dataset: easy (default) or real (as noisy as the Kaggle "
           "file)"),
)  # fmt: skip


def parse_duration(text: str) -> float:
    """Seconds from ``90``, ``90s``, ``10m``, ``1.5h``; a ValueError naming the forms otherwise."""
    units = {"s": 1, "m": 60, "h": 3600}
    value = text.strip().lower()
    factor = units.get(value[-1:])
    amount = value[:-1] if factor else value
    try:
        seconds = float(amount) * (factor or 1)
    except ValueError:
        raise ValueError(
            f"expected a duration such as 90, 90s, 10m or 2h, but got {text!r}"
        ) from None
    return seconds


@dataclass(frozen=True)
class SearchSettings:
    """Each field but ``data`` is also an option of `poptune search` (and of its --config file),
    listed by --help in this order."""

    data: DataSource = field(default_factory=DataSource)
    # fmt: off
    # One option a field, as a table: default, metavar, parser or choices, help.
    # None: 24, or with a time budget as many as it allows (BUDGET_SAMPLE_CAP).
    num_samples: int = option(None, "N", parse=integer,
        help="trials to run (default: 24; with --time-budget, as many as the budget allows)")
    time_budget: float | None = option(None, "SECONDS|10m|2h", parse=parse_duration,  # seconds
        help="stop the search once this much time is spent: no new trials, and the running "
        "ones end after the epoch they are in")
    max_epochs: int = option(12, "E", parse=integer,
        help="epochs of a trial that is not stopped early (default: 12)")
    scheduler: str = option("asha", choices=SCHEDULERS,
        help="asha stops weak trials early (default); fifo runs every trial in full")
    sampler: str = option("tpe", choices=SAMPLERS,
        help="tpe: Optuna's TPE chooses each trial (default); random: a baseline to compare with")
    grace_period: int = option(2, "E", parse=integer,
        help="epochs every trial gets before ASHA may stop it (default: 2)")
    max_concurrent: int | None = option(None, "K", parse=integer,
        help="trials running at once (default: as many as the cluster fits)")
    cpus_per_trial: float = option(1.0, "C", parse=number, help="CPUs per trial (default 1)")
    gpus_per_trial: float = option(0.0, "G", parse=number,
        help="GPUs per trial, fractions allowed (default 0)")
    address: str | None = option(None, "ADDR",
        help="Ray cluster to join (default: $RAY_ADDRESS, else a private local Ray)")
    storage: str = option("runs", "PATH|URI",
        help="where experiments live: a path or s3://, gs:// URI (default: ./runs)")
    # None: a new name for each search, so that two searches in a row never meet.
    name: str = option(None, "NAME",
        help="experiment name (default: poptune-<date>-<time>-<4 hex digits>)")
    seed: int = option(0, "S", parse=integer, help="seed of split, sampler, models (default 0)")
    dedupe: str = option("track_id", choices=DEDUPE_CHOICES,
        help="keep one row per track_id (default) or none (the reference's protocol)")
    max_failures: int = option(3, "N", parse=integer,
        help="retries of a failed trial from its last checkpoint (default: 3)")
    study_storage: str | None = option(None, "URL",
        help="SQLAlchemy URL of a database for the Optuna study (default: kept in memory and "
        "copied into the experiment as optuna_study.db)")
    # Log each trial (and the analysis) to this MLflow tracking server or store; a plain path
    # is made an absolute file: URI, so a later `poptune analyze` elsewhere finds the same store.
    mlflow_tracking_uri: str | None = option(None, "URI",
        help="also log every trial and the analysis to MLflow there: a folder, file:, sqlite:, "
        "http(s): URI (needs pip install 'poptune[mlflow]')")
    resume: bool = option(False, help="continue the experiment --name")
    retry_errored: bool = option(False, help="with --resume: rerun errored trials")
    force: bool = option(False, help="replace an existing experiment --name")
    # fmt: on

    def __post_init__(self) -> None:
        if self.num_samples is None:
            default = DEFAULT_NUM_SAMPLES if self.time_budget is None else BUDGET_SAMPLE_CAP
            object.__setattr__(self, "num_samples", default)
        if self.name is None:
            object.__setattr__(self, "name", default_name())
        _positive_int("num-samples", self.num_samples)
        _positive_int("max-epochs", self.max_epochs)
        if self.max_epochs > MAX_EPOCHS_CAP:
            raise UsageError(
                f"--max-epochs must be at most {MAX_EPOCHS_CAP} (no trial here runs that long; "
                f"to search for a while, give --time-budget), but got {self.max_epochs}"
            )
        _positive_int("grace-period", self.grace_period)
        check_choices(self, "scheduler", "sampler")
        if self.max_concurrent is not None:
            _positive_int("max-concurrent", self.max_concurrent)
        if not (math.isfinite(self.cpus_per_trial) and self.cpus_per_trial > 0):
            raise UsageError(f"--cpus-per-trial must be > 0, but got {self.cpus_per_trial:g}")
        if not (math.isfinite(self.gpus_per_trial) and self.gpus_per_trial >= 0):
            raise UsageError(f"--gpus-per-trial must be >= 0, but got {self.gpus_per_trial:g}")
        if self.gpus_per_trial > 1 and not float(self.gpus_per_trial).is_integer():
            raise UsageError(
                f"--gpus-per-trial above 1 must be a whole number, but got {self.gpus_per_trial:g}"
            )
        check_choices(self, "dedupe")
        if self.max_failures < 0:
            raise UsageError(f"--max-failures must be >= 0, but got {self.max_failures}")
        if not self.name or "/" in self.name or self.name in (".", ".."):
            raise UsageError(f"--name must be a plain folder name, but got {self.name!r}")
        if self.time_budget is not None and not (
            math.isfinite(self.time_budget) and self.time_budget > 0
        ):
            raise UsageError(
                f"--time-budget must be a positive duration such as 90, 10m or 2h, but got "
                f"{self.time_budget:g} s"
            )
        if self.resume and self.force:
            raise UsageError("--resume and --force contradict each other; pass one of them")
        scheme = self.storage.split("://", 1)[0] if "://" in self.storage else None
        if scheme is not None and scheme not in STORAGE_SCHEMES:
            raise UsageError(
                f"--storage scheme {scheme!r} is not supported; use a local path or one of "
                + ", ".join(f"{s}://" for s in STORAGE_SCHEMES)
            )
        if self.mlflow_tracking_uri is not None:
            object.__setattr__(self, "mlflow_tracking_uri", _mlflow_uri(self.mlflow_tracking_uri))

    @property
    def storage_is_local(self) -> bool:
        return not uri.is_remote(self.storage)

    @property
    def location(self) -> ExperimentLocation:
        """Where the experiment is, for every read and write of its files."""
        from poptune.storage.location import ExperimentLocation  # pyarrow: only when needed

        return ExperimentLocation.of(self.experiment_uri)

    @property
    def storage_uri(self) -> str:
        """What Ray is given: local paths made absolute (Ray requires that)."""
        if "://" in self.storage:
            return self.storage
        return str(Path(self.storage).expanduser().resolve())

    @property
    def experiment_uri(self) -> str:
        """``<storage>/<name>``, the name inserted before a URI's query string, if any."""
        return uri.join(self.storage_uri, self.name)

    def to_dict(self) -> dict:
        return asdict(self)


# Every default name this process has handed out: random digits alone may repeat (four hex
# digits do, for 50 names in a second, about once in 50 runs), and a name must not.
_NAMES_GIVEN: set[str] = set()


def default_name() -> str:
    """``poptune-20261202-231500-3fa1``: when it started, and four random hex digits so that
    searches started in the same second, from several processes, are unlikely to share a
    folder (and a shared one is refused, not overwritten); within one process never."""
    while True:
        name = time.strftime("poptune-%Y%m%d-%H%M%S-") + secrets.token_hex(2)
        if name not in _NAMES_GIVEN:
            _NAMES_GIVEN.add(name)
            return name


def _mlflow_uri(value: object) -> str:
    """A tracking URI MLflow can open: a known scheme, or a local folder as a file: URI."""
    text = value.strip() if isinstance(value, str) else ""
    if not text:
        raise UsageError(
            f"--mlflow-tracking-uri must be a folder or a URI such as http://HOST:5000 or "
            f"sqlite:///mlflow.db, but got {value!r}"
        )
    # "databricks" alone is MLflow's name for the workspace of the default profile.
    scheme = text.split(":", 1)[0].lower() if ":" in text or text == "databricks" else None
    if scheme in MLFLOW_SCHEMES:
        return text
    if scheme is not None and "://" in text:
        raise UsageError(
            f"--mlflow-tracking-uri scheme {scheme!r} is not supported; use a local folder or "
            "one of " + ", ".join(f"{s}:" for s in MLFLOW_SCHEMES)
        )
    return Path(text).expanduser().resolve().as_uri()


def _positive_int(name: str, value: object) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise UsageError(f"--{name} must be a positive integer, but got {value!r}")
