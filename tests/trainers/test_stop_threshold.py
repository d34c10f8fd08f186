"""scripts/stop_threshold.py: every threshold's stopping step and success read off one
never-stop rollout, on a hand-built trace with a known answer."""

from __future__ import annotations

import pytest
from repo_scripts import load_script  # tests/helpers (on sys.path via tests/conftest.py)


def _module():
    return load_script("scripts/stop_threshold.py")


def _rows(eid: str, true: list[float], pred: list[float], p_stop: list[float]) -> list[dict]:
    return [
        {"episode_id": eid, "step": t, "goal_distance": d, "predicted_distance": p, "p_stop": s}
        for t, (d, p, s) in enumerate(zip(true, pred, p_stop, strict=True))
    ]


# episode a: really within 3 m from step 2 on, predicted 6, 4, 2.5, 1, 1
# episode b: the monitor is fooled at step 1 (predicts 1.2 m while 8 m away), then the goal
#            is reached at step 3 (predicted 0.5)
# episode c: never nearer than 5 m, predicted never below 2
TRACE = [
    *_rows("a", [9, 6, 2.9, 1, 0.5], [6, 4, 2.5, 1, 1], [0.01, 0.02, 0.05, 0.2, 0.2]),
    *_rows("b", [10, 8, 5, 2], [7, 1.2, 3, 0.5], [0.01, 0.3, 0.02, 0.1]),
    *_rows("c", [12, 9, 7, 5], [8, 6, 4, 2.2], [0.0, 0.0, 0.01, 0.01]),
]


def test_threshold_table_known_answer() -> None:
    st = _module()
    rows = st.threshold_table(list(reversed(TRACE)), 3.0, "predicted_distance", [0.75, 1.1, 2, 3])
    by = {r["threshold"]: r for r in rows}
    # 0.75: a never below 0.75 (fails), b stops at step 3 (2 m: success), c never
    assert by[0.75]["successes"] == 1 and by[0.75]["stopped"] == pytest.approx(1 / 3)
    # 1.1: a stops at step 3 (1 m), b at step 3; c never
    assert by[1.1]["successes"] == 2 and by[1.1]["mean_stop_step"] == 3.0
    # 2: a at step 3 (pred 1), b fooled at step 1 (8 m: failure)
    assert by[2.0]["successes"] == 1 and by[2.0]["mean_stop_step"] == 2.0
    # 3: a at step 2 (2.9 m: success), b at step 1 (failure), c at step 3 (5 m: failure)
    assert by[3.0]["successes"] == 1 and by[3.0]["stopped"] == 1.0
    assert st.best(rows)["threshold"] == 1.1
    probability = st.threshold_table(TRACE, 3.0, "p_stop", [0.04, 0.15])
    # > 0.04: a at step 2 (success), b at step 1 (failure); > 0.15: a at 3, b at 1
    assert [r["successes"] for r in probability] == [1, 1]
    assert st.best(probability)["threshold"] == 0.04  # a tie goes to the smaller tau


def test_monitor_quality_closed_form() -> None:
    st = _module()
    rows = _rows("a", [1.0, 2.0, 3.0], [2.0, 4.0, 6.0], [0.0, 0.0, 0.0])  # pred = 2 * true
    q = st.monitor_quality(rows)
    assert q["mae_m"] == pytest.approx(2.0) and q["pearson"] == pytest.approx(1.0)
    assert (q["predicted_min_m"], q["predicted_max_m"], q["true_mean_m"]) == (2.0, 6.0, 2.0)
    flat = st.monitor_quality(_rows("b", [1.0, 5.0], [3.0, 3.0], [0.0, 0.0]))
    assert flat["pearson"] == 0.0 and flat["mae_m"] == pytest.approx(2.0)


def test_threshold_table_errors() -> None:
    st = _module()
    with pytest.raises(ValueError, match="key must be"):
        st.threshold_table(TRACE, 3.0, "distance", [1.0])
    with pytest.raises(ValueError, match="trace is empty"):
        st.threshold_table([], 3.0, "p_stop", [1.0])
    no_monitor = [dict(r, predicted_distance=None) for r in TRACE]
    with pytest.raises(ValueError, match="without the progress monitor"):
        st.threshold_table(no_monitor, 3.0, "predicted_distance", [1.0])
