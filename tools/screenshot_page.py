"""Make docs/serve.png, the README's screenshot of ``musgen serve``'s page: start the app on a
free local port, open it in headless Chromium (the system's chromium and chromedriver), generate
two pieces with fixed settings, wait for their piano rolls and players, and save the page.

    python tools/screenshot_page.py [OUT.png]
"""

from __future__ import annotations

import io
import shutil
import socket
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def serve(app) -> tuple:
    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        threading.Event().wait(0.05)
    return server, thread, f"http://127.0.0.1:{sock.getsockname()[1]}"


def main(out: Path) -> None:
    from PIL import Image
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from musgen.web import create_app

    server, thread, base = serve(create_app())
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--mute-audio",
                "--window-size=1200,1700", "--hide-scrollbars"):
        options.add_argument(arg)
    browser = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    try:
        browser.get(base + "/")
        wait = WebDriverWait(browser, 120)
        wait.until(lambda b: b.find_element(By.TAG_NAME, "body").get_attribute("data-ready"))
        for field, value in (("ctl-length", "24"), ("ctl-seed", "7"), ("ctl-top_p", "0.95")):
            box = browser.find_element(By.ID, field)
            box.clear()
            box.send_keys(value)
        browser.find_element(By.ID, "generate").click()
        wait.until(lambda b: b.execute_script(
            "const c = document.querySelectorAll('article.piece'); return c.length === 2 && "
            "[...c].every(p => p.querySelector('img').naturalWidth > 0 && "
            "p.querySelector('audio').duration > 0)"))
        png = browser.get_screenshot_as_png()
    finally:
        browser.quit()
        server.should_exit = True
        thread.join(30)
    # 256 colours are plenty for a page of flat colours, at a fraction of the bytes.
    image = Image.open(io.BytesIO(png)).convert("RGB").quantize(colors=256)
    out.parent.mkdir(parents=True, exist_ok=True)
    image.save(out, optimize=True)
    print(f"wrote {out} ({out.stat().st_size // 1024} KiB)")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "serve.png")
