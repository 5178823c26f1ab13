"""End to end: real headless Chromium drives the page (upload, hit table, mirror plot, CSV download).

Uses Debian's /usr/bin/chromium and /usr/bin/chromedriver through Selenium (never a driver download);
skips cleanly when either is missing (install with `bash .ci/install_browser`).
Run as a script to make docs/screenshot_web.png from MassBank EI spectra:
``PYTHONPATH=. python tests/test_web_browser.py [docs/screenshot_web.png]``.
"""
from __future__ import annotations

import csv
import sys
import time
from pathlib import Path

import pytest
from llm4ms.data.shared import shared_data_dir

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--window-size=1440,1200")


def make_driver(profile: Path, downloads: Path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    options.add_experimental_option("prefs", {"download.default_directory": str(downloads),
                                              "download.prompt_for_download": False})
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    return driver


def run_page(driver, url: str, upload: Path, k: int = 5):
    """Upload `upload`, wait for hits, click the second hit; returns the WebDriverWait helper."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(driver, 30)
    driver.get(url)
    wait.until(lambda d: "spectra" in d.find_element(By.ID, "library-info").text)
    driver.find_element(By.ID, "files").send_keys(str(upload))
    k_input = driver.find_element(By.ID, "k")
    k_input.clear()
    k_input.send_keys(str(k))
    driver.find_element(By.ID, "search-btn").click()
    wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "tr.hit-row")))
    first_query = driver.find_elements(By.CSS_SELECTOR, "section.query")[0]
    rows = first_query.find_elements(By.CSS_SELECTOR, "tr.hit-row")
    rows[1].click()
    wait.until(lambda d: "selected" in rows[1].get_attribute("class")
               and first_query.find_elements(By.CSS_SELECTOR, ".mirror svg.mirror-plot")
               and f"#{rows[1].get_attribute('data-rank')} " in first_query.find_element(By.CSS_SELECTOR, ".mirror-info").text)
    return wait


@pytest.fixture()
def browser(tmp_path):
    pytest.importorskip("selenium")
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.skip("Debian chromium/chromedriver not installed (bash .ci/install_browser)")
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    driver = make_driver(tmp_path / "profile", downloads)
    try:
        yield driver, downloads
    finally:
        driver.quit()


def test_page_upload_hits_mirror_and_csv(browser, tmp_path):
    pytest.importorskip("uvicorn")
    from selenium.webdriver.common.by import By

    from llm4ms.web import create_app
    from tests._fakes import FakeEncoder
    from tests._web_helpers import ServerThread, build_library, library_spectra, msp_text

    driver, downloads = browser
    library = build_library(tmp_path / "lib")
    queries = library_spectra(60)[3:5]
    upload = tmp_path / "example.msp"
    upload.write_text(msp_text(queries))
    with ServerThread(create_app(library, FakeEncoder())) as server:
        wait = run_page(driver, server.url + "/", upload, k=5)
        sections = driver.find_elements(By.CSS_SELECTOR, "section.query")
        assert [s.find_element(By.TAG_NAME, "h2").text.split(" ", 3)[2] for s in sections] == ["compound", "compound"]
        assert "compound 3" in sections[0].find_element(By.TAG_NAME, "h2").text
        rows = sections[0].find_elements(By.CSS_SELECTOR, "tr.hit-row")
        assert len(rows) == 5
        assert rows[0].get_attribute("data-library-index") == "3"  # the query finds itself first
        assert "1.000" in rows[0].text
        assert rows[0].find_elements(By.CSS_SELECTOR, "td.structure img")  # library spectrum 3 has a SMILES
        plot = sections[0].find_element(By.CSS_SELECTOR, ".mirror svg.mirror-plot")
        second = rows[1].find_elements(By.TAG_NAME, "td")[3].text
        assert second in plot.get_attribute("aria-label")
        query_peaks = plot.find_elements(By.CSS_SELECTOR, "line.peak.query, line.peak.matched")
        assert len(plot.find_elements(By.CSS_SELECTOR, "line.peak")) == queries[0].n_peaks + library.spectrum(
            int(rows[1].get_attribute("data-library-index"))).n_peaks
        assert query_peaks
        # the CSV download holds every hit of both queries
        driver.find_element(By.ID, "download-csv").click()
        target = downloads / "llm4ms_hits.csv"
        wait.until(lambda d: target.exists() and target.stat().st_size > 0)
        time.sleep(0.2)
        rows_csv = list(csv.DictReader(target.open(encoding="utf-8")))
        assert len(rows_csv) == 10
        assert {r["query_name"] for r in rows_csv} == {"compound 3", "compound 4"}
        assert [r["library_index"] for r in rows_csv if r["rank"] == "1"] == ["3", "4"]
        assert not driver.find_element(By.ID, "error").is_displayed()


def test_page_shows_the_error_of_a_bad_file(browser, tmp_path):
    pytest.importorskip("uvicorn")
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from llm4ms.web import create_app
    from tests._fakes import FakeEncoder
    from tests._web_helpers import ServerThread, build_library

    driver, _ = browser
    bad = tmp_path / "broken.msp"
    bad.write_text("Name: x\nNum Peaks: 2\n41 10\n43 abc\n")
    with ServerThread(create_app(build_library(tmp_path / "lib", n=10), FakeEncoder())) as server:
        driver.get(server.url + "/")
        driver.find_element(By.ID, "files").send_keys(str(bad))
        driver.find_element(By.ID, "search-btn").click()
        error = driver.find_element(By.ID, "error")
        WebDriverWait(driver, 20).until(lambda d: error.is_displayed())
        assert "broken.msp, record 1, line 4" in error.text
        assert not driver.find_elements(By.CSS_SELECTOR, "tr.hit-row")


def test_page_msms_filters_and_columns(browser, tmp_path):
    pytest.importorskip("uvicorn")
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    from llm4ms.io import write_mgf
    from llm4ms.library import Library
    from llm4ms.web import create_app
    from tests._fakes import FakeEncoder
    from tests._web_helpers import ServerThread, library_spectra

    driver, downloads = browser
    spectra = library_spectra(30)
    for i, spectrum in enumerate(spectra[:20]):  # 20 MS/MS spectra, 10 EI ones
        spectrum.metadata.update(precursor_mz=150.0 + 2.5 * i + 0.00123,
                                 precursor_type="[M+H]+" if i % 2 else "[M-H]-")
    library = Library.build(spectra, tmp_path / "lib", FakeEncoder(), show_progress=False)
    upload = tmp_path / "q.mgf"
    write_mgf(spectra[3:4], upload)
    with ServerThread(create_app(library, FakeEncoder())) as server:
        driver.get(server.url + "/")
        driver.find_element(By.ID, "precursor_tolerance").send_keys("10ppm")
        Select(driver.find_element(By.ID, "ion_mode")).select_by_value("positive")
        driver.find_element(By.ID, "files").send_keys(str(upload))
        driver.find_element(By.ID, "search-btn").click()
        wait = WebDriverWait(driver, 30)
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "tr.hit-row"))
        section = driver.find_element(By.CSS_SELECTOR, "section.query")
        headers = [th.text for th in section.find_elements(By.CSS_SELECTOR, "th")]
        assert headers[-2:] == ["precursor m/z", "adduct"]
        rows = section.find_elements(By.CSS_SELECTOR, "tr.hit-row")
        assert len(rows) == 1 and rows[0].get_attribute("data-library-index") == "3"
        assert "[M+H]+" in rows[0].text and "157.5012" in rows[0].text
        assert "precursor 157.5012 [M+H]+" in section.find_element(By.TAG_NAME, "h2").text
        driver.find_element(By.ID, "download-csv").click()  # the CSV search keeps the query's precursor
        target = downloads / "llm4ms_hits.csv"
        wait.until(lambda d: target.exists() and target.stat().st_size > 0)
        time.sleep(0.2)
        rows_csv = list(csv.DictReader(target.open(encoding="utf-8")))
        assert [(r["library_index"], r["adduct"]) for r in rows_csv] == [("3", "[M+H]+")]
        assert not driver.find_element(By.ID, "error").is_displayed()


def screenshot(out: Path, n_library: int = 3000) -> None:
    """docs/screenshot_web.png: MassBank EI library (FakeEncoder embeddings), two FastEI measured queries."""
    import tempfile
    from itertools import islice

    from llm4ms.io import read_spectra, write_msp
    from llm4ms.library import Library
    from llm4ms.web import create_app
    from tests._fakes import FakeEncoder
    from tests._web_helpers import ServerThread

    data = (shared_data_dir(required=False) or Path("/nonexistent"))
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        reader = read_spectra(data / "massbank_ei" / "massbank_ei_nominal.msp")
        spectra = list(islice(reader, n_library))
        library = Library.build(spectra, tmp / "lib", FakeEncoder(max_mz=1000), show_progress=False)
        known = {s.inchikey14 for s in spectra if s.inchikey14}
        queries = list(islice((s for s in reader if s.inchikey14 in known and s.smiles), 2))  # replicates
        upload = tmp / "queries.msp"
        write_msp(queries, upload)
        downloads = tmp / "dl"
        downloads.mkdir()
        driver = make_driver(tmp / "profile", downloads)
        try:
            with ServerThread(create_app(library, FakeEncoder(max_mz=1000))) as server:
                run_page(driver, server.url + "/", upload, k=6)
                time.sleep(1.0)  # structure images
                driver.set_window_size(1440, 1250)
                driver.save_screenshot(str(out))
        finally:
            driver.quit()
    print(f"wrote {out}")


if __name__ == "__main__":
    screenshot(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/screenshot_web.png"))
