"""The identity of a run, defined once: where its Hydra folder and its record live.

A run is one (study, dataset, model, loss, seed). Its name is
``[<study>/]<dataset>/<model>/<loss>/seed<k>``; the Hydra output folder is
``<paths.log_dir>/<name>`` and the run record ``<paths.results_dir>/<name>/metrics.json``.
The config reaches this function through the ``lossd.run_name`` resolver (``conf/train.yaml``:
``run_name``), so experiments set only ``experiment_name`` and never spell a path.
"""

from dataclasses import dataclass
from pathlib import Path

from lossd.errors import InvalidOptionError

__all__ = ["RunIdentity", "run_name"]


@dataclass(frozen=True)
class RunIdentity:
    """One cell of a study: the five values that name a run.

    Args:
        study: The experiment the run belongs to (``experiment_name``); None for a lone run.
        dataset: Dataset name (``dataset.name``).
        model: Model name (``model.name``).
        loss: Loss name (``loss.name``).
        seed: Random seed.
    """

    study: str | None
    dataset: str
    model: str
    loss: str
    seed: int

    def __post_init__(self) -> None:
        for field_name in ("dataset", "model", "loss"):
            value = getattr(self, field_name)
            if not value or "/" in str(value):
                raise InvalidOptionError(
                    f"run identity: {field_name}={value!r}; expected a non-empty name without '/'"
                )
        if self.study is not None and (not self.study or self.study.startswith("/")):
            raise InvalidOptionError(
                f"run identity: experiment_name={self.study!r}; expected a relative name or null"
            )

    @property
    def name(self) -> str:
        """``[<study>/]<dataset>/<model>/<loss>/seed<k>``."""
        cell = f"{self.dataset}/{self.model}/{self.loss}/seed{self.seed}"
        return f"{self.study}/{cell}" if self.study else cell

    def record_dir(self, results_dir: str | Path) -> Path:
        """The folder of this run's ``metrics.json`` under ``paths.results_dir``."""
        return Path(results_dir) / self.name

    def output_dir(self, log_dir: str | Path) -> Path:
        """This run's Hydra output folder under ``paths.log_dir``."""
        return Path(log_dir) / self.name


def run_name(study: str | None, dataset: str, model: str, loss: str, seed: int) -> str:
    """The run name of :class:`RunIdentity` (the ``lossd.run_name`` config resolver)."""
    return RunIdentity(study or None, str(dataset), str(model), str(loss), int(seed)).name
