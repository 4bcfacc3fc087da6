"""The real app, headless, driven by touches through Kivy's event loop; outcomes read from the device store."""

from __future__ import annotations

from datetime import UTC, datetime

from kiosk_ui.flow import Step


def test_negative_tap_reason_comment_and_contact_land_in_the_store(kiosk):
    k = kiosk()
    assert k.screen().name == "rating"
    k.touch(k.face(1))
    rows = k.device.rows()
    assert [(r["value"], r["sentiment"]) for r in rows] == [(1, "negative")], "the first tap is stored at once"
    assert k.screen().name == "reason"
    k.tap_text("Waiting time")
    assert k.screen().name == "details"
    k.type("too slow")
    k.tap_text("You may contact me")
    k.type("a@b.se")
    k.tap_text("Send")
    assert k.screen().name == "thanks"
    (row,) = k.device.rows()
    assert (row["value"], row["reason"], row["comment"], row["contact"]) == (1, "waiting_time", "too slow", "a@b.se")
    assert row["rev"] == 2 and row["state"] == 0, "each follow-up answer re-queues the rating with a new rev"


def test_positive_tap_asks_what_was_liked_and_skipping_keeps_the_tap(kiosk):
    k = kiosk()
    k.touch(k.face(4))
    assert "What did you like?" in k.texts()
    k.tap_text("Skip")
    assert k.screen().name == "thanks"
    (row,) = k.device.rows()
    assert (row["value"], row["sentiment"], row["reason"]) == (4, "positive", None)


def test_a_visitor_who_walks_away_is_counted_and_the_kiosk_resets(kiosk):
    k = kiosk()
    k.touch(k.face(2))
    k.tap_text("Staff")
    k.type("rud")
    assert k.screen().name == "details"
    k.tick(k.flow.config.survey.idle_reset - 1)
    assert k.screen().name == "details", "still within the idle time"
    k.tick(2)
    k.wait(lambda: k.screen().name == "rating", "the idle reset back to the start")
    (row,) = k.device.rows()
    assert (row["value"], row["reason"], row["comment"]) == (2, "staff", None), "unsent draft text is not stored"
    assert "rud" not in " ".join(k.texts())


def test_taps_within_the_response_interval_are_flagged_and_the_visitor_sees_no_difference(kiosk):
    k = kiosk(response_interval=10.0, reasons_positive=[])
    for pause in (None, 0.0, 10.0):  # after the thank-you screen (4 s): 4.5 s, 4.5 s, 14.5 s since the last tap
        if pause is not None:
            k.tick(k.flow.timings.thanks + 0.5)
            k.wait(lambda: k.screen().name == "rating", "back to the start")
            k.tick(pause)
        k.touch(k.face(4))
        assert k.screen().name == "thanks", "a repeat press gets the same thank-you"
    assert [r["flags"] for r in k.device.rows()] == [None, '["repeat"]', None]


def test_outside_opening_hours_the_kiosk_sleeps_and_records_nothing(kiosk):
    k = kiosk()
    k.device.clock.set_wall(datetime(2026, 11, 24, 19, 30, tzinfo=UTC))  # 20:30 in Stockholm, closed at 20:00
    k.tick(1)
    k.wait(lambda: k.screen().name == "sleep", "the sleep screen")
    assert "We are closed" in k.texts() and any("08:00" in t for t in k.texts())
    from kivy.core.window import Window

    for x in (100, 300, 500, 700):
        k.touch_at(x, Window.height / 2)
    assert k.device.rows() == []
    k.device.clock.set_wall(datetime(2026, 11, 25, 7, 0, tzinfo=UTC))  # 08:00 next morning
    k.tick(1)
    k.wait(lambda: k.screen().name == "rating", "waking up at opening time")
    k.touch(k.face(1))
    assert len(k.device.rows()) == 1


def test_language_switch_and_back_to_the_default_for_the_next_visitor(kiosk):
    k = kiosk()
    assert "How was your visit today?" in k.texts()
    k.tap_text("Svenska")
    assert "Hur var ditt besök idag?" in k.texts() and "Mycket missnöjd" in k.texts()
    k.touch(k.face(1))
    assert "Vad gick fel?" in k.texts() and "Väntetid" in k.texts()
    k.tap_text("Hoppa över")
    assert "Tack!" in k.texts()
    k.tick(k.flow.timings.thanks + 1)
    k.wait(lambda: k.screen().name == "rating", "the start screen")
    assert "How was your visit today?" in k.texts(), "the next visitor starts in the default language"


def test_staff_pin_opens_staff_mode_and_a_test_tap_is_recorded(kiosk):
    k = kiosk()
    k.corner(4)
    assert k.screen().name == "rating", "four taps are not the gesture"
    k.corner(1)
    assert k.screen().name == "pin"
    for d in "1111":
        k.tap_text(d)
    k.tap_text("OK")
    assert k.screen().name == "pin" and "Wrong PIN" in k.texts()
    for d in "2468":
        k.tap_text(d)
    k.tap_text("OK")
    assert k.screen().name == "staff"
    texts = " ".join(k.texts())
    assert "Backlog" in texts and "sync agent has not reported yet" in texts and "Disk free" in texts
    k.device.store.save_agent_status({"connected": True, "last_delivery": None, "last_error": None},
                                     k.device.clock.now())  # as the sync agent does
    k.tick(k.flow.timings.status_refresh)
    k.wait(lambda: "connected" in k.texts(), "staff status re-read from the store")
    k.tap_text("Test tap")
    (row,) = k.device.rows()
    assert row["comment"] == "staff test tap"
    k.tap_text("Back to the survey")
    assert k.screen().name == "rating"


def test_a_broken_store_shows_out_of_order_instead_of_thanks(kiosk, caplog):
    k = kiosk()
    k.device.store.close()  # the store can no longer write, as with a failed SD card
    with caplog.at_level("ERROR", logger="kiosk_ui.flow"):
        k.touch(k.face(1))
    assert k.screen().name == "out_of_order"
    assert "Out of order" in k.texts() and "Thank you!" not in k.texts()
    assert any("cannot record" in r.getMessage() for r in caplog.records), "the fault is logged"
    k.tick(k.flow.timings.recover_every + 1)
    k.wait(lambda: k.screen().name == "rating", "recovery once the store opens again")
    k.touch(k.face(1))
    assert k.flow.store is not None and len(k.flow.store.all_ratings()) == 1
    k.flow.store.close()
    assert k.flow.step is Step.REASON


def test_many_visitors_leave_no_widgets_behind(kiosk):
    """Months unattended: every screen is rebuilt per visitor, so nothing may pile up."""
    import gc

    from kivy.uix.widget import Widget

    def widgets() -> int:
        gc.collect()
        return sum(1 for o in gc.get_objects() if issubclass(type(o), Widget))  # not weak proxies

    k = kiosk(response_interval=0.0)
    counts = []
    for visitors in (3, 8, 8):
        for i in range(visitors):
            k.touch(k.face(1 if i % 3 == 0 else 3))
            if k.screen().name == "reason":
                k.tap_text("Price")
                k.tap_text("Send")
            k.flow.reset()
            k.pump(1)
        counts.append(widgets())
    assert len(k.device.rows()) == 19
    assert counts[2] <= counts[1] <= counts[0], f"widgets grew: {counts} after 3, 11 and 19 visitors"
