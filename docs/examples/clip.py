"""Clip: the training split's numeric features held to their [quantile, 1 - quantile] range (winsorized), so a few
extreme rows do not shape the model. The test split is left as it is: it is what the model will be asked about.

A stage of your own as docs/adapt.md makes it: `mlpipeline new stage clip --after preprocess --before train
--param quantile=0.01` writes its dvc.yaml entry, its params section and a module, which this file replaces.
"""

from __future__ import annotations

import logging
from typing import Annotated

from pydantic import Field

from mlpipeline.core.schema import Schema
from mlpipeline.io.files import read_json, read_table, write_json, write_table
from mlpipeline.paths import Paths
from mlpipeline.settings import Params, Section

logger = logging.getLogger(__name__)


class ClipParams(Section):
    """The `clip:` section of params.yaml: check-params refuses a key not declared here."""

    quantile: Annotated[float, Field(ge=0.0, lt=0.5)] = 0.01


PARAMS = ClipParams


def main(params: Params, paths: Paths) -> None:
    """The DVC stage: clip each numeric feature of the training split to its quantile range."""
    mine = params.section("clip", PARAMS)
    schema = Schema.model_validate(read_json(paths.dep("schema"), "preprocess"))
    train = read_table(paths.dep("train"), "preprocess", schema.csv_dtypes())
    clipped = 0
    for name in schema.numeric:
        column = train[name]
        low, high = column.quantile(mine.quantile), column.quantile(1 - mine.quantile)
        clipped += int(((column < low) | (column > high)).sum())
        train[name] = column.clip(low, high)
    write_table(paths.out("train"), train)
    write_json(paths.out("schema"), schema.model_dump(mode="json"))
    logger.info("clip: %d values of %d rows clipped to the %g-%g quantiles", clipped, len(train), mine.quantile,
                1 - mine.quantile)  # fmt: skip
