"""params `evaluate`: which candidate families are scored, and how size and latency are read."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from leanml.params.base import Measure
from leanml.params.schema import Choice, Float, KeyError_, Section

SIZE_METRICS = ("artifact_bytes", "file_bytes", "gzip_bytes", "artifact_gzip_bytes")
# The language of the report's tables and summary.md (leanml.report.i18n.LANGUAGES).
LANGUAGES = ("en", "zh")


class Evaluate(Section):
    """Scoring every candidate model on the test split; the leaderboard and its tables."""

    # Folders under models/ whose models are candidates (models/nas_metadata, say, is not).
    families: list[str] | None = Field(
        ["train", "compress", "search", "nas"],
        description="null (every folder under models/) or a non-empty list of distinct "
        "stage folder names that includes 'train', e.g. [train, compress, search, nas]",
    )
    within_pp: float = Float(1.0, ge=0, le=100)
    size: Literal[SIZE_METRICS] = Choice("artifact_bytes", SIZE_METRICS)  # type: ignore[valid-type]
    # Chinese (zh) headers, captions and notes for a thesis in a ctex template; numbers, model
    # names, CSV/JSON files and the stage's messages are the same in both languages.
    language: Literal[LANGUAGES] = Field(  # type: ignore[valid-type]
        "en",
        description="'en' (English tables) or 'zh' (Chinese tables for a ctex/xelatex thesis)",
    )
    # The one latency protocol: only this stage times models (every candidate in LiteRT), so
    # changing it re-times without retraining anything.
    measure: Measure = Measure(warmup=5, runs=50, batch_size=256)

    @model_validator(mode="after")
    def _families_named(self) -> Evaluate:
        if self.families is None:
            return self
        if not self.families:
            raise KeyError_("families", "must be null or a non-empty list, got []")
        for i, name in enumerate(self.families):
            if not name or "/" in name or name.startswith("."):
                raise KeyError_(
                    f"families[{i}]", f"must be a folder name under models/, got {name!r}"
                )
        if len(set(self.families)) != len(self.families):
            raise KeyError_("families", f"must not repeat a name, got {self.families!r}")
        if "train" not in self.families:
            raise KeyError_(
                "families",
                "must include 'train' (the baseline that deltas and compression ratios are "
                f"relative to), got {self.families!r}",
            )
        return self
