"""The public web app in a real browser (the distribution's headless Chromium, driven by Selenium) against
the real exchange on a private Redis: a trade made through the client library appears in the tape and the
candle without a reload; a retirement is found by its beneficiary and its `<script>` renders as text; a
label opens from its id. The same exchange then shows that the projection's digest is a replay's, that
nothing published holds a secret or an account id, and that the web user reads `pub:*` and nothing else.

Screenshots go to var/test-output/browser/ (not committed)."""

from __future__ import annotations

import json
import shutil
import socket
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from services.cli.demo import seed_exchange
from services.cli.demo_registry import run_registry_chain
from services.cli.supervisor import ROOT, Supervisor
from services.public.core import PublicProjection
from shared.domain.codec import decode_event
from shared.keys import SCHEMA, Keys
from shared.trading import TradingClient
from tests.integration.exchange import Provisioned, provisioned, run_greenex
from tests.integration.load_support import log_entries, settled_exchange
from tests.redis_server import RedisServer
from tests.support import eventually

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(240)]

SHOTS = ROOT / "var" / "test-output" / "browser"
XSS = "<script>alert(1)</script>"
CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as answer:
        return json.loads(answer.read())


@pytest.fixture
def browser() -> Iterator[Any]:
    if CHROMIUM is None or DRIVER is None:
        pytest.skip("chromium and chromium-driver are not installed (deploy/setup.sh installs them with apt)")
    from selenium import webdriver  # noqa: PLC0415 - only where a browser runs
    from selenium.webdriver.chrome.service import Service  # noqa: PLC0415

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1200,1400"):  # fmt: skip
        options.add_argument(arg)
    driver = webdriver.Chrome(options=options, service=Service(DRIVER))
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def _wait(driver: Any, what: Callable[[Any], Any], timeout: float = 20.0) -> Any:
    from selenium.webdriver.support.ui import WebDriverWait  # noqa: PLC0415

    return WebDriverWait(driver, timeout, poll_frequency=0.1).until(what)


def _text(driver: Any, css: str) -> str:
    from selenium.webdriver.common.by import By  # noqa: PLC0415

    return str(driver.find_element(By.CSS_SELECTOR, css).text)


async def _session(ex: Provisioned, name: str) -> TradingClient:
    creds, s = ex.venue.credentials[name], ex.settings
    return await TradingClient.connect(s.redis_url, name, creds.redis_password, creds.signing_key,
                                       venue=s.venue, prefix=s.prefix)  # fmt: skip


async def test_the_public_pages_live_in_a_browser(
    redis_server_factory: Callable[..., RedisServer], tmp_path: Path, browser: Any
) -> None:
    """Market page live over SSE, registry search to a certificate, a label from its id; then the
    projection's digest, what it publishes and the web user's rights."""
    from selenium.common.exceptions import NoAlertPresentException  # noqa: PLC0415
    from selenium.webdriver.common.by import By  # noqa: PLC0415

    port = _free_port()
    ex = provisioned(redis_server_factory, tmp_path, "web", checkpoint_every=50)
    sup = Supervisor(env={**ex.env, "GREENEX_WEB_PORT": str(port)}, log_dir=ex.log_dir)
    base = f"http://127.0.0.1:{port}"
    SHOTS.mkdir(parents=True, exist_ok=True)
    await sup.start()
    try:
        await seed_exchange(ex.venue)
        await run_registry_chain(ex.venue)
        async with await _session(ex, "cementco") as seller, await _session(ex, "greenfund") as buyer:
            await seller.outcome(await seller.retire("SZEA-2025", 3, XSS, "test", purpose="voluntary"))
            await settled_exchange(ex.redis, ex.settings, timeout=60)
            await eventually(lambda: _listed(base), timeout=30, interval=0.2)

            browser.get(f"{base}/market/SZEA-2025")
            _wait(browser, lambda d: "connected" in _text(d, "#live-state"))
            browser.execute_script("window.notReloaded = true;")
            assert browser.find_elements(By.CSS_SELECTOR, "#chart") != []
            await seller.outcome(await seller.sell("SZEA-2025", 7, price="51.23"))
            await buyer.outcome(await buyer.buy("SZEA-2025", 7, price="51.23"))
            _wait(browser, lambda d: "51.23" in _text(d, "#tape"))
            _wait(browser, lambda d: "C 51.23" in _text(d, "#candle-info"))
            _wait(browser, lambda d: "51.23" in _text(d, "#daily tr:first-child"))  # the day's row, live
            assert browser.execute_script("return window.notReloaded === true;")
            assert "51.23" in _text(browser, "#stats")
            browser.save_screenshot(str(SHOTS / "market.png"))

            browser.set_window_size(390, 844)  # a phone: nothing wider than the screen but inside scrollers
            browser.get(f"{base}/market/SZEA-2025")
            _wait(browser, lambda d: "connected" in _text(d, "#live-state"))
            assert browser.execute_script("return document.documentElement.scrollWidth <= window.innerWidth;")
            browser.save_screenshot(str(SHOTS / "market-phone.png"))
            browser.set_window_size(1200, 1400)

            browser.get(f"{base}/")  # the overview: the day so far, then the next trade live
            _wait(browser, lambda d: "connected" in _text(d, "#live-state"))
            browser.execute_script("window.notReloaded = true;")
            assert "51.23" in _text(browser, '#overview tr[data-symbol="SZEA-2025"] [data-f="last"]')
            assert XSS in _text(browser, "main")  # the latest retirements, as text
            await seller.outcome(await seller.sell("SZEA-2025", 2, price="51.50"))
            await buyer.outcome(await buyer.buy("SZEA-2025", 2, price="51.50"))
            row = '#overview tr[data-symbol="SZEA-2025"]'
            _wait(browser, lambda d: "51.50" in _text(d, f'{row} [data-f="last"]'))
            assert browser.execute_script("return window.notReloaded === true;")
            browser.save_screenshot(str(SHOTS / "overview.png"))

        browser.get(f"{base}/registry")
        box = browser.find_element(By.ID, "q")
        box.send_keys("alert(1)")
        box.submit()
        _wait(browser, lambda d: "RC-" in _text(d, "#results"))
        browser.find_element(By.CSS_SELECTOR, "#results a").click()
        _wait(browser, lambda d: d.find_elements(By.ID, "beneficiary"))
        assert _text(browser, "#beneficiary") == XSS  # shown as text, never run
        with pytest.raises(NoAlertPresentException):
            browser.switch_to.alert.text  # noqa: B018 - the property raises when no alert is open
        assert "Verify it against the log" in _text(browser, "main")
        browser.save_screenshot(str(SHOTS / "certificate.png"))

        label_id = _get(f"{base}/api/registry")["labels"][0]["label_id"]
        browser.get(f"{base}/labels/{label_id}")
        assert "kg CO2e per unit" in _text(browser, "#footprint")
        assert label_id in _text(browser, "h1")
        browser.save_screenshot(str(SHOTS / "label.png"))
        browser.get(f"{base}/trust")
        assert len(_text(browser, "#public-key")) == 64
        browser.save_screenshot(str(SHOTS / "trust.png"))

        await _projection_is_a_replay(ex)
        await _nothing_private_is_published(ex, base, label_id)
        await _web_user_reads_only_the_public_keys(ex)
        exported = run_greenex(ex.env, "public", "export", str(tmp_path / "csv"))
        assert exported.returncode == 0, exported.stderr
        assert XSS in (tmp_path / "csv" / "certificates.csv").read_text()
        assert "51.50" not in (tmp_path / "csv" / "daily.csv").read_text()  # fen: 5150, the day's close
        assert ",5150," in (tmp_path / "csv" / "daily.csv").read_text()
    finally:
        await sup.stop()
        await ex.venue.aclose()


def _listed(base: str) -> bool:
    try:
        return any(i["symbol"] == "SZEA-2025" for i in _get(f"{base}/api/market")["instruments"])
    except OSError:
        return False


async def _projection_is_a_replay(ex: Provisioned) -> None:
    """The digest the live projection publishes is that of the log replayed through a fresh core."""
    keys = ex.settings.keys

    async def digest() -> str:
        raw: Any = await ex.redis.hget(keys.digests, "projection")
        return "" if raw is None else str(raw.decode())

    async def published() -> bool:
        head = (await log_entries(ex.redis, ex.settings))[-1].seq
        return (await digest()).startswith(f"{head}:")

    await settled_exchange(ex.redis, ex.settings, timeout=60)
    await eventually(published, timeout=20, interval=0.2)
    seq, live = (await digest()).split(":")
    replayed = PublicProjection()
    for e in await log_entries(ex.redis, ex.settings):
        if e.seq <= int(seq) and e.type in replayed.inputs:
            replayed.decide(e.seq, e.event_ns, decode_event(e.body))
    assert replayed.digest() == live
    assert replayed.state.certificates
    assert replayed.state.markets["SZEA-2025"].tape


async def _nothing_private_is_published(ex: Provisioned, base: str, label_id: str) -> None:
    """No participant secret and no trading account's id in any `pub:*` value or API answer. Verifiers
    are published by design (the accredited party behind a report or a label), so they are not scanned."""
    reg = _get(f"{base}/api/registry")
    verifiers = {r["verifier"] for r in reg["reports"]} | {x["verifier"] for x in reg["labels"]}
    private = {name for name in ex.venue.credentials if name not in verifiers}
    for creds in ex.venue.credentials.values():
        private |= {creds.redis_password, creds.signing_key}
    assert len(private) > 10
    texts: list[str] = []
    redis: Any = ex.redis  # redis-py's asyncio types are loose: bytes in, bytes out here
    async for key in redis.scan_iter(match=ex.settings.keys.public):
        kind = (await redis.type(key)).decode()
        if kind == "string":
            texts.append((await redis.get(key)).decode())
        elif kind == "hash":
            texts.extend(v.decode() for v in (await redis.hgetall(key)).values())
        elif kind == "zset":
            texts.extend(m.decode() for m in await redis.zrange(key, 0, -1))
        else:
            texts.extend(str(fields) for _, fields in await redis.xrange(key))
    cert = reg["retirements"][0]["id"]
    for path in ("/api/market", "/api/instruments/SZEA-2025", "/api/registry", f"/api/certificates/{cert}",
                 f"/api/labels/{label_id}", "/api/checkpoints", "/api/certificates?q=a", "/", "/registry",
                 "/market/SZEA-2025", f"/certificates/{cert}", f"/labels/{label_id}", "/trust"):  # fmt: skip
        with urllib.request.urlopen(base + path, timeout=5) as answer:
            texts.append(answer.read().decode())
            assert "script-src 'self'" in answer.headers["Content-Security-Policy"]
    assert len(texts) > 15
    leaks = sorted({(secret, t[:80]) for t in texts for secret in private if secret in t})
    assert leaks == []


async def _web_user_reads_only_the_public_keys(ex: Provisioned) -> None:
    """ACL DRYRUN as `web`: every public key readable, the log and every private key refused."""
    keys = Keys(ex.settings.prefix)

    async def allowed(*command: str) -> bool:
        redis: Any = ex.redis
        answer = await redis.execute_command("ACL", "DRYRUN", "web", *command)
        return bool(answer == b"OK")

    assert await allowed("GET", keys.pub_market)
    assert await allowed("HMGET", keys.pub_certificates, "RC-1")
    assert await allowed("XREAD", "STREAMS", keys.pub_events, "0")
    assert await allowed("ZRANGEBYSCORE", keys.pub_certificate_order, "0", "+inf")
    assert not await allowed("ZADD", keys.pub_certificate_order, "1", "x")
    assert not await allowed("HSET", keys.pub_certificates, "x", "y")
    assert not await allowed("SET", keys.pub_market, "x")
    assert not await allowed("XRANGE", keys.log, "-", "+")
    for spec in SCHEMA:
        if spec.name.startswith("pub:"):
            continue
        key = spec.pattern(keys.prefix, "cementco")
        reads = (("GET", key), ("XRANGE", key, "-", "+"), ("HGETALL", key), ("LRANGE", key, "0", "-1"))
        for command in reads:
            assert not await allowed(*command), command
    assert not await allowed("KEYS", "*")
