"""sierlib.download: fetch, unpack, verify and install a corpus, against a local HTTP server.

No test touches the internet: each serves a small zip laid out like Emo-DB's ``download.zip``
from 127.0.0.1 and replaces ``read_checksums`` with that zip's own list. The real shipped lists
and the real corpora (``@pytest.mark.real``) are checked separately.
"""
from __future__ import annotations

import hashlib
import http.client
import io
import os
import re
import stat
import threading
import urllib.error
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import sierlib.cli
import sierlib.download as dl
from sierlib.audio import CorpusError
from sierlib.download import download_corpus, fetch, read_checksums, verify_corpus, verify_files

ARCHIVE = dl.SOURCES["emodb"]["archive"]


# --------------------------------------------------------------------------- a tiny "Emo-DB"

def _tiny_wav(seed: int) -> bytes:
    y = np.random.default_rng(seed).uniform(-0.5, 0.5, 400).astype(np.float32)
    buf = io.BytesIO()
    sf.write(buf, y, 16000, format="WAV", subtype="PCM_16")
    return buf.getvalue()


FILES = {
    "erkennung.txt": b"tiny stand-in for Emo-DB's erkennung.txt\n",
    "wav/03a01Fa.wav": _tiny_wav(1),
    "wav/03a01Wa.wav": _tiny_wav(2),
    "wav/08a01Na.wav": _tiny_wav(3),
}
CHECKSUMS = {rel: hashlib.sha256(data).hexdigest() for rel, data in FILES.items()}


def make_zip(files: dict[str, bytes] = FILES, prefix: str = "") -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        if prefix:
            zf.writestr(prefix, b"")  # an explicit directory entry, as many zip tools write
        for rel, data in files.items():
            zf.writestr(prefix + rel, data)
    return buf.getvalue()


@pytest.fixture
def checksums(monkeypatch):
    """Make sierlib.download expect the tiny corpus above instead of the shipped lists."""
    def fake(name):
        assert name == "emodb", name
        return dict(CHECKSUMS)

    monkeypatch.setattr(dl, "read_checksums", fake)
    return CHECKSUMS


# --------------------------------------------------------------------------- local HTTP server

class _Handler(BaseHTTPRequestHandler):
    routes: dict = {}      # path -> bytes (served whole) or ("cut", bytes) (connection dropped)
    requests: list = []

    def do_GET(self):  # noqa: N802 (http.server's naming)
        self.requests.append(self.path)
        body = self.routes.get(self.path)
        if body is None:
            self.send_error(404)
            return
        if isinstance(body, tuple):  # promise more than we send, then hang up
            _, data = body
            self.send_response(200)
            self.send_header("Content-Type", "application/zip")
            self.send_header("Content-Length", str(len(data) + 10_000))
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/zip")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):  # keep the test output quiet
        pass


class Server:
    def __init__(self):
        handler = type("Handler", (_Handler,), {"routes": {}, "requests": []})
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.routes, self.requests = handler.routes, handler.requests
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def serve(self, path: str, body) -> str:
        self.routes[path] = body
        return self.url(path)

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def server():
    s = Server()
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture
def root(tmp_path) -> Path:
    return tmp_path / "data"


def leftovers(root: Path) -> list[str]:
    """Anything a failed or finished download must not leave: temp folders and partial files."""
    if not root.exists():
        return []
    bad = [p for p in root.rglob("*") if p.name.endswith(".part") or p.name.startswith(".tmp-")]
    return sorted(str(p.relative_to(root)) for p in bad)


def assert_nothing_installed(root: Path) -> None:
    assert not (root / "emodb").exists()
    assert leftovers(root) == []
    assert not (root / ".downloads" / ARCHIVE).exists()
    if root.exists():  # at most an empty .downloads folder remains
        assert [str(p.relative_to(root)) for p in root.rglob("*")] in ([], [".downloads"])


def assert_installed(target: Path, files: dict[str, bytes] = FILES) -> None:
    assert target.is_dir()
    for rel, data in files.items():
        assert (target / rel).read_bytes() == data, rel
    assert verify_files(target, CHECKSUMS, progress=False) == []


# --------------------------------------------------------------------------- download_corpus

def test_download_installs_and_verifies(server, root, checksums):
    url = server.serve("/download.zip", make_zip())
    target = download_corpus("emodb", root, url=url, progress=False)
    assert target == root.resolve() / "emodb"
    assert_installed(target)
    assert leftovers(root) == []
    assert not (root / ".downloads" / ARCHIVE).exists()  # archive removed by default
    assert sorted(p.name for p in root.iterdir()) == [".downloads", "emodb"]
    # the corpus folder gets ordinary permissions (not mkdtemp's owner-only 0700)
    ref = root / "ref"
    ref.mkdir()
    assert stat.S_IMODE(target.stat().st_mode) == stat.S_IMODE(ref.stat().st_mode)
    verify_corpus("emodb", root, progress=False)  # and the installed copy verifies


def test_download_keep_archive(server, root, checksums):
    payload = make_zip()
    url = server.serve("/download.zip", payload)
    download_corpus("emodb", root, url=url, keep_archive=True, progress=False)
    assert (root / ".downloads" / ARCHIVE).read_bytes() == payload
    assert leftovers(root) == []
    # the kept archive is reused for the same URL (nothing fetched) ...
    n = len(server.requests)
    download_corpus("emodb", root, url=url, force=True, keep_archive=True, progress=False)
    assert len(server.requests) == n
    # ... but not for another one: a mirror given with --url is fetched, not shadowed by the old zip
    wrapped = make_zip(prefix="download/")
    mirror = server.serve("/mirror.zip", wrapped)
    assert_installed(download_corpus("emodb", root, url=mirror, force=True, keep_archive=True, progress=False))
    assert server.requests[n:] == ["/mirror.zip"]
    assert (root / ".downloads" / ARCHIVE).read_bytes() == wrapped
    # without keep_archive, the archive and its URL note both go
    download_corpus("emodb", root, url=url, force=True, progress=False)
    assert sorted(p.name for p in (root / ".downloads").iterdir()) == []


def test_download_archive_with_wrapper_folder(server, root, checksums):
    url = server.serve("/wrapped.zip", make_zip(prefix="download/"))
    target = download_corpus("emodb", root, url=url, progress=False)
    assert_installed(target)
    assert not (target / "download").exists()
    assert sorted(p.name for p in root.iterdir()) == [".downloads", "emodb"]
    assert leftovers(root) == []


@pytest.mark.parametrize("prefix", ["", "download/"])
def test_only_listed_members_are_installed(server, root, checksums, tmp_path, prefix):
    """Extra members -- outside the target, absolute, or simply not in the checksum list -- are
    never written anywhere; the listed files install as usual."""
    outside = tmp_path / "outside-evil.txt"
    files = dict(FILES)
    files.update({"../evil.txt": b"climbs out", "../../evil2.txt": b"climbs further",
                  "wav/03a01Xa.wav": FILES["wav/03a01Fa.wav"], "wav/notes.txt": b"stray"})
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for rel, data in files.items():
            zf.writestr(prefix + rel, data)
        zf.writestr(str(outside), b"absolute path")  # an absolute member name
    url = server.serve("/download.zip", buf.getvalue())
    target = download_corpus("emodb", root, url=url, progress=False)
    assert_installed(target)
    installed = sorted(p.relative_to(target).as_posix() for p in target.rglob("*") if p.is_file())
    assert installed == sorted(FILES)
    assert not outside.exists()
    assert sorted(p.name for p in tmp_path.rglob("*evil*")) == []
    assert sorted(p.name for p in root.iterdir()) == [".downloads", "emodb"]
    assert leftovers(root) == []
    verify_corpus("emodb", root, progress=False)


def test_bad_checksum_installs_nothing(server, root, checksums):
    files = dict(FILES)
    files["wav/03a01Wa.wav"] = FILES["wav/03a01Wa.wav"][:-2] + b"\x00\x01"  # one file altered
    url = server.serve("/download.zip", make_zip(files))
    with pytest.raises(CorpusError, match=re.escape("wav/03a01Wa.wav")) as err:
        download_corpus("emodb", root, url=url, progress=False)
    assert "sha256" in str(err.value)
    assert "03a01Fa" not in str(err.value)  # only the bad file is named
    assert_nothing_installed(root)


def test_missing_file_in_archive_is_named(server, root, checksums):
    files = {k: v for k, v in FILES.items() if k != "wav/08a01Na.wav"}
    url = server.serve("/download.zip", make_zip(files))
    with pytest.raises(CorpusError, match=re.escape("wav/08a01Na.wav: missing")):
        download_corpus("emodb", root, url=url, progress=False)
    assert_nothing_installed(root)


def test_interrupted_download_leaves_nothing(server, root, checksums):
    url = server.serve("/cut.zip", ("cut", make_zip()))
    with pytest.raises((OSError, http.client.HTTPException)):
        download_corpus("emodb", root, url=url, progress=False)
    assert_nothing_installed(root)


def test_non_zip_payload(server, root, checksums):
    url = server.serve("/download.zip", b"<html><body>Sorry, the server is down.</body></html>\n" * 20)
    with pytest.raises(CorpusError, match="not a complete zip archive"):
        download_corpus("emodb", root, url=url, progress=False)
    assert_nothing_installed(root)


def test_zip_of_something_else_is_removed(server, root, checksums):
    """A valid zip that is not the corpus must not stay in .downloads (it would be reused)."""
    url = server.serve("/other.zip", make_zip({"README.md": b"not emodb", "src/x.py": b"pass\n"}))
    with pytest.raises(CorpusError, match="does not contain"):
        download_corpus("emodb", root, url=url, progress=False)
    assert_nothing_installed(root)
    # the next attempt fetches again, and a good archive installs
    url = server.serve("/download.zip", make_zip())
    assert_installed(download_corpus("emodb", root, url=url, progress=False))


def test_http_error(server, root, checksums):
    with pytest.raises(urllib.error.HTTPError):
        download_corpus("emodb", root, url=server.url("/nothing-here.zip"), progress=False)
    assert_nothing_installed(root)


def test_existing_corpus_is_verified_not_refetched(server, root, checksums):
    url = server.serve("/download.zip", make_zip())
    target = download_corpus("emodb", root, url=url, progress=False)
    n = len(server.requests)
    # force=False: verified in place, nothing fetched (the URL now serves garbage)
    server.serve("/download.zip", b"garbage")
    assert download_corpus("emodb", root, url=url, progress=False) == target
    assert len(server.requests) == n
    assert_installed(target)
    # a damaged existing copy is reported (naming the file), not silently replaced
    (target / "wav" / "08a01Na.wav").write_bytes(b"damaged")
    with pytest.raises(CorpusError, match=re.escape("wav/08a01Na.wav: sha256 mismatch")) as err:
        download_corpus("emodb", root, url=url, progress=False)
    assert "--force" in str(err.value)
    assert len(server.requests) == n
    assert (target / "wav" / "08a01Na.wav").read_bytes() == b"damaged"


def test_force_replaces_only_after_verification(server, root, checksums):
    url = server.serve("/download.zip", make_zip())
    target = download_corpus("emodb", root, url=url, progress=False)
    (target / "marker.txt").write_text("the old copy")
    # a bad new copy: the old one stays exactly as it was
    files = dict(FILES)
    files["wav/03a01Fa.wav"] = b"RIFF broken"
    server.serve("/download.zip", make_zip(files))
    with pytest.raises(CorpusError, match=re.escape("wav/03a01Fa.wav")):
        download_corpus("emodb", root, url=url, force=True, progress=False)
    assert (target / "marker.txt").read_text() == "the old copy"
    assert_installed(target)
    assert leftovers(root) == []
    # an interrupted new download: the old one stays too
    server.serve("/download.zip", ("cut", make_zip()))
    with pytest.raises((OSError, http.client.HTTPException)):
        download_corpus("emodb", root, url=url, force=True, progress=False)
    assert (target / "marker.txt").exists()
    assert leftovers(root) == []
    # a good new copy replaces it
    server.serve("/download.zip", make_zip())
    assert download_corpus("emodb", root, url=url, force=True, progress=False) == target
    assert not (target / "marker.txt").exists()
    assert_installed(target)
    assert sorted(p.name for p in root.iterdir()) == [".downloads", "emodb"]
    assert leftovers(root) == []


def test_force_keeps_old_copy_if_install_rename_fails(server, root, checksums, monkeypatch):
    """The old copy is moved aside, not deleted, until the new one is in place."""
    url = server.serve("/download.zip", make_zip())
    target = download_corpus("emodb", root, url=url, progress=False)
    (target / "marker.txt").write_text("the old copy")
    real_replace = os.replace
    failed = []

    def failing_replace(src, dst):  # fails once: the first move of a new copy onto the target
        if not failed and Path(dst) == target and ".tmp-emodb-" in str(src):
            failed.append(src)
            raise OSError("simulated failure while moving the new copy into place")
        return real_replace(src, dst)

    monkeypatch.setattr(dl.os, "replace", failing_replace)
    with pytest.raises(OSError, match="simulated"):
        download_corpus("emodb", root, url=url, force=True, progress=False)
    monkeypatch.undo()
    assert (target / "marker.txt").read_text() == "the old copy"
    assert_installed(target)
    assert leftovers(root) == []


def test_download_rejects_other_corpora(root):
    with pytest.raises(ValueError, match="synthetic"):
        download_corpus("synthetic", root)
    with pytest.raises(ValueError, match="corpus"):
        download_corpus("iemocap", root)
    assert not root.exists()


# --------------------------------------------------------------------------- fetch

def test_fetch_streams_to_dest(server, tmp_path):
    payload = os.urandom(200_000)
    dest = fetch(server.serve("/blob.bin", payload), tmp_path / "dl" / "blob.bin", progress=False)
    assert dest == tmp_path / "dl" / "blob.bin"
    assert dest.read_bytes() == payload
    assert list((tmp_path / "dl").iterdir()) == [dest]


def test_fetch_interrupted_leaves_no_part(server, tmp_path):
    url = server.serve("/cut.bin", ("cut", os.urandom(100_000)))
    with pytest.raises((OSError, http.client.HTTPException)) as err:
        fetch(url, tmp_path / "dl" / "blob.bin", progress=False)
    if isinstance(err.value, OSError):
        assert "stopped after" in str(err.value)
    assert list((tmp_path / "dl").iterdir()) == []


# --------------------------------------------------------------------------- verify_corpus / verify_files

def test_verify_files_reports_each_problem(tmp_path):
    for rel, data in FILES.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(data)
    assert verify_files(tmp_path, CHECKSUMS, progress=False) == []
    (tmp_path / "wav/03a01Fa.wav").unlink()
    (tmp_path / "wav/08a01Na.wav").write_bytes(b"x")
    assert verify_files(tmp_path, CHECKSUMS, progress=False) == [
        "wav/03a01Fa.wav: missing", "wav/08a01Na.wav: sha256 mismatch"]


def test_verify_corpus_errors(tmp_path, checksums):
    with pytest.raises(CorpusError, match="sier download emodb"):
        verify_corpus("emodb", tmp_path, progress=False)
    with pytest.raises(ValueError):
        verify_corpus("synthetic", tmp_path, progress=False)
    with pytest.raises(ValueError, match="corpus"):
        verify_corpus("iemocap", tmp_path, progress=False)
    folder = tmp_path / "emodb"
    for rel, data in FILES.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_bytes(data)
    verify_corpus("emodb", tmp_path, progress=False)
    (folder / "wav/03a01Wa.wav").unlink()
    with pytest.raises(CorpusError, match=re.escape("wav/03a01Wa.wav: missing")):
        verify_corpus("emodb", tmp_path, progress=False)


def test_verify_reports_files_not_in_the_list(tmp_path, checksums, capsys):
    folder = tmp_path / "emodb"
    for rel, data in FILES.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_bytes(data)
    (folder / "wav" / "03a01Xa.wav").write_bytes(FILES["wav/03a01Fa.wav"])  # unknown emotion code
    (folder / "notes").mkdir()
    (folder / "notes" / "todo.txt").write_text("mine")
    with pytest.raises(CorpusError) as err:
        verify_corpus("emodb", tmp_path, progress=False)
    msg = str(err.value)
    assert "wav/03a01Xa.wav: not in the checksum list" in msg
    assert "notes/todo.txt: not in the checksum list" in msg
    assert "03a01Fa" not in msg  # the listed files are all fine
    assert "--force" in msg and "out of" in msg
    assert sierlib.cli.main(["verify", "emodb", "--data-root", str(tmp_path)]) == 2
    assert "wav/03a01Xa.wav" in capsys.readouterr().err
    (folder / "wav" / "03a01Xa.wav").unlink()
    (folder / "notes" / "todo.txt").unlink()
    assert sierlib.cli.main(["verify", "emodb", "--data-root", str(tmp_path)]) == 0


@pytest.mark.real
def test_verify_real_emodb_with_an_extra_file(real_data, tmp_path):
    """A complete, byte-identical Emo-DB plus one stray recording fails verification."""
    src = real_data / "emodb"
    for f in src.rglob("*"):
        if f.is_file():
            (tmp_path / "emodb" / f.relative_to(src)).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / "emodb" / f.relative_to(src)).symlink_to(f)
    verify_corpus("emodb", tmp_path, progress=False)
    (tmp_path / "emodb" / "wav" / "03a01Xa.wav").symlink_to(src / "wav" / "03a01Fa.wav")
    with pytest.raises(CorpusError, match=re.escape("wav/03a01Xa.wav: not in the checksum list")):
        verify_corpus("emodb", tmp_path, progress=False)


@pytest.mark.real
def test_verify_real_emodb(real_data):
    # every file of the shipped list was hashed and matched: 535 recordings plus the label files
    assert verify_corpus("emodb", real_data, progress=False) == len(read_checksums("emodb"))
    assert sum(rel.startswith("wav/") for rel in read_checksums("emodb")) == 535


@pytest.mark.real
def test_verify_real_ravdess_flac(real_data, monkeypatch):
    used = []
    real = dl.read_checksums

    def spy(name):
        used.append(name)
        return real(name)

    monkeypatch.setattr(dl, "read_checksums", spy)
    assert not any((real_data / "ravdess").glob("Actor_*/*.wav"))
    assert verify_corpus("ravdess", real_data, progress=False) == 1440
    assert sorted(used) == ["ravdess", "ravdess-flac"]
    assert all(rel.endswith(".flac") for rel in dl.ravdess_checksums_for(real_data / "ravdess"))


def test_verify_ravdess_mixing_wav_and_flac(tmp_path, monkeypatch):
    """A copy with some actors as original .wav and others as .flac verifies file by file."""
    files = {"Actor_01/03-01-01-01-01-01-01": (b"wav one", b"flac one"),
             "Actor_02/03-01-01-01-01-01-02": (b"wav two", b"flac two")}
    lists = {"ravdess": {f"{k}.wav": hashlib.sha256(w).hexdigest() for k, (w, _) in files.items()},
             "ravdess-flac": {f"{k}.flac": hashlib.sha256(f).hexdigest() for k, (_, f) in files.items()}}
    monkeypatch.setattr(dl, "read_checksums", lambda name: lists[name])
    folder = tmp_path / "ravdess"
    (folder / "Actor_01").mkdir(parents=True)
    (folder / "Actor_02").mkdir()
    (folder / "Actor_01/03-01-01-01-01-01-01.wav").write_bytes(b"wav one")
    (folder / "Actor_02/03-01-01-01-01-01-02.flac").write_bytes(b"flac two")
    verify_corpus("ravdess", tmp_path, progress=False)
    (folder / "Actor_02/03-01-01-01-01-01-02.flac").write_bytes(b"damaged")
    with pytest.raises(CorpusError, match=re.escape("Actor_02/03-01-01-01-01-01-02.flac: sha256 mismatch")):
        verify_corpus("ravdess", tmp_path, progress=False)
    (folder / "Actor_02/03-01-01-01-01-01-02.flac").unlink()
    with pytest.raises(CorpusError, match=re.escape("Actor_02/03-01-01-01-01-01-02.wav: missing")):
        verify_corpus("ravdess", tmp_path, progress=False)
    # both forms of one recording: each is checked against its own list, neither is "extra"
    (folder / "Actor_02/03-01-01-01-01-01-02.wav").write_bytes(b"wav two")
    (folder / "Actor_02/03-01-01-01-01-01-02.flac").write_bytes(b"flac two")
    verify_corpus("ravdess", tmp_path, progress=False)
    (folder / "Actor_02/03-01-01-01-01-01-02.flac").write_bytes(b"damaged")
    with pytest.raises(CorpusError, match=re.escape("Actor_02/03-01-01-01-01-01-02.flac: sha256 mismatch")):
        verify_corpus("ravdess", tmp_path, progress=False)
    (folder / "Actor_02/03-01-01-01-01-01-02.flac").unlink()
    (folder / "Actor_02/03-01-01-01-01-01-02.mp3").write_bytes(b"lossy")
    stray = "Actor_02/03-01-01-01-01-01-02.mp3: not in the checksum list"
    with pytest.raises(CorpusError, match=re.escape(stray)):
        verify_corpus("ravdess", tmp_path, progress=False)


# --------------------------------------------------------------------------- the shipped lists

def test_shipped_lists():
    emodb = read_checksums("emodb")
    assert sum(rel.startswith("wav/") for rel in emodb) == 535
    assert all(re.fullmatch(r"wav/\d\d[ab]\d\d[WLEAFTN][a-z]\.wav", r) for r in emodb if r.startswith("wav/"))
    ravdess = read_checksums("ravdess")
    assert len(ravdess) == 1440
    pattern = re.compile(r"Actor_(\d\d)/03-01-0[1-8]-0[12]-0[12]-0[12]-(\d\d)\.wav")
    for rel in ravdess:
        m = pattern.fullmatch(rel)
        assert m and m[1] == m[2], rel
    assert {rel.split("/")[0] for rel in ravdess} == {f"Actor_{i:02d}" for i in range(1, 25)}
    flac = read_checksums("ravdess-flac")
    assert len(flac) == 1440
    assert {r[:-5] for r in flac} == {r[:-4] for r in ravdess}
    for lst in (emodb, ravdess, flac):
        assert all(re.fullmatch(r"[0-9a-f]{64}", d) for d in lst.values())
    with pytest.raises(ValueError, match="ravdess-flac"):
        read_checksums("iemocap")


@pytest.mark.real
def test_shipped_lists_match_shared_data(real_data):
    """The shipped lists are the ones published beside the shared corpora (no hashing needed)."""
    def parse(path):
        out = {}
        for line in path.read_text().splitlines():
            if line.strip():
                digest, rel = line.split(maxsplit=1)
                out[rel.strip().removeprefix("./")] = digest
        return out

    assert read_checksums("emodb") == parse(real_data / "emodb.sha256")
    assert read_checksums("ravdess-flac") == parse(real_data / "ravdess.sha256")
    assert read_checksums("ravdess") == parse(real_data / "ravdess-original-wav.sha256")


# --------------------------------------------------------------------------- the CLI

def test_cli_download(server, root, checksums, capsys):
    url = server.serve("/x.zip", make_zip())
    assert sierlib.cli.main(["--data-root", str(root), "download", "emodb", "--url", url]) == 0
    out = capsys.readouterr().out
    assert "verified:" in out and "Burkhardt" in out
    assert_installed(root / "emodb")
    assert leftovers(root) == []


def test_cli_download_error_exits_2(server, root, checksums, capsys):
    url = server.serve("/x.zip", b"not a zip")
    assert sierlib.cli.main(["--data-root", str(root), "download", "emodb", "--url", url]) == 2
    assert "error:" in capsys.readouterr().err
    assert_nothing_installed(root)


def test_cli_download_data_root_after_subcommand(server, root, checksums):
    url = server.serve("/x.zip", make_zip())
    assert sierlib.cli.main(["download", "emodb", "--url", url, "--data-root", str(root)]) == 0
    assert_installed(root / "emodb")
