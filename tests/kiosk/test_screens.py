"""Every screen rendered to PNG by the real app: not blank, and showing its expected texts."""

from __future__ import annotations

from PIL import Image, ImageStat

from kiosk_ui.shots import SAMPLE_OUTCOMES, SAMPLE_TIME, pump, screenshot, visible_texts, walk


def test_every_screen_renders_with_its_texts_in_both_languages(kiosk, tmp_path):
    k = kiosk()
    k.device.store.replace_outcomes(SAMPLE_OUTCOMES, SAMPLE_TIME)
    k.wait(lambda: k.flow.outcome_text(), "the outcomes read from the store")
    seen = set()
    for lang in ("en", "sv"):
        for shot in walk(k.flow, lang):
            pump(3)
            screen = k.app.shown()
            texts = " | ".join(visible_texts(screen))
            for expected in shot.expected:
                assert expected in texts, f"{shot.name}: {expected!r} missing from {texts!r}"
            path = screenshot(tmp_path / f"{shot.name}.png")
            with Image.open(path) as im:
                rgb = im.convert("RGB")
                assert rgb.size == (800, 480)
                colours = rgb.getcolors(maxcolors=1 << 20)
                background = max(count for count, _ in colours)
                drawn = 1 - background / (800 * 480)
                assert drawn > 0.004, f"{shot.name} looks blank: {drawn:.2%} of pixels differ from the background"
                assert max(ImageStat.Stat(rgb).stddev) > 3, f"{shot.name} has no contrast"
            seen.add(shot.name.rsplit("-", 1)[0])
    assert seen == {"rating", "reason", "details", "thanks", "sleep", "pin", "staff", "out_of_order"}


def test_the_nps_and_five_point_scales_draw_their_own_rating_screens(kiosk):
    from kiosk_ui.faces import Face

    k = kiosk(scale="nps")
    assert sorted(int(t) for t in k.texts() if t.isdigit()) == list(range(11))
    assert "Not at all likely" in k.texts()
    k.tap_text("0")
    assert k.device.rows()[0]["value"] == 0 and k.screen().name == "reason"

    k = kiosk(scale="smiley5")
    assert sorted(f.value for f in k.widgets(Face)) == [1, 2, 3, 4, 5]
    k.touch(k.face(3))
    assert k.screen().name == "thanks" and k.device.rows()[0]["sentiment"] == "neutral"


def test_the_docs_show_every_screen_and_link_only_existing_images():
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    doc = (root / "docs" / "KIOSK.md").read_text()
    linked = set(re.findall(r"\(screens/([\w-]+\.png)\)", doc))
    on_disk = {p.name for p in (root / "docs" / "screens").glob("*.png")}
    assert linked <= on_disk, f"docs/KIOSK.md links missing images: {sorted(linked - on_disk)}"
    steps = {"rating", "reason", "details", "thanks", "sleep", "pin", "staff", "out_of_order"}
    for lang in ("en", "sv"):
        missing = {f"{s}-{lang}.png" for s in steps} - on_disk
        assert not missing, f"run 'smileloop kiosk screenshots --out docs/screens': {sorted(missing)}"
