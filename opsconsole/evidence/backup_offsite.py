"""The backup drill's off-host copy (docs/runbooks/backup-restore-drill.md): the dump goes to an
S3-compatible bucket (BACKUP_S3_BUCKET, via boto3; BACKUP_S3_ENDPOINT_URL for MinIO, Ceph, R2
and the like) or, failing a bucket, to a directory on other storage (BACKUP_COPY_DIR, e.g. an
NFS mount); settings.BACKUP_DRILL holds them. The copy is then fetched back and its SHA-256
compared, and the drill restores from the fetched copy, so a passing drill proves the off-host
copy restores, not only the local file. With neither set the drill fails: a backup that never
leaves the host is no backup."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

from django.conf import settings


def _setting(name: str) -> str:
    return str(settings.BACKUP_DRILL.get(name) or "")


class OffsiteCopyFailed(Exception):
    pass


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1024 * 1024), b""):
            digest.update(chunk)
    return digest.hexdigest()


def offsite_copy(dump: Path, *, name: str, fetched: Path) -> str:
    """Copy `dump` off the host as `name`, fetch it back into `fetched`, check it is the
    same bytes; returns the copy's URI."""
    expected = sha256_of(dump)
    if _setting("s3_bucket"):
        uri = _s3_copy(dump, name=name, fetched=fetched, sha256=expected)
    elif _setting("copy_dir"):
        target = Path(_setting("copy_dir")) / name
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(dump, target)
            shutil.copyfile(target, fetched)
        except OSError as exc:
            raise OffsiteCopyFailed(f"copy to {target} failed: {exc}") from exc
        uri = f"file://{target}"
    else:
        raise OffsiteCopyFailed(
            "no off-host destination: set BACKUP_S3_BUCKET (or BACKUP_COPY_DIR)"
        )
    if sha256_of(fetched) != expected:
        raise OffsiteCopyFailed(f"the copy fetched back from {uri} differs from the dump")
    return uri


def _s3_copy(dump: Path, *, name: str, fetched: Path, sha256: str) -> str:
    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError

    client = boto3.client(
        "s3",
        endpoint_url=_setting("s3_endpoint_url") or None,
        region_name=_setting("s3_region") or None,
        config=Config(
            connect_timeout=10, read_timeout=120, retries={"max_attempts": 5, "mode": "standard"}
        ),
    )
    bucket = _setting("s3_bucket")
    key = _setting("s3_prefix") + name
    uri = f"s3://{bucket}/{key}"
    try:
        client.upload_file(str(dump), bucket, key, ExtraArgs={"Metadata": {"sha256": sha256}})
        client.download_file(bucket, key, str(fetched))
    except (BotoCoreError, ClientError) as exc:
        raise OffsiteCopyFailed(f"copy to {uri} failed: {exc}") from exc
    return uri
