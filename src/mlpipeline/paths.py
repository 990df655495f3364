"""Every file the pipeline reads and writes, defined once from params and passed down to the stages.

``dvc.yaml`` spells the same paths for DVC (it must: that is how DVC knows them); a test resolves dvc.yaml with
the params and checks that each stage's deps and outs there are exactly :meth:`Paths.stage_io` here.

Example:
    >>> Paths.from_params(Params()).raw
    PosixPath('data/raw/iris.csv')
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mlpipeline.settings import DEFAULT_PARAMS_FILE, SOURCES_DIR, Params

STAGES = ("check-params", "ingest", "validate", "preprocess", "train", "evaluate", "promote")


@dataclass(frozen=True)
class Paths:
    """The pipeline's files, relative to the project (or experiment copy) a stage runs in."""

    params: Path
    contract: Path
    raw: Path
    sources: Path = Path(SOURCES_DIR)
    params_check: Path = Path("reports/params_check.json")
    validation: Path = Path("reports/data_validation.json")
    train: Path = Path("data/processed/train.csv")
    test: Path = Path("data/processed/test.csv")
    schema: Path = Path("data/processed/schema.json")
    model_dir: Path = Path("models/model")
    model_meta: Path = Path("models/model_metadata.json")
    train_metrics: Path = Path("metrics/train_metrics.json")
    metrics: Path = Path("metrics/metrics.json")
    report: Path = Path("metrics/report.json")
    predictions: Path = Path("plots/predictions.csv")
    images: Path = Path("plots/evaluation")
    verdict: Path = Path("metrics/promotion.json")

    @classmethod
    def from_params(cls, params: Params, params_file: Path = DEFAULT_PARAMS_FILE) -> Paths:
        """The paths for these params (``data/raw/<ingest.name>.csv``, the contract of ``validate.contract``,
        the split's files in ``preprocess.format``)."""
        split = Path("data/processed")
        return cls(
            params=params_file,
            contract=Path(params.validate_.contract),
            raw=Path("data/raw") / f"{params.ingest.name}.csv",
            train=split / f"train.{params.preprocess.format}",
            test=split / f"test.{params.preprocess.format}",
        )

    def stage_io(self, stage: str) -> tuple[list[Path], list[Path]]:
        """The data files ``stage`` reads and writes (its dvc.yaml deps besides code, and its outs)."""
        check = [self.params_check]
        table: dict[str, tuple[list[Path], list[Path]]] = {
            "check-params": ([], [self.params_check]),
            "ingest": ([*check, self.sources], [self.raw]),
            "validate": ([*check, self.raw, self.contract], [self.validation]),
            "preprocess": ([*check, self.raw, self.validation], [self.train, self.test, self.schema]),
            "train": ([*check, self.train, self.schema], [self.model_dir, self.model_meta, self.train_metrics]),
            "evaluate": (
                [*check, self.test, self.model_dir, self.model_meta],
                [self.metrics, self.report, self.predictions, self.images],
            ),
            "promote": (
                [*check, self.model_dir, self.model_meta, self.metrics, self.validation, self.test],
                [self.verdict],
            ),
        }
        return table[stage]
