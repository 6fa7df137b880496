"""A chart whose optional dependency's archive is missing renders from a copy without it."""

from __future__ import annotations

from pathlib import Path

import yaml

from slidestream_devstack.tools import chart_for_offline_render

CHART_YAML = {
    "apiVersion": "v2",
    "name": "demo",
    "version": "0.1.0",
    "dependencies": [
        {"name": "milvus", "version": "4.2.56", "repository": "https://x", "condition": "m.on"},
        {"name": "other", "version": "1.0.0", "repository": "https://y"},
    ],
}


def write_chart(root: Path, archives: tuple[str, ...]) -> Path:
    chart = root / "demo"
    (chart / "charts").mkdir(parents=True)
    (chart / "Chart.yaml").write_text(yaml.safe_dump(CHART_YAML), encoding="utf-8")
    (chart / "values.yaml").write_text("m: {on: false}\n", encoding="utf-8")
    for archive in archives:
        (chart / "charts" / archive).write_bytes(b"")
    return chart


def test_with_every_archive_the_chart_is_used_as_it_is(tmp_path: Path) -> None:
    chart = write_chart(tmp_path, ("milvus-4.2.56.tgz", "other-1.0.0.tgz"))
    assert chart_for_offline_render(chart, tmp_path / "work") == (chart, [])


def test_a_missing_archive_leaves_only_its_dependency_out_of_a_copy(tmp_path: Path) -> None:
    chart = write_chart(tmp_path, ("other-1.0.0.tgz",))
    rendered, missing = chart_for_offline_render(chart, tmp_path / "work")
    assert missing == ["milvus"]
    assert rendered != chart
    manifest = yaml.safe_load((rendered / "Chart.yaml").read_text(encoding="utf-8"))
    assert [dep["name"] for dep in manifest["dependencies"]] == ["other"]
    assert (rendered / "values.yaml").read_text(encoding="utf-8") == "m: {on: false}\n"
    # The source chart is untouched.
    source = yaml.safe_load((chart / "Chart.yaml").read_text(encoding="utf-8"))
    assert len(source["dependencies"]) == 2
