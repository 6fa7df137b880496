from __future__ import annotations

from slidestream_contracts.states import Stage
from slidestream_devstack.demo import stages_to_follow


def test_the_demo_follows_stages_as_far_as_services_run() -> None:
    assert stages_to_follow(["upload", "catalog"]) == [Stage.UPLOADED]
    assert stages_to_follow(["upload", "deid"]) == [Stage.UPLOADED, Stage.DEIDENTIFIED]
    # A gap stops the walk: without deid no slide can be converted.
    assert stages_to_follow(["upload", "convert"]) == [Stage.UPLOADED]
    assert stages_to_follow([]) == []
