"""The playground in a real headless browser (issue 15, CONTRACT §5.5): Debian's chromium
and chromedriver, driven by Selenium.  The tests open URLs, type expressions, and check
the KaTeX DOM (the annotation inside #derivative is d.latex() of the numerically checked
derivative, no .katex-error), the error element with its caret text, the code panel,
that the URL follows the inputs, the phone width and the dark scheme; they save
screenshots in a temporary directory (MATCALC_SCREENSHOTS names another).

Where no browser is found they skip and say why; with MATCALC_REQUIRE_BROWSER=1 (CI)
they fail instead."""
import os
import shutil
import tempfile
import threading
import time
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

import matcalc
from helpers import check_derivative, check_hessian
from matcalc.web import server as web

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage"]
WAIT = 20


def _unavailable():
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install '.[test]')", None, None
    browser = next((p for p in (shutil.which("chromium"), shutil.which("chromium-browser"),
                                shutil.which("google-chrome")) if p), None)
    driver = next((p for p in (shutil.which("chromedriver"), "/usr/bin/chromedriver")
                   if p and os.path.exists(p)), None)
    if browser is None or driver is None:
        return ("no headless browser: install Debian's chromium and chromium-driver "
                "(apt-get install chromium chromium-driver)"), None, None
    return None, browser, driver


@pytest.fixture(scope="module")
def shots():
    d = os.environ.get("MATCALC_SCREENSHOTS") or tempfile.mkdtemp(prefix="matcalc-shots-")
    os.makedirs(d, exist_ok=True)
    return d


@pytest.fixture(scope="module")
def browser():
    reason, binary, driver_path = _unavailable()
    if reason:
        if os.environ.get("MATCALC_REQUIRE_BROWSER") == "1":
            pytest.fail(reason + "; MATCALC_REQUIRE_BROWSER=1 asks for the browser tests")
        pytest.skip(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    opts = webdriver.ChromeOptions()
    for f in FLAGS:
        opts.add_argument(f)
    profile = tempfile.mkdtemp(prefix="matcalc-chromium-")
    opts.add_argument("--user-data-dir=" + profile)
    opts.add_argument("--window-size=1200,1000")
    opts.binary_location = binary
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # the driver's path is given, so Selenium Manager has nothing to download
    try:
        drv = webdriver.Chrome(service=Service(executable_path=driver_path), options=opts)
    except Exception as e:  # noqa: BLE001 - a browser that cannot start here
        reason = f"{binary} did not start under {driver_path}: {type(e).__name__}: {str(e).splitlines()[0]}"
        if os.environ.get("MATCALC_REQUIRE_BROWSER") == "1":
            pytest.fail(reason + "; MATCALC_REQUIRE_BROWSER=1 asks for the browser tests")
        pytest.skip(reason)
    drv.set_page_load_timeout(WAIT)
    yield drv
    drv.quit()
    shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="module")
def srv():
    s = web.PlaygroundServer("127.0.0.1", 0, workers=2)
    t = threading.Thread(target=s.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    t.start()
    yield s
    s.shutdown()
    s.server_close()


def url(srv, expr=None, wrt=None, lets=(), **params):
    q = [("expr", expr), ("wrt", wrt)] + [("let", x) for x in lets] + list(params.items())
    return f"http://127.0.0.1:{srv.port}/?" + urlencode([(k, v) for k, v in q if v is not None])


def annotations(drv):
    return drv.execute_script(
        "return Array.from(document.querySelectorAll('#derivative annotation')).map(a => a.textContent)")


def wait_for(drv, fn, what):
    end = time.monotonic() + WAIT
    last = None
    while time.monotonic() < end:
        last = fn()
        if last:
            return last
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}; status: "
                         f"{drv.find_element('id', 'status').text!r}, last: {last!r}")


def wait_answer(drv, latex):
    want = latex if isinstance(latex, list) else [latex]
    wait_for(drv, lambda: annotations(drv) == want, f"the answer {want}")
    assert drv.execute_script("return document.querySelectorAll('.katex-error').length") == 0
    assert not drv.find_element("id", "error").is_displayed()


def no_csp_violations(drv):
    bad = [e["message"] for e in drv.get_log("browser")
           if "Content Security Policy" in e["message"] or "Uncaught" in e["message"]]
    assert not bad, bad


def query(drv):
    return parse_qs(urlsplit(drv.current_url).query)


# ---------------------------------------------------------------------------- opening URLs


@pytest.mark.parametrize("name, expr, wrt, lets, params", [
    ("gradient", "tr(X^T A X)", "X", (), {}),
    ("symmetric", "x^T A x + c", "x", ("A=symmetric", "c=scalar"), {}),
    ("numerator", "||A x - b||^2", "x", (), {"layout": "numerator"}),
    ("unicode", "tr(Xᵀ A X) + sum(exp(X))", "X", (), {}),
    ("spd", "logdet(S) + (x - mu)^T S^-1 (x - mu)", "S", ("S=spd",), {}),
])
def test_url_opens_the_derivation(browser, srv, shots, name, expr, wrt, lets, params):
    decl = dict(x.split("=") for x in lets) or None
    d = check_derivative(expr, wrt, symbols=decl, layout=params.get("layout", "gradient"),
                         dom="spd" if decl and "S" in decl else "any")
    browser.get(url(srv, expr, wrt, lets, **params))
    wait_answer(browser, d.latex())
    assert browser.find_element("css selector", ".answer-text").text == str(d)
    assert "numeric check" in browser.find_element("css selector", ".check").text
    assert browser.find_element("id", "expr").get_attribute("value") == expr
    browser.save_screenshot(os.path.join(shots, f"url-{name}.png"))
    no_csp_violations(browser)


def test_hessian_and_several_variables(browser, srv, shots):
    h = check_hessian("x^T A x", "x")
    browser.get(url(srv, "x^T A x", "x", kind="hessian"))
    wait_answer(browser, h.latex())
    assert browser.find_element("id", "kind-hessian").is_selected()
    expr = "||X - U V^T||_F^2"
    ds = [check_derivative(expr, w) for w in ("U", "V")]
    browser.get(url(srv, expr, "U,V"))
    wait_answer(browser, [d.latex() for d in ds])
    assert len(browser.find_elements("css selector", "#answers .card")) == 2
    browser.save_screenshot(os.path.join(shots, "several.png"))


# ---------------------------------------------------------------------------- typing


def test_typing_derives_and_the_url_follows(browser, srv, shots):
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select
    browser.get(f"http://127.0.0.1:{srv.port}/")
    expr_box = browser.find_element("id", "expr")
    assert browser.switch_to.active_element == expr_box          # the expression has the focus
    expr_box.send_keys("tr(X^T B X)")
    expr_box.send_keys(Keys.TAB)                                  # the keyboard reaches the variable
    assert browser.switch_to.active_element == browser.find_element("id", "wrt")
    browser.switch_to.active_element.send_keys("X")
    d = check_derivative("tr(X^T B X)", "X")
    wait_answer(browser, d.latex())
    q = query(browser)
    assert q["expr"] == ["tr(X^T B X)"] and q["wrt"] == ["X"]

    Select(browser.find_element("id", "layout")).select_by_value("numerator")
    dn = check_derivative("tr(X^T B X)", "X", layout="numerator")
    wait_answer(browser, dn.latex())
    assert query(browser)["layout"] == ["numerator"]

    browser.find_element("id", "let").send_keys("B=symmetric")
    ds = check_derivative("tr(X^T B X)", "X", symbols={"B": "symmetric"}, layout="numerator")
    wait_answer(browser, ds.latex())
    assert query(browser)["let"] == ["B=symmetric"]
    browser.save_screenshot(os.path.join(shots, "typed.png"))

    # the URL reproduces the page it describes
    browser.get(browser.current_url)
    wait_answer(browser, ds.latex())


def test_symmetric_convention_and_kind_menus(browser, srv):
    from selenium.webdriver.support.ui import Select
    sym = check_derivative("tr(A S)", "S", symbols={"S": "symmetric"})
    browser.get(url(srv, "tr(A S)", "S", ("S=symmetric",)))
    wait_answer(browser, sym.latex())
    Select(browser.find_element("id", "symmetric")).select_by_value("cookbook")
    cook = check_derivative("tr(A S)", "S", symbols={"S": "symmetric"}, symmetric="cookbook")
    assert cook.latex() != sym.latex()
    wait_answer(browser, cook.latex())
    assert query(browser)["symmetric"] == ["cookbook"]
    # the menu of a symbol's kind edits the declarations
    Select(browser.find_element("css selector", 'select[data-symbol="A"]')).select_by_value("symmetric")
    both = check_derivative("tr(A S)", "S", symbols={"S": "symmetric", "A": "symmetric"}, symmetric="cookbook")
    wait_answer(browser, both.latex())
    assert sorted(query(browser)["let"]) == ["A=symmetric", "S=symmetric"]
    assert "A=symmetric" in browser.find_element("id", "let").get_attribute("value")


def test_every_example_of_the_menu_derives(browser, srv):
    import json
    from selenium.webdriver.support.ui import Select
    browser.get(f"http://127.0.0.1:{srv.port}/")
    menu = Select(browser.find_element("id", "examples"))
    values = [(i, o.get_attribute("value")) for i, o in enumerate(menu.options)
              if o.get_attribute("value")]
    assert len(values) >= 5
    for index, value in values:
        expr, wrt, lets, kind = json.loads(value)
        decl = dict(x.split("=") for x in lets.split(", ")) if lets else None
        dom = "spd" if decl and "spd" in decl.values() else "any"
        if kind == "hessian":
            want = [check_hessian(expr, wrt, symbols=decl, dom=dom).latex()]
        else:
            want = [check_derivative(expr, w, symbols=decl, dom=dom).latex() for w in wrt.split(",")]
        # by index: select_by_value builds a CSS selector, where the backslashes of a LaTeX
        # example would be escapes
        Select(browser.find_element("id", "examples")).select_by_index(index)
        wait_answer(browser, want)
        assert query(browser)["expr"] == [expr]


def test_error_with_caret_keeps_the_last_good_answer(browser, srv, shots):
    from selenium.webdriver.common.keys import Keys
    d = check_derivative("tr(X^T A X)", "X")
    browser.get(url(srv, "tr(X^T A X)", "X"))
    wait_answer(browser, d.latex())
    browser.find_element("id", "expr").send_keys(Keys.BACKSPACE)       # "tr(X^T A X"
    err = browser.find_element("id", "error")
    wait_for(browser, err.is_displayed, "the error")
    with pytest.raises(matcalc.ParseError) as e:
        matcalc.diff("tr(X^T A X", wrt="X")
    text = browser.execute_script("return document.getElementById('error-text').textContent")
    assert text == e.value.render() and text.splitlines()[-1].strip() == "^"
    assert annotations(browser) == [d.latex()]                          # the last good answer stays
    assert "last good answer" in browser.find_element("id", "status").text
    assert query(browser)["expr"] == ["tr(X^T A X"]
    browser.save_screenshot(os.path.join(shots, "error.png"))


def test_user_text_is_never_markup(browser, srv):
    hostile = '<img src=x id=pwned onerror="document.title=1">'
    browser.get(url(srv, hostile, "x"))
    err = browser.find_element("id", "error")
    wait_for(browser, err.is_displayed, "the error")
    assert hostile in browser.execute_script("return document.getElementById('error-text').textContent")
    assert browser.find_elements("id", "pwned") == []


# ---------------------------------------------------------------------------- panels


def test_code_panel_and_steps(browser, srv):
    d = check_derivative("sum(log(1 + exp(-y .* (A w))))", "w")
    browser.get(url(srv, "sum(log(1 + exp(-y .* (A w))))", "w"))
    wait_answer(browser, d.latex())
    code = lambda: browser.execute_script("return document.getElementById('code-0').textContent")  # noqa: E731
    assert code() == d.to_code("numpy")
    for target in ("jax", "torch"):
        browser.find_element("css selector", f'button[data-target="{target}"]').click()
        assert code() == d.to_code(target)
        assert browser.find_element("css selector", f'button[data-target="{target}"]') \
            .get_attribute("aria-pressed") == "true"
    # download: the file is the code of the chosen target
    where = tempfile.mkdtemp(prefix="matcalc-download-")
    browser.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": where})
    browser.find_element("xpath", "//section[@class='code']//button[text()='download']").click()
    path = os.path.join(where, "matcalc_torch_w.py")
    wait_for(browser, lambda: os.path.exists(path) and open(path).read() == d.to_code("torch"), "the download")
    shutil.rmtree(where, ignore_errors=True)
    steps = browser.find_element("css selector", "details.steps")
    steps.find_element("tag name", "summary").click()
    ann = browser.execute_script(
        "return document.querySelector('details.steps .math annotation').textContent")
    assert ann == d.steps.latex()


def test_copy_button_copies_the_text_form(browser, srv):
    d = check_derivative("tr(X^T A X)", "X")
    browser.get(url(srv, "tr(X^T A X)", "X"))
    wait_answer(browser, d.latex())
    browser.execute_cdp_cmd("Browser.grantPermissions", {
        "origin": f"http://127.0.0.1:{srv.port}", "permissions": ["clipboardReadWrite", "clipboardSanitizedWrite"]})
    browser.find_element("xpath", "//div[@class='row'][span[text()='text']]/button").click()
    wait_for(browser, lambda: browser.execute_async_script(
        "navigator.clipboard.readText().then(arguments[0], () => arguments[0](null))") == str(d), "the clipboard")


def test_rules_page(browser, srv):
    from matcalc.rules import catalogue
    browser.get(f"http://127.0.0.1:{srv.port}/rules")
    rows = browser.find_elements("css selector", "main.rules tbody tr")
    assert len(rows) == sum(len(r) for _, r in catalogue())
    no_csp_violations(browser)


# ---------------------------------------------------------------------------- phone and dark


def test_phone_width_and_dark_scheme(browser, srv, shots):
    d = check_derivative("x^T A x + c", "x", symbols={"A": "symmetric", "c": "scalar"})
    page = url(srv, "x^T A x + c", "x", ("A=symmetric", "c=scalar"))
    try:
        browser.set_window_size(390, 844)
        browser.get(page)
        wait_answer(browser, d.latex())
        assert browser.execute_script("return document.documentElement.scrollWidth <= window.innerWidth + 1")
        browser.save_screenshot(os.path.join(shots, "phone.png"))
        browser.set_window_size(1200, 1000)
        browser.execute_cdp_cmd("Emulation.setEmulatedMedia",
                                {"features": [{"name": "prefers-color-scheme", "value": "dark"}]})
        browser.get(page)
        wait_answer(browser, d.latex())
        bg = browser.execute_script("return getComputedStyle(document.body).backgroundColor")
        rgb = [int(x) for x in bg[bg.index("(") + 1:bg.index(")")].split(",")[:3]]
        assert sum(rgb) < 150, bg
        browser.save_screenshot(os.path.join(shots, "dark.png"))
    finally:
        browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": []})
        browser.set_window_size(1200, 1000)


def test_abbreviated_answer_shows_below_the_flat_one(browser, srv, shots):
    """A long answer with a repeated part shows "… where W = …" below #derivative, whose
    annotation stays d.latex() (CONTRACT §5.5); a short one shows no second form."""
    expr = "tr(A^T X B (R + B^T X B)^-1 B^T X A)"
    d = check_derivative(expr, "X")
    short = d.latex(abbreviate=True)
    assert short != d.latex() and "\\text{where }" in short
    browser.get(url(srv, expr, "X"))
    wait_answer(browser, d.latex())
    shown = wait_for(browser, lambda: browser.execute_script(
        "return Array.from(document.querySelectorAll('#abbreviated annotation')).map(a => a.textContent)"),
        "the abbreviated answer")
    assert shown == [short]
    assert browser.find_element("id", "abbreviated").is_displayed()
    texts = browser.execute_script(
        "return Array.from(document.querySelectorAll('.abbreviated-text')).map(a => a.textContent)")
    from matcalc.abbreviate import of_derivative
    assert texts == [of_derivative(d).text()]
    browser.save_screenshot(os.path.join(shots, "abbreviated.png"))
    d2 = check_derivative("tr(X^T A X)", "X")
    browser.get(url(srv, "tr(X^T A X)", "X"))
    wait_answer(browser, d2.latex())
    assert not browser.find_element("id", "abbreviated").is_displayed()
    assert browser.execute_script("return document.querySelectorAll('#abbreviated annotation').length") == 0
    no_csp_violations(browser)
