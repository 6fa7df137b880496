"""The upload's wire format: a gzip-compressed tar of the pushed files.

``model.pt`` alone for a TorchScript push (the server generates the rest), else the Triton
directory's files relative to it. Unpacking trusts nothing: absolute paths, ``..``, links and
devices are refused, and sizes are checked against the headers before any member is read, so a
small archive that would inflate to gigabytes (a "zip bomb") stops at its first large header.
"""

from __future__ import annotations

import gzip
import io
import tarfile

from slidestream_contracts.model_card import ModelCardV1
from slidestream_modelrepo.package import path_problem
from slidestream_modelrepo.problems import FieldProblem, ModelPackageError

ARCHIVE_FIELD = "archive"
MAX_MEMBERS = 10_000
"""More files than any model directory holds; bounds the work an archive of empty files costs."""
_FILE_MODE = 0o644


def pack_upload(card: ModelCardV1, files: dict[str, bytes]) -> bytes:
    """``files`` (paths relative to the pushed model) as a tar.gz, in a stable order and with
    fixed owners and times, so the same push gives the same bytes. ``card`` names the archive
    in its gzip header."""
    problems = [problem for key in files if (problem := path_problem(key)) is not None]
    if not files:
        problems.append(FieldProblem(ARCHIVE_FIELD, "no files to upload"))
    if problems:
        raise ModelPackageError(problems)
    tar_bytes = io.BytesIO()
    with tarfile.open(fileobj=tar_bytes, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for key in sorted(files):
            member = tarfile.TarInfo(key)
            member.size = len(files[key])
            member.mode = _FILE_MODE
            archive.addfile(member, io.BytesIO(files[key]))
    compressed = io.BytesIO()
    with gzip.GzipFile(
        filename=f"{card.name}-{card.version}.tar", mode="wb", fileobj=compressed, mtime=0
    ) as stream:
        stream.write(tar_bytes.getvalue())
    return compressed.getvalue()


def unpack_upload(data: bytes, *, max_bytes: int) -> dict[str, bytes]:
    """The files of an uploaded archive; :class:`ModelPackageError` for an archive that is not
    a tar.gz, holds anything but regular files and directories, names a path outside itself,
    repeats a name, or whose files add up to more than ``max_bytes``."""
    files: dict[str, bytes] = {}
    total_bytes = 0
    try:
        # Stream mode ("r|gz"): members are read in order, nothing is seeked or buffered whole.
        with tarfile.open(fileobj=io.BytesIO(data), mode="r|gz") as archive:
            for count, member in enumerate(archive, start=1):
                if count > MAX_MEMBERS:
                    raise _refused(ARCHIVE_FIELD, f"more than {MAX_MEMBERS} entries")
                if member.isdir():
                    continue
                key = _member_key(member)
                total_bytes += member.size
                if total_bytes > max_bytes:
                    raise _refused(
                        ARCHIVE_FIELD, f"its files add up to more than {max_bytes} bytes"
                    )
                if key in files:
                    raise _refused(key, "appears twice in the archive")
                stream = archive.extractfile(member)
                assert stream is not None  # a regular file (checked by _member_key)
                files[key] = stream.read(member.size)
    except (tarfile.TarError, EOFError, OSError, gzip.BadGzipFile) as error:
        raise _refused(ARCHIVE_FIELD, f"not a readable tar.gz archive: {error}") from error
    if not files:
        raise _refused(ARCHIVE_FIELD, "holds no files")
    return files


def _member_key(member: tarfile.TarInfo) -> str:
    if member.issym() or member.islnk():
        raise _refused(member.name, "a link: only regular files may be uploaded")
    if not member.isfile():
        raise _refused(member.name, "not a regular file (device, fifo...)")
    key = member.name.removeprefix("./")
    problem = path_problem(key)
    if problem is not None:
        raise ModelPackageError([problem])
    return key


def _refused(field: str, message: str) -> ModelPackageError:
    return ModelPackageError([FieldProblem(field, message)])
