"""The raw Azure SDK at its measured best, for the benchmark: azure-storage-blob alone, nothing of this project.

One client; 16 uploads in flight for many files; a big file in 8 MiB blocks, 8 in flight, 32 MiB
single-put limit; no checksum unless ``validate`` (the SDK's per-request Content-MD5). ``bench/clouds.py``
calls it in its own process ("raw SDK") and runs this file as a command ("raw SDK, as a command"),
which pays what any command built on the SDK pays to start: the interpreter and the SDK's import.

    python bench/azure_sdk_raw.py ENDPOINT ACCOUNT KEY CONTAINER PREFIX PATH
"""

import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

MiB = 1024 * 1024


def sdk_put_all(endpoint: str, account: str, key: str, container: str, prefix: str, path: Path,
                validate: bool = False) -> None:
    from azure.storage.blob import BlobServiceClient

    client = BlobServiceClient(endpoint, credential={"account_name": account, "account_key": key},
                               max_single_put_size=32 * MiB, max_block_size=8 * MiB).get_container_client(container)

    def put(f: Path, concurrency: int = 1):
        with open(f, "rb") as fh:
            client.get_blob_client(f"{prefix}/{f.name}").upload_blob(fh, overwrite=True, max_concurrency=concurrency,
                                                                     validate_content=validate)

    if path.is_dir():
        with ThreadPoolExecutor(16) as pool:
            list(pool.map(put, sorted(path.iterdir())))
    else:
        put(path, 8)


if __name__ == "__main__":
    endpoint, account, key, container, prefix, path = sys.argv[1:7]
    sdk_put_all(endpoint, account, key, container, prefix, Path(path))
