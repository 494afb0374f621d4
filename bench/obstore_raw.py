"""Raw obstore at its measured best, for the benchmark: the engine alone, nothing of this project.

obstore reads each file itself; 64 blocking puts in flight on threads (cheaper per file than its
asyncio API at any width we tried); its own multipart defaults for a big file. No checksum header,
no MD5, no change detection, no results. ``bench/upload.py`` calls it in its own process ("raw
obstore") and runs this file as a command ("raw obstore, as a command"), which pays what any
command built on obstore pays to start: the interpreter and the import of obstore.

    AWS_ACCESS_KEY_ID=... AWS_SECRET_ACCESS_KEY=... python bench/obstore_raw.py ENDPOINT BUCKET PREFIX PATH
"""

import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path


def obstore_put_all(endpoint: str, access_key: str, secret_key: str, bucket: str, prefix: str, path: Path) -> None:
    import obstore as obs
    from obstore.store import S3Store

    store = S3Store(bucket, endpoint=endpoint, access_key_id=access_key, secret_access_key=secret_key,
                    region="us-east-1", client_options={"allow_http": True})
    files = sorted(path.iterdir()) if path.is_dir() else [path]
    with ThreadPoolExecutor(64) as pool:
        list(pool.map(lambda f: obs.put(store, f"{prefix}/{f.name}", f), files))


if __name__ == "__main__":
    endpoint, bucket, prefix, path = sys.argv[1:5]
    obstore_put_all(endpoint, os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"], bucket, prefix,
                    Path(path))
