"""Every knob of a search, in one frozen object built once by the CLI (or by hand in Python)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

from poptune import uri
from poptune.data import DEDUPE_CHOICES, DataSource
from poptune.errors import UsageError

SCHEDULERS = ("asha", "fifo")
SAMPLERS = ("tpe", "random")
# --time-budget without --num-samples: the budget alone decides when the search stops.
BUDGET_SAMPLE_CAP = 100_000
# URI schemes pyarrow's filesystem layer (Ray's storage backend) understands.
STORAGE_SCHEMES = ("s3", "gs", "gcs", "hdfs", "abfs", "abfss", "file")
# Tracking URI schemes MLflow's client understands; a plain path means a local file store.
MLFLOW_SCHEMES = ("file", "http", "https", "sqlite", "postgresql", "mysql", "mssql", "databricks")


@dataclass(frozen=True)
class SearchSettings:
    data: DataSource = field(default_factory=DataSource)
    num_samples: int = 24
    max_epochs: int = 12
    scheduler: str = "asha"
    sampler: str = "tpe"
    grace_period: int = 2
    max_concurrent: int | None = None
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    address: str | None = None
    storage: str = "runs"
    name: str = "poptune"
    seed: int = 0
    dedupe: str = "track_id"
    max_failures: int = 3
    study_storage: str | None = None
    resume: bool = False
    retry_errored: bool = False
    force: bool = False
    time_budget: float | None = None  # seconds; stop starting trials once spent
    # Log each trial (and the analysis) to this MLflow tracking server or store; a plain path
    # is made an absolute file: URI, so a later `poptune analyze` elsewhere finds the same store.
    mlflow_tracking_uri: str | None = None

    def __post_init__(self) -> None:
        _positive_int("num-samples", self.num_samples)
        _positive_int("max-epochs", self.max_epochs)
        _positive_int("grace-period", self.grace_period)
        if self.scheduler not in SCHEDULERS:
            raise UsageError(
                f"--scheduler must be one of {', '.join(SCHEDULERS)}, but got {self.scheduler!r}"
            )
        if self.sampler not in SAMPLERS:
            raise UsageError(
                f"--sampler must be one of {', '.join(SAMPLERS)}, but got {self.sampler!r}"
            )
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
        if self.dedupe not in DEDUPE_CHOICES:
            raise UsageError(
                f"--dedupe must be one of {', '.join(DEDUPE_CHOICES)}, but got {self.dedupe!r}"
            )
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
        return "://" not in self.storage or self.storage.startswith("file://")

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


def parse_duration(text: str) -> float:
    """Seconds from ``90``, ``90s``, ``10m``, ``1.5h``; a ValueError naming the forms otherwise."""
    units = {"s": 1, "m": 60, "h": 3600}
    value = text.strip().lower()
    factor = units.get(value[-1:])
    number = value[:-1] if factor else value
    try:
        seconds = float(number) * (factor or 1)
    except ValueError:
        raise ValueError(
            f"expected a duration such as 90, 90s, 10m or 2h, but got {text!r}"
        ) from None
    return seconds


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


def _positive_int(option: str, value: object) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise UsageError(f"--{option} must be a positive integer, but got {value!r}")
