"""Fill in the SHA-256 of every jar in jars.toml (maintainers only, after changing a version).

Each file is downloaded from Maven Central and checked against Maven's own published .sha1 before its
SHA-256 is written into the manifest, so a pin never records a corrupted download.
"""

from __future__ import annotations

import hashlib
import re
import sys
import tempfile
import urllib.request
from pathlib import Path

from hybrid_platform.jars import DEFAULT_REPOSITORY, MANIFEST, load_manifest


def main() -> int:
    _, jars = load_manifest()
    text = MANIFEST.read_text()
    with tempfile.TemporaryDirectory() as tmp:
        for jar in jars:
            url = jar.url(DEFAULT_REPOSITORY)
            target = Path(tmp) / jar.filename
            urllib.request.urlretrieve(url, target)
            data = target.read_bytes()
            published_sha1 = urllib.request.urlopen(url + ".sha1").read().decode().split()[0].strip()
            if hashlib.sha1(data).hexdigest() != published_sha1:
                print(f"{jar.coordinates}: download does not match Maven's .sha1", file=sys.stderr)
                return 1
            digest = hashlib.sha256(data).hexdigest()
            pattern = re.compile(rf'(coordinates = "{re.escape(jar.coordinates)}"\nsets = [^\n]*\nsha256 = )"[^"]*"')
            text, count = pattern.subn(rf'\1"{digest}"', text)
            if count != 1:
                print(f"{jar.coordinates}: entry not found in {MANIFEST}", file=sys.stderr)
                return 1
            print(f"{digest}  {jar.coordinates}")
    MANIFEST.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
