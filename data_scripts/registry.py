"""The one registry of real datasets, and the one way to download them (``pooch``).

Taught in chapter 1 ("Multimodal oncology data"); the converters are used in chapters 2-8 and
on the book's page "Your own cohort".

Each :class:`DatasetEntry` records where a file lives, its checksum, its approximate size,
its licence and how to cite it. :func:`fetch` downloads it with ``pooch`` and verifies the
checksum; it never leaves a half-written file behind (``pooch`` downloads to a temporary
name and renames only after the checksum matches). Offline, :func:`fetch` stops at once with
a message that says what to do; it does not wait for a connection to time out. A file copied
into place by hand is used offline when its checksum matches.

Checksums are written as ``pooch`` writes them: ``"sha256:<hex>"`` or ``"md5:<hex>"``. Where
the publisher gives an MD5 only (MedMNIST), the registry uses it. Entries whose publisher
gives no checksum at all (cBioPortal's METABRIC archive; GDC query results) say so in
``checksum_note``: for them :func:`fetch` refuses to download unless asked for
``trust_on_first_use=True``, and then prints the SHA-256 to pin in this file.

Command line::

    python -m data_scripts.registry list
    python -m data_scripts.registry fetch NAME [--dest DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

__all__ = ["REGISTRY", "DataFetchError", "DatasetEntry", "entry", "fetch", "fetch_url"]

CONNECT_TIMEOUT_S = 1.5
READ_TIMEOUT_S = 60.0


class DataFetchError(RuntimeError):
    """A dataset could not be downloaded or did not match its checksum."""


@dataclass(frozen=True)
class DatasetEntry:
    name: str
    url: str
    known_hash: str | None
    size: str
    licence: str
    citation: str
    filename: str
    description: str = ""
    checksum_note: str = ""

    @property
    def sha256(self) -> str | None:
        """The SHA-256 hex digest when the registry has one (else None)."""
        if self.known_hash and self.known_hash.startswith("sha256:"):
            return self.known_hash.split(":", 1)[1]
        return None


REGISTRY: dict[str, DatasetEntry] = {e.name: e for e in [
    DatasetEntry(
        name="pathmnist",
        url="https://zenodo.org/records/10519652/files/pathmnist.npz?download=1",
        known_hash="md5:a8b06965200029087d5bd730944a56c1",
        size="about 200 MB",
        licence="CC BY 4.0",
        citation="Yang et al., MedMNIST v2, Scientific Data 10:41 (2023), doi:10.1038/s41597-022-01721-8; "
                 "source images: Kather et al., NCT-CRC-HE-100K and CRC-VAL-HE-7K",
        filename="pathmnist.npz",
        description="Colorectal cancer histology patches, 28x28 RGB, 9 tissue classes; "
                    "89,996 train / 10,004 val / 7,180 test.",
        checksum_note="MD5 published by the MedMNIST authors (medmnist.INFO).",
    ),
    DatasetEntry(
        name="breastmnist",
        url="https://zenodo.org/records/10519652/files/breastmnist.npz?download=1",
        known_hash="md5:750601b1f35ba3300ea97c75c52ff8f6",
        size="under 1 MB",
        licence="CC BY 4.0",
        citation="Yang et al., MedMNIST v2, Scientific Data 10:41 (2023), doi:10.1038/s41597-022-01721-8; "
                 "source images: Al-Dhabyani et al., Breast Ultrasound Images dataset",
        filename="breastmnist.npz",
        description="Breast ultrasound, 28x28 grayscale, 0 = malignant, 1 = normal or benign; "
                    "546 train / 78 val / 156 test.",
        checksum_note="MD5 published by the MedMNIST authors (medmnist.INFO).",
    ),
    DatasetEntry(
        name="btxrd",
        url="https://ndownloader.figshare.com/files/50653575",
        known_hash="sha256:e7c800c3b4e090262b160525a0765f9d93bcc53d639c03806a3ac47b0ded3373",
        size="about 800 MB",
        licence="CC BY-NC-ND 4.0 (non-commercial; do not redistribute derived data)",
        citation="Yao et al., A Radiograph Dataset for the Classification, Localization, and "
                 "Segmentation of Primary Bone Tumors, Scientific Data 12 (2025), "
                 "doi:10.1038/s41597-024-04311-y; data doi:10.6084/m9.figshare.27865398",
        filename="BTXRD.zip",
        description="3,746 bone radiographs (1,879 normal, 1,525 benign, 342 malignant) with "
                    "LabelMe tumour annotations and a clinical table (dataset.xlsx).",
        checksum_note="figshare also lists MD5 59132a5036d030580ccade8add8f13df for this file.",
    ),
    DatasetEntry(
        name="tcga",
        url="https://api.gdc.cancer.gov/files",
        known_hash=None,
        size="about 4 MB per patient (one STAR-counts file each) plus a clinical table",
        licence="NIH Genomic Data Commons open-access data (see the GDC data access policies)",
        citation="The Cancer Genome Atlas Research Network, Nature Genetics 45:1113-1120 (2013), "
                 "doi:10.1038/ng.2764; Grossman et al., NEJM 375:1109-1112 (2016)",
        filename="gdc_files.json",
        description="One TCGA project (default TCGA-SARC): clinical table, overall survival and "
                    "gene expression (STAR - Counts, read counts) through the GDC API.",
        checksum_note="The file listing is a live query; every data file is then downloaded "
                      "with the MD5 that the GDC index gives for it (data_scripts.tcga).",
    ),
    DatasetEntry(
        name="metabric",
        url="https://cbioportal-datahub.s3.amazonaws.com/brca_metabric.tar.gz",
        known_hash=None,
        size="about 200 MB",
        licence="cBioPortal DataHub: ODbL 1.0 for the curated study files",
        citation="Curtis et al., Nature 486:346-352 (2012), doi:10.1038/nature10983; Pereira et al., "
                 "Nature Communications 7:11479 (2016); Cerami et al., Cancer Discovery 2:401-404 (2012)",
        filename="brca_metabric.tar.gz",
        description="1,980 breast cancers: clinical table with overall and relapse-free survival, "
                    "Illumina mRNA expression.",
        checksum_note="cBioPortal publishes no checksum for this archive: pin it on first use.",
    ),
]}


def entry(name: str) -> DatasetEntry:
    """The registry entry of one dataset.

    Taught in chapter 1.

    Parameters
    ----------
    name : str
        A key of :data:`REGISTRY`.

    Returns
    -------
    DatasetEntry
        Its address, checksum, size, licence and citation; an unknown name raises, listing
        the known ones.
    """
    try:
        return REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown dataset {name!r}; the registry has {sorted(REGISTRY)}") from None


def _matches(path: Path, known_hash: str) -> bool:
    """Whether the file at ``path`` has the checksum ``"alg:hex"``."""
    alg, expected = known_hash.split(":", 1)
    h = hashlib.new(alg)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest() == expected.lower()


def _is_local(url: str) -> bool:
    return urlparse(url).hostname in {"127.0.0.1", "localhost", "::1"}


def _check_online(name: str, url: str, target: Path) -> None:
    """Raise at once, with advice, when the machine is offline (local URLs always pass)."""
    from oncolab.env import network_available

    if _is_local(url):
        return
    if not network_available():
        raise DataFetchError(
            f"cannot download {name!r} from {url}: this machine is offline. Run the download on a "
            f"machine with internet access (for example Google Colab) and copy the file to {target}, "
            "or set ONCOLAB_OFFLINE=0 if the network is in fact up."
        )


def fetch_url(url: str, known_hash: str | None, fname: str, dest: str | Path, *, name: str = "",
              trust_on_first_use: bool = False, live_query: bool = False) -> Path:
    """Download ``url`` to ``dest/fname`` with ``pooch``, verifying ``known_hash``.

    Taught in chapter 1; every converter's download goes through it.

    Parameters
    ----------
    url : str
        The address.
    known_hash : str or None
        ``"sha256:<hex>"`` or ``"md5:<hex>"``; None only with ``trust_on_first_use`` or
        ``live_query``.
    fname : str
        The file name in ``dest``.
    dest : str or Path
        The folder (created if needed).
    name : str
        The dataset's name, for messages.
    trust_on_first_use : bool
        Download a file that has no registered checksum and print its SHA-256 to pin.
    live_query : bool
        For API answers (a GDC query), which have no fixed checksum: downloaded afresh each
        time and not verified; the data files they list are.

    Returns
    -------
    Path
        The verified file. A file already there with the right checksum is reused, offline
        too. Offline, a failed connection or a checksum mismatch raise
        :class:`DataFetchError` naming the URL; no partial file is left in ``dest``.
    """
    label = name or fname
    if known_hash is None and not (trust_on_first_use or live_query):
        raise DataFetchError(
            f"{label!r} has no checksum in the registry; pass trust_on_first_use=True "
            "(command line: --trust-on-first-use) to download it once and print the SHA-256 to pin")
    if known_hash is not None and not (known_hash.startswith("sha256:") or known_hash.startswith("md5:")):
        raise ValueError(f"known_hash must look like 'sha256:<hex>' or 'md5:<hex>', got {known_hash!r}")
    target = Path(dest) / fname
    if known_hash is not None and target.is_file() and _matches(target, known_hash):
        return target  # already here and verified: no network needed
    _check_online(label, url, target)
    import pooch  # imported here so that the offline failure above stays fast
    import requests

    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    if live_query:
        (dest / fname).unlink(missing_ok=True)
    downloader = pooch.HTTPDownloader(progressbar=False, timeout=(CONNECT_TIMEOUT_S, READ_TIMEOUT_S))
    try:
        path = pooch.retrieve(url, known_hash=known_hash, fname=fname, path=dest, downloader=downloader)
    except ValueError as e:  # pooch raises ValueError on a checksum mismatch
        raise DataFetchError(
            f"checksum mismatch for {label!r} from {url}: expected {known_hash}. The download was "
            f"discarded. The file upstream may have changed; check the source before updating "
            f"the registry. ({e})") from None
    except requests.exceptions.RequestException as e:
        raise DataFetchError(
            f"cannot download {label!r} from {url}: {type(e).__name__}. Check the network (or run "
            "on a machine with internet access) and try again.") from None
    path = Path(path)
    if known_hash is None and not live_query:
        sha = pooch.file_hash(str(path), alg="sha256")
        print(f"{label}: downloaded without a registered checksum; pin it in data_scripts/registry.py "
              f"as known_hash='sha256:{sha}'")
    return path


def fetch(name: str, dest: str | Path | None = None, *, trust_on_first_use: bool = False,
          url: str | None = None) -> Path:
    """Download one registry entry and verify its checksum.

    Taught in chapter 1.

    Parameters
    ----------
    name : str
        A key of :data:`REGISTRY`.
    dest : str or Path, optional
        The folder; default ``$ONCOLAB_DATA/raw/NAME``.
    trust_on_first_use : bool
        Allow the download of an entry without a checksum (it prints the SHA-256 to pin).
    url : str, optional
        A mirror's address; the checksum stays the registry's.

    Returns
    -------
    Path
        The verified file (see :func:`fetch_url`).
    """
    e = entry(name)
    if dest is None:
        from oncolab.env import data_dir

        dest = data_dir("raw", name)
    return fetch_url(url or e.url, e.known_hash, e.filename, dest, name=name,
                     trust_on_first_use=trust_on_first_use)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m data_scripts.registry", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("list", help="show every dataset with its source, size, licence and checksum")
    f = sub.add_parser("fetch", help="download one dataset and verify its checksum")
    f.add_argument("name", choices=sorted(REGISTRY))
    f.add_argument("--dest", default=None)
    f.add_argument("--trust-on-first-use", action="store_true")
    args = p.parse_args(argv)
    if args.cmd == "list":
        for e in REGISTRY.values():
            print(f"{e.name}\n  url: {e.url}\n  checksum: {e.known_hash or 'none (' + e.checksum_note + ')'}"
                  f"\n  size: {e.size}\n  licence: {e.licence}\n  cite: {e.citation}\n")
        return 0
    try:
        path = fetch(args.name, args.dest, trust_on_first_use=args.trust_on_first_use)
    except DataFetchError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
