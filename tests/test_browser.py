"""A real browser uses the utterance browser of notebooks/01_data_exploration.ipynb in JupyterLab.

Headless Chromium, driven through its DevTools protocol over a websocket (`websocket-client`; no
chromedriver, no selenium), opens a copy of notebook 01 in a JupyterLab server started from this
Python environment on a free 127.0.0.1 port with a random token. It checks what a reader of the
committed notebook sees before running it (the note, and a line of text where the widget would be,
since the copy is untrusted), runs it (Run > Run All Cells), then picks another utterance and
another corpus in the browser's dropdowns and checks that the figure is redrawn each time.

The copy holds only the cells of notebook 01 tagged `browser` (imports, metadata, the plotting
helpers, the note and the browser itself), with their saved outputs and widget state, so it runs
in seconds instead of the whole notebook's minute and a half.

Without Chromium the test is skipped (`make browser-deps` installs it on Debian, as root); in CI
(`CI=true`) a missing Chromium fails it instead. Nothing leaves localhost: the server listens on
127.0.0.1 only, JupyterLab's news and update checks are off, and Chromium resolves no host name.
On failure a screenshot and both logs are left in the test's tmp_path.
"""
from __future__ import annotations

import base64
import contextlib
import itertools
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parent.parent
NB01 = REPO / "notebooks" / "01_data_exploration.ipynb"
NB09 = REPO / "notebooks" / "09_predict.ipynb"
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
TIMEOUT = 90  # seconds, the most any one wait may take (server start, kernel start, a run, a redraw)
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def find_chromium() -> str | None:
    """$SIER_CHROMIUM, else the first Chromium or Chrome on PATH."""
    explicit = os.environ.get("SIER_CHROMIUM")
    if explicit:
        return explicit if Path(explicit).is_file() else None
    return next((p for p in map(shutil.which, CHROMIUM_NAMES) if p), None)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def running_as_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def wait_for(what: str, probe, timeout: float = TIMEOUT, every: float = 0.25):
    """Call probe() until it returns something truthy and return that; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)


def browser_notebook(path: Path, source: Path = NB01, parameters: dict | None = None) -> Path:
    """The cells of a notebook tagged `browser`, as committed (outputs and widget state kept);
    ``parameters`` replace lines ``name = ...`` of its parameters cell."""
    nb = nbformat.read(source, as_version=4)
    nb.cells = [c for c in nb.cells if "browser" in c.metadata.get("tags", [])]
    for cell in nb.cells:
        if "parameters" in cell.metadata.get("tags", []):
            cell.source = "\n".join(next((f"{k} = {v!r}" for k, v in (parameters or {}).items()
                                           if line.startswith(f"{k} = ")), line)
                                     for line in cell.source.splitlines())
    assert any("widgets.Dropdown" in c.source for c in nb.cells), f"no cell of {source.name} tagged `browser` holds a widget"
    nbformat.write(nb, path)
    return path


def stop(proc: subprocess.Popen):
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)


@contextlib.contextmanager
def jupyterlab(root: Path, log: Path):
    """A JupyterLab server for `root` on 127.0.0.1:<free port> with a random token; yields (url, token).

    Its configuration, settings, workspaces and runtime files live under `root` (nothing of the
    user's own Jupyter set-up is read or written); its kernel imports this checkout's sierlib.
    """
    port, token = free_port(), secrets.token_hex(16)
    config = {
        "ServerApp": {"ip": "127.0.0.1", "port": port, "port_retries": 0, "open_browser": False,
                      "root_dir": str(root), "terminals_enabled": False,
                      "allow_root": running_as_root()},  # CI containers run as root
        "IdentityProvider": {"token": token},
        "LabApp": {"expose_app_in_browser": True,  # window.jupyterapp: the test runs commands through it
                   "news_url": None, "check_for_updates_class": "jupyterlab.NeverCheckForUpdate",
                   "extension_manager": "readonly",  # nothing asks PyPI or the JupyterLab news feed
                   "user_settings_dir": str(root / ".settings"), "workspaces_dir": str(root / ".workspaces")},
    }
    config_file = root / ".config" / "jupyter_lab_config.json"
    config_file.parent.mkdir()
    config_file.write_text(json.dumps(config))
    # and no toast asking whether to fetch the news, over the page
    notification = root / ".settings" / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    notification.parent.mkdir(parents=True)
    notification.write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    # every cell rendered, not only those in view (JupyterLab 4's windowing): the test reads the
    # page's text, which must hold the browser's output wherever it lies in the notebook
    tracker = root / ".settings" / "@jupyterlab" / "notebook-extension" / "tracker.jupyterlab-settings"
    tracker.parent.mkdir(parents=True, exist_ok=True)
    tracker.write_text(json.dumps({"windowingMode": "none"}))
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(config_file.parent), JUPYTER_RUNTIME_DIR=str(root / ".runtime"),
               IPYTHONDIR=str(root / ".ipython"),
               PYTHONPATH=os.pathsep.join([str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])]))
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "jupyterlab", f"--config={config_file}"],
                                cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"

    def answers():
        if proc.poll() is not None:
            pytest.fail(f"JupyterLab exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        with contextlib.suppress(OSError):
            with urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=5) as r:
                return r.status == 200

    try:
        wait_for("JupyterLab to answer", answers)
        yield url, token
    finally:
        stop(proc)


class Page:
    """One Chromium tab, driven through the DevTools protocol: the few calls this test needs."""

    def __init__(self, ws_url: str):
        import websocket  # websocket-client

        self.ws = websocket.create_connection(ws_url, timeout=TIMEOUT, suppress_origin=True)
        self.ids = itertools.count(1)

    def send(self, method: str, **params):
        msg_id = next(self.ids)
        self.ws.send(json.dumps({"id": msg_id, "method": method, "params": params}))
        while True:  # skip events
            reply = json.loads(self.ws.recv())
            if reply.get("id") == msg_id:
                if "error" in reply:
                    raise RuntimeError(f"DevTools {method}: {reply['error']}")
                return reply.get("result", {})

    def js(self, expression: str):
        """The value of a JavaScript expression in the page (a promise is awaited)."""
        result = self.send("Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"JavaScript error: {result['exceptionDetails']}\nin: {expression}")
        return result["result"].get("value")

    def screenshot(self, path: Path):
        path.write_bytes(base64.b64decode(self.send("Page.captureScreenshot", format="png")["data"]))

    def close(self):
        self.ws.close()


@contextlib.contextmanager
def chromium(binary: str, profile: Path, log: Path):
    """Headless Chromium with a fresh profile and remote debugging on a free port; yields its Page."""
    cmd = [binary, "--headless=new", "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0",
           f"--user-data-dir={profile}", "--no-first-run", "--no-default-browser-check", "--disable-extensions",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           "--disable-default-apps", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,1000",
           "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1", "about:blank"]
    if running_as_root():
        cmd.insert(1, "--no-sandbox")  # Chromium's sandbox refuses root (CI containers)
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    page = None
    try:
        port_file = profile / "DevToolsActivePort"  # Chromium writes the port it chose here

        def devtools_port():
            if proc.poll() is not None:
                pytest.fail(f"Chromium exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
            lines = port_file.read_text().splitlines() if port_file.exists() else []
            return lines[0] if len(lines) == 2 else None

        port = wait_for("Chromium's DevTools port", devtools_port)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as r:
            tab = next(t for t in json.load(r) if t["type"] == "page")
        page = Page(tab["webSocketDebuggerUrl"])
        yield page
    finally:
        if page is not None:
            page.close()
        stop(proc)


# JavaScript run in the page. NOTEBOOK finds the open notebook panel through the exposed app.
NOTEBOOK = "Array.from(window.jupyterapp?.shell.widgets('main') ?? []).find(w => w.sessionContext)"
KERNEL_IDLE = f"(() => {{ const k = ({NOTEBOOK})?.sessionContext.session?.kernel; return k?.status === 'idle'; }})()"
# every code cell has run (an execution count) and none shows an error
RUN_STATE = f"""(() => {{
  const cells = Array.from(({NOTEBOOK}).content.widgets).filter(c => c.model.type === 'code');
  const errors = cells.flatMap(c => Array.from({{length: c.model.outputs.length}}, (_, i) => c.model.outputs.get(i))
                                        .filter(o => o.type === 'error').map(o => o.toJSON().ename + ': ' + o.toJSON().evalue));
  return {{ran: cells.every(c => c.model.executionCount !== null), errors}};
}})()"""
FIGURE_SRC = "document.querySelector('.widget-vbox .widget-output img')?.src ?? null"
DROPDOWNS = """Object.fromEntries(Array.from(document.querySelectorAll('.widget-dropdown')).map(d => {
  const s = d.querySelector('select');
  return [d.querySelector('label').textContent,
          {value: s.options[s.selectedIndex]?.textContent, options: Array.from(s.options).map(o => o.textContent)}];
}))"""


def choose(page: Page, label: str, option: str):
    """Pick `option` in the dropdown labelled `label` as a user's selection does: set it, fire `change`."""
    page.js(f"""(() => {{
      const d = Array.from(document.querySelectorAll('.widget-dropdown'))
                     .find(d => d.querySelector('label').textContent === {json.dumps(label)});
      const s = d.querySelector('select');
      s.selectedIndex = Array.from(s.options).findIndex(o => o.textContent === {json.dumps(option)});
      s.dispatchEvent(new Event('change', {{bubbles: true}}));
    }})()""")


@contextlib.contextmanager
def failure_evidence(page: Page, tmp_path: Path):
    """On a failure inside the block, leave a screenshot beside the two logs in tmp_path."""
    try:
        yield
    except BaseException:
        with contextlib.suppress(Exception):
            page.screenshot(tmp_path / "failure.png")
        print(f"screenshot (failure.png), jupyterlab.log and chromium.log are in {tmp_path}")
        raise


def redrawn(page: Page, before: str, what: str) -> str:
    return wait_for(f"the figure to be redrawn after {what}",
                    lambda: (src := page.js(FIGURE_SRC)) and src != before and src)


def chromium_or_skip() -> str:
    binary = find_chromium()
    if binary is None:
        reason = (f"Chromium not found (looked for $SIER_CHROMIUM, {', '.join(CHROMIUM_NAMES)}): "
                  "`make browser-deps` installs it on Debian (as root)")
        if IN_CI:
            pytest.fail(f"{reason}; CI=true, so this test must run")
        pytest.skip(reason)
    return binary


@pytest.mark.real
@pytest.mark.slow
def test_the_widget_browser_redraws_in_jupyterlab(real_data, tmp_path):
    binary = chromium_or_skip()

    root = tmp_path / "lab"
    root.mkdir()
    browser_notebook(root / "browser.ipynb")
    t0 = time.monotonic()
    with jupyterlab(root, tmp_path / "jupyterlab.log") as (url, token), \
            chromium(binary, tmp_path / "chromium", tmp_path / "chromium.log") as page:
        with failure_evidence(page, tmp_path):
            page.send("Page.navigate", url=f"{url}/lab/tree/browser.ipynb?reset&token={token}")
            wait_for("the notebook to open with an idle kernel", lambda: page.js(KERNEL_IDLE))
            t_open = time.monotonic()

            # as cloned (untrusted): the note above the browser, and a line of text where it would be
            text = page.js("document.querySelector('.jp-Notebook').innerText")
            assert "live only in a running kernel" in text.lower()
            assert "Utterance browser: live only in a running kernel" in text and "VBox(" not in text
            assert page.js(FIGURE_SRC) is None

            page.js("window.jupyterapp.commands.execute('notebook:run-all-cells')")
            first = wait_for("the browser's first figure", lambda: page.js(FIGURE_SRC))
            state = wait_for("every cell to have run", lambda: (s := page.js(RUN_STATE))["ran"] and s)
            assert state["errors"] == []
            assert first.startswith("data:image/png;base64,")
            t_run = time.monotonic()

            # another utterance of the same speaker and emotion
            dropdowns = page.js(DROPDOWNS)
            assert dropdowns["corpus"]["value"] == "Emo-DB"
            other = next(o for o in dropdowns["utterance"]["options"] if o != dropdowns["utterance"]["value"])
            choose(page, "utterance", other)
            second = redrawn(page, first, f"choosing utterance {other}")

            # another corpus: every dropdown below it gets new options, and the figure follows
            choose(page, "corpus", "RAVDESS")
            third = redrawn(page, second, "choosing RAVDESS")
            wait_for("RAVDESS actors in the speaker dropdown",
                     lambda: page.js(DROPDOWNS)["speaker"]["options"] == [f"{i:02d}" for i in range(1, 25)])
            assert page.js(DROPDOWNS)["utterance"]["value"].startswith("03-01-")  # a RAVDESS file name
            assert len({first, second, third}) == 3
            wait_for("the kernel to settle", lambda: page.js(KERNEL_IDLE))
            assert page.js(RUN_STATE)["errors"] == []
        t_end = time.monotonic()
    print(f"\nbrowser test: JupyterLab and the notebook open {t_open - t0:.1f} s, run {t_run - t_open:.1f} s, "
          f"two redraws {t_end - t_run:.1f} s")


RECORDINGS = """Array.from(document.querySelectorAll('.widget-dropdown select')).map(s => ({
  value: s.options[s.selectedIndex]?.textContent, options: Array.from(s.options).map(o => o.textContent)}))[0]"""


@pytest.mark.real
@pytest.mark.slow
def test_the_prediction_browser_redraws_in_jupyterlab(real_data, tmp_path):
    """Notebook 09: untrusted, one line of text; run, a probability plot; another recording, another plot."""
    from sierlib.config import RunConfig, RunOptions
    from sierlib.experiments import run

    binary = chromium_or_skip()
    # a tiny saved network, trained here (a fresh clone has none), so the browser waits for no training
    record = run(RunConfig(epochs=1, n_filters=8, gru_hidden=8, fc_hidden=8),
                 RunOptions(device="cpu", save_model=True, out_dir=str(tmp_path / "runs")), progress=False)
    root = tmp_path / "lab"
    root.mkdir()
    nb = browser_notebook(root / "predict.ipynb", NB09, {"model": record["model"]})
    with jupyterlab(root, tmp_path / "jupyterlab.log") as (url, token), \
            chromium(binary, tmp_path / "chromium", tmp_path / "chromium.log") as page:
        with failure_evidence(page, tmp_path):
            page.send("Page.navigate", url=f"{url}/lab/tree/{nb.name}?reset&token={token}")
            wait_for("the notebook to open with an idle kernel", lambda: page.js(KERNEL_IDLE))
            text = page.js("document.querySelector('.jp-Notebook').innerText")
            assert "Prediction browser: live only in a running kernel" in text and "VBox(" not in text
            assert page.js(FIGURE_SRC) is None
            page.js("window.jupyterapp.commands.execute('notebook:run-all-cells')")
            first = wait_for("the first probability plot", lambda: page.js(FIGURE_SRC))
            state = wait_for("every cell to have run", lambda: (s := page.js(RUN_STATE))["ran"] and s)
            assert state["errors"] == [] and first.startswith("data:image/png;base64,")
            recordings = page.js(RECORDINGS)
            other = next(o for o in recordings["options"] if o.split(" ")[-1] != recordings["value"].split(" ")[-1])
            choose(page, "recording", other)  # a recording of another emotion
            second = redrawn(page, first, f"choosing {other}")
            assert second != first
            wait_for("the kernel to settle", lambda: page.js(KERNEL_IDLE))
            assert page.js(RUN_STATE)["errors"] == []
