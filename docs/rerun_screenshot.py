"""Screenshot of a Rerun web viewer (as `--rerun-serve` prints its URL) in headless Chromium.

    .venv/bin/python docs/rerun_screenshot.py URL docs/rerun-rollout.png [--wait 20]

Debian's chromium and chromium-driver; WebGL comes from SwiftShader, the software renderer.
"""

from __future__ import annotations

import argparse
import shutil
import time

from selenium import webdriver
from selenium.webdriver.chrome.service import Service


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("output")
    parser.add_argument("--wait", type=float, default=20, help="seconds for the viewer to load")
    parser.add_argument("--size", default="1600,1000", help="window width,height")
    args = parser.parse_args()
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if chromium is None or driver is None:
        parser.error("needs chromium and chromedriver on PATH (apt-get install chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (
        "--headless=new",
        "--no-sandbox",
        f"--window-size={args.size}",
        "--use-gl=angle",
        "--use-angle=swiftshader",
        "--enable-unsafe-swiftshader",
    ):
        options.add_argument(flag)
    browser = webdriver.Chrome(service=Service(driver), options=options)
    try:
        browser.get(args.url)
        time.sleep(args.wait)  # the wasm viewer loads, connects and draws: nothing to poll
        browser.save_screenshot(args.output)
    finally:
        browser.quit()


if __name__ == "__main__":
    main()
