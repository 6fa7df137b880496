"""The demo's models: which folders are reference models, and the per-slide table."""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console

from slidestream_devstack.demo_models import ModelResult, reference_models, results_table


def test_only_folders_with_a_model_and_its_card_are_deployed(tmp_path: Path) -> None:
    assert reference_models(tmp_path / "absent") == []
    for name, files in {"b": ("model.pt", "card.json"), "a": ("model.pt", "card.json")}.items():
        (tmp_path / name).mkdir()
        for file in files:
            (tmp_path / name / file).write_bytes(b"x")
    (tmp_path / "data").mkdir()  # training arrays: no model
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "model.pt").write_bytes(b"x")
    assert [p.name for p in reference_models(tmp_path)] == ["a", "b"]


def test_the_table_lists_classes_by_share_and_the_heat_maps(tmp_path: Path) -> None:
    result = ModelResult(
        model="tissue-type",
        version="1",
        tile_count=812,
        summary={"fraction:tumour": 0.25, "fraction:stroma": 0.7, "mean:tumour": 0.3},
        heatmaps=(tmp_path / "tissue-type-heatmap-tumour.png",),
    )
    console = Console(file=io.StringIO(), width=200)
    console.print(results_table([result]))
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert "tissue-type v1" in text and "812" in text
    assert text.index("stroma 70%") < text.index("tumour 25%")
    assert "tissue-type-heatmap-tumour.png" in text
