"""The page in a real headless Chromium (Selenium, the system's chromium and chromedriver):
open it, generate two pieces, wait for their piano rolls and audio players, and check that
the audio the browser decoded lasts as long as each piece."""

from __future__ import annotations

import os
import shutil

import pytest
from conftest import skip_or_fail


def _browser_parts() -> tuple:
    """(chromium, chromedriver) paths, or skip (fail in CI) saying what to install."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        skip_or_fail("selenium is not installed: pip install '.[test]'")
    chromium = next(filter(None, map(shutil.which, ("chromium", "chromium-browser",
                                                    "google-chrome"))), None)
    driver = shutil.which("chromedriver")
    if chromium is None or driver is None:
        skip_or_fail("no headless Chromium here: apt-get install chromium chromium-driver")
    return chromium, driver


@pytest.fixture
def browser():
    chromium, driver = _browser_parts()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--mute-audio",
                "--window-size=1280,1000", "--disable-gpu"):
        options.add_argument(arg)
    # The driver is the system's: Selenium must not look for (or download) another one.
    os.environ.setdefault("SE_OFFLINE", "true")
    b = webdriver.Chrome(service=Service(executable_path=driver), options=options)
    try:
        yield b
    finally:
        b.quit()


def test_page_generates_two_pieces_with_rolls_and_audio(browser, live_server, audio_available,
                                                        tmp_path):
    import musgen
    from musgen.web import create_app
    from musgen.web.roll import ROLL_HEIGHT, ROLL_WIDTH
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    base = live_server(create_app())
    browser.get(base + "/")
    wait = WebDriverWait(browser, 120)
    wait.until(lambda b: b.find_element(By.TAG_NAME, "body").get_attribute("data-ready"))
    from musgen.modelzoo import DEFAULT_MODEL

    assert Select(browser.find_element(By.ID, "model")).first_selected_option.text == \
        DEFAULT_MODEL
    for field, value in (("ctl-n", "2"), ("ctl-length", "12"), ("ctl-seed", "21"),
                         ("ctl-temperature", "0.9")):
        box = browser.find_element(By.ID, field)
        box.clear()
        box.send_keys(value)
    Select(browser.find_element(By.ID, "ctl-length-unit")).select_by_value("beats")
    browser.find_element(By.ID, "generate").click()
    wait.until(lambda b: len(b.find_elements(By.CSS_SELECTOR, "article.piece")) == 2)
    # Every roll image has arrived and decoded; every player knows its audio's length.
    wait.until(lambda b: b.execute_script(
        "return [...document.querySelectorAll('article.piece img.roll')]"
        ".every(i => i.complete && i.naturalWidth > 0)"))
    wait.until(lambda b: b.execute_script(
        "return [...document.querySelectorAll('article.piece audio')]"
        ".every(a => a.readyState >= 1 && a.duration > 0)"))
    cards = browser.execute_script(
        "return [...document.querySelectorAll('article.piece')].map(c => ({"
        " title: c.querySelector('h2').textContent,"
        " meta: c.querySelector('.meta').textContent,"
        " roll: [c.querySelector('img').naturalWidth, c.querySelector('img').naturalHeight],"
        " duration: c.querySelector('audio').duration,"
        " links: [...c.querySelectorAll('.links a')].map(a => a.textContent)}))")
    assert [c["title"] for c in cards] == ["Piece 1", "Piece 2"]
    expected = musgen.generate(n=2, length="12 beats", temperature=0.9, seed=21)
    for card, score in zip(cards, expected):
        assert card["roll"] == [ROLL_WIDTH, ROLL_HEIGHT]
        assert "seed 21" in card["meta"] and f"{score.n_notes} notes" in card["meta"]
        assert score.duration_seconds <= card["duration"] <= score.duration_seconds + 2.05
        assert card["links"][:2] == ["MIDI", "WAV"]
    assert browser.find_element(By.ID, "error").get_attribute("hidden") is not None
    # A bad value is shown to the person, not swallowed.
    browser.execute_script("document.getElementById('ctl-n').removeAttribute('max')")
    box = browser.find_element(By.ID, "ctl-n")
    box.clear()
    box.send_keys("50")
    browser.find_element(By.ID, "generate").click()
    wait.until(lambda b: b.find_element(By.ID, "error").is_displayed())
    assert browser.find_element(By.ID, "error").text == \
        "n: 50 pieces is more than the 8 allowed per request"
    assert browser.get_screenshot_as_png()[:8] == b"\x89PNG\r\n\x1a\n"


def test_page_fits_its_controls_to_the_model(browser, live_server, tmp_path):
    """A codec-version-1 model hides style, tempo and instruments; a version-2 model shows them
    with its own styles, and the pieces follow the musical controls filled in."""
    import musgen
    from musgen.engine._random import random_model_dir
    from musgen.web import create_app
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    config = musgen.codec.default_config(version=2, styles=("chorale", "folk"))
    random_model_dir(tmp_path / "models" / "v2", vocab_size=config.vocab_size, embedding_dim=8,
                     lstm_units=[16], seed=4, codec=config.to_dict())
    v1 = musgen.codec.default_config()
    random_model_dir(tmp_path / "models" / "v1", vocab_size=v1.vocab_size, embedding_dim=8,
                     lstm_units=[16], seed=5, codec=v1.to_dict())
    browser.get(live_server(create_app(tmp_path / "models")) + "/")
    wait = WebDriverWait(browser, 120)
    wait.until(lambda b: b.find_element(By.TAG_NAME, "body").get_attribute("data-ready"))

    def shown(name):
        return browser.find_element(By.ID, f"ctl-{name}").is_displayed()

    Select(browser.find_element(By.ID, "model")).select_by_value("v1")
    assert shown("key") and shown("max_voices") and shown("ending")
    assert not any(shown(n) for n in ("style", "bpm", "instruments"))
    Select(browser.find_element(By.ID, "model")).select_by_value("v2")
    assert all(shown(n) for n in ("style", "bpm", "instruments"))
    style = Select(browser.find_element(By.ID, "ctl-style"))
    assert [o.get_attribute("value") for o in style.options] == ["", "chorale", "folk"]
    style.select_by_value("folk")
    for field, value in (("ctl-n", "1"), ("ctl-length", "8"), ("ctl-seed", "7"),
                         ("ctl-key", "D minor"), ("ctl-bpm", "90"), ("ctl-max_voices", "2")):
        box = browser.find_element(By.ID, field)
        box.clear()
        box.send_keys(value)
    browser.find_element(By.ID, "generate").click()
    wait.until(lambda b: len(b.find_elements(By.CSS_SELECTOR, "article.piece")) == 1)
    expected = musgen.generate(tmp_path / "models" / "v2", n=1, length="8 beats", seed=7,
                               key="D minor", bpm=90, max_voices=2, style="folk")[0]
    meta = browser.find_element(By.CSS_SELECTOR, "article.piece .meta").text
    assert f"{expected.n_notes} notes" in meta and "seed 7" in meta
    assert browser.find_element(By.ID, "error").get_attribute("hidden") is not None
