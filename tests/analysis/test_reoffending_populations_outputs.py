"""The populations reach the API's JSON and the command line's table."""

from __future__ import annotations

import pytest

from programme.platform.tables import Role
from tests.analysis.test_reoffending_analysis import AS_OF, cohort  # noqa: F401 (fixture)
from tests.builders import inspire

pytestmark = pytest.mark.anyio


async def test_the_api_states_every_models_population(client, cohort, sign_in):  # noqa: F811
    monitor = await sign_in(Role.monitor, "mo")
    response = await client.get(
        "/analysis/reoffending",
        params={"as_of": AS_OF, "group_by": "engaged", "covariates": "risk_level"},
        headers=monitor,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["population"]["n"] == 60
    assert body["cox"]["population"]["n"] == body["time_varying"]["population"]["n"] == 60
    landmark = body["time_varying"]["landmark"]
    assert landmark["population"]["n"] == landmark["n"]
    assert "same people" in body["time_varying"]["population"]["description"]


async def test_the_cli_table_states_every_models_population(cohort):  # noqa: F811
    result = inspire(
        "analyse", "reoffending", "--as-of", AS_OF, "--group-by", "engaged", "--format", "table"
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for model in ("groups and log-rank: n=60", "Cox: n=60", "time-varying Cox: n=60"):
        assert model in out
    assert "landmark at day 91: n=" in out and "dropped: reoffended by day 91" in out
