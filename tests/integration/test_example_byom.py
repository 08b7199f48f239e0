"""The worked example, examples/bring_your_own_model/run.sh, end to end as a user runs it."""

import os
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).parents[2] / "examples" / "bring_your_own_model" / "run.sh"


def test_the_bring_your_own_model_example_runs(tmp_path):
    env = {**os.environ, "PYTHON": sys.executable, "TRAIN_STEPS": "30"}
    result = subprocess.run(["bash", str(SCRIPT), str(tmp_path)], capture_output=True, text=True, env=env, timeout=900)
    assert result.returncode == 0, (result.stdout[-2000:], result.stderr[-3000:])
    assert "catalog validity: 100.0%" in result.stdout
    assert all(f"history {i}: 50 items" in result.stdout for i in (1, 2, 3, 4)), result.stdout[-2000:]
    assert f"Served {tmp_path}/model.pt2" in result.stdout
    assert not list(tmp_path.glob("*.staging-*"))
