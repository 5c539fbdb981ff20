"""The ``tether://`` fsspec file system, with pandas, on the local store and on S3."""

from __future__ import annotations

import fsspec
import pandas as pd
import pytest

from tests.client.conftest import PASSWORD, bucket_name
from tests.client.test_storage import blob, service  # noqa: F401 - the service fixture
from tether.client.fs import TetherFileSystem


@pytest.fixture
def storage_options(url, new_user, service):  # noqa: F811
    new_user("hana")
    fsspec.register_implementation("tether", TetherFileSystem, clobber=True)
    options = {"url": url, "username": "hana", "password": PASSWORD, "skip_instance_cache": True}
    if service:
        options["service"] = service
    return options


def test_list_info_read_write_with_pandas(storage_options, tmp_path):
    fs = fsspec.filesystem("tether", **storage_options)
    name = bucket_name()
    bucket = fs.client.storage.buckets.create(name, fs.service)
    bucket.objects.create("data/a.csv").upload("x,y\n1,2\n3,4\n")
    bucket.objects.create("data/b.csv").upload("x,y\n5,6\n")
    readme = bucket.objects.create("readme.txt")
    readme.upload(blob(200_000, b"readme"))

    assert name in fs.ls("", detail=False)
    top = {e["name"]: e["type"] for e in fs.ls(f"tether://{name}")}
    assert top == {f"{name}/readme.txt": "file", f"{name}/data": "directory"}
    assert fs.ls(f"{name}/data", detail=False) == [f"{name}/data/a.csv", f"{name}/data/b.csv"]
    info = fs.info(f"{name}/readme.txt")
    assert info["size"] == 200_000 and info["type"] == "file" and info["sha256"] == readme.sha256
    assert fs.info(f"{name}/data")["type"] == "directory"
    with pytest.raises(FileNotFoundError):
        fs.info(f"{name}/nothing")
    assert fs.glob(f"tether://{name}/data/*.csv") == [f"{name}/data/a.csv", f"{name}/data/b.csv"]
    assert fs.find(name) == [f"{name}/data/a.csv", f"{name}/data/b.csv", f"{name}/readme.txt"]

    whole = blob(200_000, b"readme")
    assert fs.cat(f"{name}/readme.txt") == whole
    assert fs.cat_file(f"{name}/readme.txt", 1000, 1010) == whole[1000:1010]
    with fs.open(f"tether://{name}/readme.txt", block_size=4096) as f:
        f.seek(150_000)
        assert f.read(100) == whole[150_000:150_100]
    assert fs.cat(f"tether://{readme.id}") == whole

    df = pd.read_csv(f"tether://{name}/data/a.csv", storage_options=storage_options)
    assert df.to_dict("list") == {"x": [1, 3], "y": [2, 4]}
    df["z"] = df["x"] + df["y"]
    df.to_csv(f"tether://{name}/out/sum.csv", index=False, storage_options=storage_options)
    written = fs.info(f"{name}/out/sum.csv")
    assert written["state"] == "READY" and written["sha256"]
    back = pd.read_csv(f"tether://{name}/out/sum.csv", storage_options=storage_options)
    assert back["z"].tolist() == [3, 7]

    with fs.open(f"{name}/raw.bin", "wb") as f:
        f.write(b"abc")
        f.write(b"def")
    assert fs.cat(f"{name}/raw.bin") == b"abcdef"
    fs.rm(f"{name}/raw.bin")
    assert not fs.exists(f"{name}/raw.bin")
    with pytest.raises(ValueError, match="write to tether://<bucket>/<object name>"):
        fs.open(name, "wb")


def test_glob_over_a_data_set(storage_options):
    fs = fsspec.filesystem("tether", **storage_options)
    name = bucket_name()
    bucket = fs.client.storage.buckets.create(name, fs.service)
    for key in ("runs/1.csv", "runs/2.csv", "notes.txt"):
        bucket.objects.create(key).upload(f"content of {key}\n")
    sid = fs.client.add("data-set", {"name": "csv runs", "data-object-filter": "object^='runs/'"})[
        "resource-id"
    ]
    uuid = sid.split("/", 1)[1]
    expected = [f"set/{uuid}/{name}/runs/1.csv", f"set/{uuid}/{name}/runs/2.csv"]
    assert fs.glob(f"tether://set/{uuid}/{name}/runs/*.csv") == expected
    assert fs.ls(f"set/{uuid}", detail=False) == [f"set/{uuid}/{name}"]
    assert fs.cat(expected[1]) == b"content of runs/2.csv\n"
