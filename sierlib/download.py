"""Download the corpora from their official sources and verify every file against sha256 lists.

The lists in ``sierlib/checksums/`` were built from the verified copies in the project's shared
data: ``emodb.sha256`` (every file of Emo-DB's ``download.zip``), ``ravdess.sha256`` (the original
RAVDESS ``.wav`` files) and ``ravdess-flac.sha256`` (the lossless FLAC copies some labs keep).

A download goes to ``<data_root>/.downloads/<archive>.part`` and is renamed only when complete;
the files of the archive that the checksum list names (and nothing else) are unpacked into a
temporary folder beside the target, verified there, and moved into place in one rename. An
interrupted download, a damaged archive or a bad checksum therefore leaves no half-unpacked
corpus behind.
"""
from __future__ import annotations

import functools
import os
import shutil
import tempfile
import urllib.request
import zipfile
from importlib import resources
from pathlib import Path

from tqdm.auto import tqdm

from .audio import CorpusError, listed
from .paths import data_root as _data_root  # the functions below take a data_root argument
from .paths import sha256_file
from .registry import PRETTY, check_corpus_name

SOURCES = {
    "emodb": {"url": "http://emodb.bilderbar.info/download/download.zip", "archive": "emodb-download.zip",
              "licence": "free for research; cite Burkhardt et al., Interspeech 2005"},
    "ravdess": {"url": "https://zenodo.org/records/1188976/files/Audio_Speech_Actors_01-24.zip?download=1",
                "archive": "Audio_Speech_Actors_01-24.zip",
                "licence": "CC BY-NC-SA 4.0; cite Livingstone & Russo, PLOS ONE 13(5), 2018"},
}
CHECKSUM_LISTS = {"emodb": "emodb.sha256", "ravdess": "ravdess.sha256", "ravdess-flac": "ravdess-flac.sha256"}


def read_checksums(name: str) -> dict[str, str]:
    """Map relative path -> sha256 for a shipped list ("emodb", "ravdess" or "ravdess-flac")."""
    if name not in CHECKSUM_LISTS:
        raise ValueError(f"no checksum list named {name!r}; choose from {', '.join(CHECKSUM_LISTS)}")
    return dict(_parsed_list(name))  # a copy: callers may change theirs


@functools.lru_cache(maxsize=None)
def _parsed_list(name: str) -> dict[str, str]:
    """Each shipped list is parsed once per process (every extraction checks against it)."""
    text = resources.files("sierlib").joinpath("checksums", CHECKSUM_LISTS[name]).read_text()
    out = {}
    for line in text.splitlines():
        if line.strip():
            digest, rel = line.split(maxsplit=1)
            out[rel.strip().removeprefix("./")] = digest
    return out


def verify_files(folder: str | os.PathLike, checksums: dict[str, str], progress: bool = True,
                 desc: str = "verify") -> list[str]:
    """Check each listed file under ``folder``; return a list of problems (empty when all good)."""
    folder = Path(folder)
    problems = []
    for rel, digest in tqdm(sorted(checksums.items()), desc=desc, unit="file", disable=not progress):
        p = folder / rel
        if not p.is_file():
            problems.append(f"{rel}: missing")
        elif sha256_file(p) != digest:
            problems.append(f"{rel}: sha256 mismatch")
    return problems


def unlisted_files(folder: str | os.PathLike, checksums: dict[str, str]) -> list[str]:
    """Files under ``folder`` (relative paths, sorted) that ``checksums`` does not name.

    An extra recording in a corpus folder (a stray copy, an unknown emotion code) would pass a
    check of the listed files alone, and then enter, or break, what ``load_metadata`` reads.
    """
    folder = Path(folder)
    present = (p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    return sorted(rel for rel in present if rel not in checksums)


def ravdess_checksums_for(folder: str | os.PathLike) -> dict[str, str]:
    """The RAVDESS checksums to check ``folder`` against, file by file: a recording present as
    ``.flac`` is checked against the FLAC list, as ``.wav`` against the original ``.wav`` list
    (both when both are present), so a copy that mixes both formats (one actor re-encoded, say)
    verifies too. A recording present in neither form is expected under its original name."""
    folder = Path(folder)
    flac = read_checksums("ravdess-flac")
    out = {}
    for rel, digest in read_checksums("ravdess").items():
        as_flac = rel[:-len(".wav")] + ".flac"
        has_flac = as_flac in flac and (folder / as_flac).is_file()
        if has_flac:
            out[as_flac] = flac[as_flac]
        if (folder / rel).is_file() or not has_flac:
            out[rel] = digest  # reported as missing under its original name if neither exists
    return out


def verify_corpus(corpus: str, data_root=None, progress: bool = True) -> int:
    """Verify an unpacked corpus file by file; raises CorpusError naming the bad files, else
    returns the number of files verified.

    Every listed file must be present and match its sha256, and no other file may lie in the
    corpus folder. RAVDESS is accepted as the original ``.wav`` files or as lossless ``.flac`` copies.
    """
    check_corpus_name(corpus)
    if corpus not in SOURCES:
        raise ValueError("only emodb and ravdess have checksum lists")
    folder = _data_root(data_root) / corpus
    if not folder.is_dir():
        raise CorpusError(f"{PRETTY[corpus]} was not found at {folder}; run `sier download {corpus}`.")
    checksums = read_checksums("emodb") if corpus == "emodb" else ravdess_checksums_for(folder)
    problems = verify_files(folder, checksums, progress, desc=f"verify {corpus}")
    problems += [f"{rel}: not in the checksum list" for rel in unlisted_files(folder, checksums)]
    if problems:
        shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
        raise CorpusError(f"{PRETTY[corpus]} at {folder} failed verification: {shown}. Move files "
                          f"that are not part of the corpus out of {folder}, or re-download it "
                          f"with `sier download {corpus} --force`.")
    return len(checksums)


def fetch(url: str, dest: str | os.PathLike, progress: bool = True, timeout: float = 60) -> Path:
    """Stream ``url`` to ``dest`` through ``dest.part``, with a progress bar; atomic on success."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp, open(part, "wb") as out:
            total = int(resp.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=dest.name, disable=not progress) as bar:
                while block := resp.read(1 << 16):
                    out.write(block)
                    bar.update(len(block))
        if total is not None and part.stat().st_size != total:
            raise OSError(f"download of {url} stopped after {part.stat().st_size} of {total} bytes")
        os.replace(part, dest)
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    return dest


def _drop_archive(archive: Path) -> None:
    """Remove a downloaded archive and the note of its URL."""
    archive.unlink(missing_ok=True)
    archive.with_name(archive.name + ".url").unlink(missing_ok=True)


def _listed_members(zf: zipfile.ZipFile, checksums: dict[str, str]) -> dict[str, zipfile.ZipInfo]:
    """The archive's members that the checksum list names, keyed by their path in the corpus.

    Archives may wrap the corpus in one top-level folder. Only paths from the shipped list are
    returned, so nothing else in an archive (``../x``, an absolute path, a file the list does not
    name) is ever unpacked, and every path written lies inside the corpus folder.
    """
    files = {m.filename: m for m in zf.infolist() if not m.is_dir()}
    first = next(iter(sorted(checksums)))
    for prefix in ["", *sorted({name.split("/", 1)[0] + "/" for name in files if "/" in name})]:
        if prefix + first in files:
            return {rel: files[prefix + rel] for rel in sorted(checksums) if prefix + rel in files}
    raise CorpusError(f"the archive does not contain {first}; is it the right file? It was "
                      f"removed; check the URL and try again.")


def download_corpus(corpus: str, data_root=None, url: str | None = None, force: bool = False,
                    keep_archive: bool = False, progress: bool = True) -> Path:
    """Download, unpack and verify one corpus into ``<data_root>/<corpus>``.

    Parameters
    ----------
    corpus : {"emodb", "ravdess"}
    data_root : path, optional
        Where corpora live (default ``SIER_DATA`` or ``data/`` in the repository).
    url : str, optional
        Override the official source (a mirror, or a local server in tests).
    force : bool
        Replace an existing copy (only after the new one has been verified).
    keep_archive : bool
        Keep the downloaded zip in ``<data_root>/.downloads`` (with ``<archive>.url`` noting its
        source). A kept archive is reused by the next download from the same URL only.

    Returns
    -------
    Path of the verified corpus folder.
    """
    check_corpus_name(corpus)
    if corpus not in SOURCES:
        raise ValueError(f"corpus must be 'emodb' or 'ravdess' to download; got {corpus!r} "
                         f"(the synthetic corpus is generated: `sier synthetic`)")
    root = _data_root(data_root)
    target = root / corpus
    if target.exists() and not force:
        verify_corpus(corpus, root, progress)
        return target
    archive = root / ".downloads" / SOURCES[corpus]["archive"]
    source = archive.with_name(archive.name + ".url")  # where a kept archive came from
    url = url or SOURCES[corpus]["url"]
    if archive.is_file() and (not source.is_file() or source.read_text().strip() != url):
        _drop_archive(archive)  # kept from another source: fetch the one asked for
    if not archive.is_file():
        fetch(url, archive, progress)
        source.write_text(url + "\n")
    checksums = read_checksums(corpus)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{corpus}-", dir=root))
    # Unpack into a folder made with mkdir, not into mkdtemp's own (mode 0700), which would
    # install a corpus folder only its owner can read.
    unpacked = tmp / "unpacked"
    try:
        unpacked.mkdir()
        try:
            with zipfile.ZipFile(archive) as zf:
                members = _listed_members(zf, checksums)
                for rel, member in tqdm(members.items(), desc=f"unpack {archive.name}", unit="file",
                                        disable=not progress):
                    (unpacked / rel).parent.mkdir(parents=True, exist_ok=True)
                    with zf.open(member) as src, open(unpacked / rel, "wb") as out:
                        shutil.copyfileobj(src, out)
        except (zipfile.BadZipFile, EOFError, OSError) as exc:
            _drop_archive(archive)  # a damaged archive must be fetched again
            raise CorpusError(f"{archive} is not a complete zip archive ({exc}); it was removed, "
                              f"run `sier download {corpus}` again.") from None
        except CorpusError:
            _drop_archive(archive)  # the wrong file: kept, it would be reused next time
            raise
        problems = verify_files(unpacked, checksums, progress, desc=f"verify {corpus}")
        if problems:
            _drop_archive(archive)
            shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
            raise CorpusError(f"the downloaded {PRETTY[corpus]} failed verification ({shown}); "
                              f"nothing was installed and the archive was removed. Try again, or "
                              f"check the source.")
        if target.exists():
            # Move the old copy aside (one rename) rather than deleting it first: the corpus is
            # never half-deleted, and the finally clause removes the old copy with tmp.
            old = tmp / "old"
            os.replace(target, old)
            try:
                os.replace(unpacked, target)
            except BaseException:
                os.replace(old, target)
                raise
        else:
            os.replace(unpacked, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if not keep_archive:
        _drop_archive(archive)
    return target


@functools.lru_cache(maxsize=None)
def published_checksums(corpus: str) -> dict[str, str]:
    """Relative path -> sha256 of every audio file of a published corpus, in both forms a copy may
    hold (RAVDESS as the original .wav or the lossless .flac); empty for any other corpus. Built
    once per process; read it, do not change it."""
    if corpus == "emodb":
        return {rel: d for rel, d in read_checksums("emodb").items() if rel.startswith("wav/")}
    if corpus == "ravdess":
        return {**read_checksums("ravdess"), **read_checksums("ravdess-flac")}
    return {}


def check_published(meta, digests: dict[str, str] | None = None) -> None:
    """Refuse a copy of Emo-DB or RAVDESS that is not the published corpus: every recording of
    ``meta`` of a known corpus must be listed in the shipped checksums with the same sha256
    (``digests``: path -> sha256, computed here when not given). Raises CorpusError naming the
    changed and unknown files (a few, then how many more) and the fix. Other corpora (synthetic,
    manifests) pass."""
    changed, unknown = [], []
    for corpus, rows in meta.groupby("corpus", sort=False):
        published = published_checksums(str(corpus))
        if not published:
            continue
        for path in rows["path"]:
            rel = "/".join(Path(path).as_posix().rsplit("/", 2)[-2:])  # wav/03a01Fa.wav, Actor_01/03-....wav
            digest = digests[path] if digests is not None and path in digests else sha256_file(path)
            if rel not in published:
                unknown.append(rel)
            elif published[rel] != digest:
                changed.append(rel)
    if changed or unknown:
        corpus = str(meta["corpus"].iloc[0])
        parts = []
        if changed:
            parts.append(f"{len(changed)} file{'s' * (len(changed) > 1)} differ from the published corpus "
                         f"({listed(changed)})")
        if unknown:
            parts.append(f"{len(unknown)} file{'s' * (len(unknown) > 1)} are not part of it ({listed(unknown)})")
        raise CorpusError(f"{PRETTY.get(corpus, corpus)} at {Path(meta['path'].iloc[0]).parents[1]}: "
                          f"{'; '.join(parts)}. Re-download it with `sier download {corpus} --force` (checksums "
                          f"verified), or, for a deliberately modified copy, describe it in a manifest CSV and train "
                          f"on that (see the README, 'Your own corpus'): its runs are then named as your own.")
