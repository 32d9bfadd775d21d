from engine.cdr.report import daily_figures


def test_crafted_day():
    cdrs = [
        {"queue": "q", "agent": "a1", "wait_seconds": 10, "talk_seconds": 100, "wrapup_seconds": 20, "satisfaction": 1},
        {"queue": "q", "agent": "a2", "wait_seconds": 30, "talk_seconds": 200, "wrapup_seconds": 40, "satisfaction": 4},
        {"queue": "q", "agent": "", "wait_seconds": 50},
        {"queue": None, "agent": None},  # IVR only: not offered
    ]
    f = daily_figures(cdrs)
    assert (f["offered"], f["answered"], f["abandoned"]) == (3, 2, 1)
    assert f["answer_rate"] == round(2 / 3, 4) and f["service_level"] == round(1 / 3, 4)
    assert (f["avg_wait"], f["avg_talk"], f["avg_wrapup"]) == (30.0, 150.0, 30.0)
    assert f["rated"] == 2 and f["satisfaction_rate"] == 0.5
    assert daily_figures([])["answer_rate"] is None
