"""The data cache of image folders: decoded once and read again without decoding, rebuilt when the folder
changes or the cache is damaged (never read as garbage), a full disk and an unwritable cache each one line;
and :class:`condgen.StoredArray`, the images read from the cache a batch at a time (``keep=disk``), which
train to the same numbers as images held in memory."""

from __future__ import annotations

import errno
import json
import os
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from condgen.cli import main
from condgen.common.errors import ConfigError, DataError
from condgen.data import folder
from condgen.data.cache import cache_root
from condgen.data.folder import ImageFolderOptions, read_image_folder
from condgen.data.stored import StoredArray
from condgen.runs.config import RunConfig


def colour_folder(root: Path, per_class: int = 12) -> Path:
    """Two classes of 12x10 RGB PNGs, each image its own (distinct noise over its class's colour)."""
    rng = np.random.default_rng(0)
    for name, base in (("red", (200, 30, 30)), ("blue", (30, 30, 200))):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            pixels = np.clip(np.array(base) + rng.integers(-30, 30, (12, 10, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(root / name / f"{i:02d}.png")
    return root


def entries(kind: str = "image-folder") -> list[Path]:
    return sorted((cache_root() / kind).glob("*/"))


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("CONDGEN_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def never_decode(monkeypatch) -> None:
    def refuse(path, options):
        raise AssertionError(f"{path} was decoded again")
    monkeypatch.setattr(folder, "_decode", refuse)


def test_a_folder_is_decoded_once_and_read_from_the_cache_after(tmp_path, fresh_cache, monkeypatch):
    root = colour_folder(tmp_path / "d")
    first = read_image_folder(root)
    (entry,) = entries()
    assert sorted(p.name for p in entry.iterdir()) == ["lock", "test.json", "test.rows", "train.json", "train.rows"]
    assert (entry / "train.rows").stat().st_size == first.train["image"].numel()  # the pixels, as uint8
    never_decode(monkeypatch)
    again = read_image_folder(root)
    for split in ("train", "test"):
        assert torch.equal(getattr(first, split)["image"], getattr(again, split)["image"])
        assert torch.equal(getattr(first, split)["label"], getattr(again, split)["label"])
    # the same pixels as decoding into memory without the cache
    monkeypatch.undo()
    direct = read_image_folder(root, ImageFolderOptions(cache=False))
    assert torch.equal(direct.train["image"], first.train["image"]) and first.train["image"].shape == (22, 3, 12, 10)


def test_a_changed_folder_is_decoded_again_and_its_new_pixels_read(tmp_path, fresh_cache, monkeypatch):
    root = colour_folder(tmp_path / "d")
    before = read_image_folder(root, ImageFolderOptions(test_fraction=0.2))
    name = sorted((root / "red").iterdir())[0]
    Image.fromarray(np.full((12, 10, 3), 7, np.uint8)).save(name)  # one file rewritten: its size and time change
    os.utime(name, ns=(1, 1))
    after = read_image_folder(root, ImageFolderOptions(test_fraction=0.2))
    assert len(entries()) == 1  # rebuilt in place, not beside the stale one
    changed = [(s, i) for s in ("train", "test") for i, img in enumerate(getattr(after, s)["image"])
               if not torch.equal(img, getattr(before, s)["image"][i])]
    assert len(changed) == 1
    split, i = changed[0]
    assert getattr(after, split)["image"][i].unique().tolist() == [7]
    # another size is another entry: both are kept
    read_image_folder(root, ImageFolderOptions(test_fraction=0.2, size=[6, 5]))
    assert len(entries()) == 2


@pytest.mark.parametrize("damage", ["flip a byte", "cut short", "description not JSON", "description emptied",
                                    "description of other files"])
def test_a_damaged_cache_is_rebuilt_with_a_warning_never_read_as_garbage(tmp_path, fresh_cache, damage):
    root = colour_folder(tmp_path / "d")
    good = read_image_folder(root)
    (entry,) = entries()
    rows, meta = entry / "train.rows", entry / "train.json"
    data = bytearray(rows.read_bytes())
    if damage == "flip a byte":
        data[len(data) // 2] ^= 0xFF
        rows.write_bytes(bytes(data))
    elif damage == "cut short":
        rows.write_bytes(bytes(data[:-100]))
    elif damage == "description not JSON":
        meta.write_text("{" + meta.read_text()[:50])
    elif damage == "description of other files":  # its key and checksums right, its record of the files short
        description = json.loads(meta.read_text())
        meta.write_text(json.dumps({**description, "files": description["files"][:-1]}))
    else:
        meta.write_text("")
    with pytest.warns(UserWarning, match=r"the data cache .* \(train\) is damaged: .*; building it again"):
        again = read_image_folder(root)
    assert torch.equal(again.train["image"], good.train["image"])
    assert rows.stat().st_size == good.train["image"].numel()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # whole again: read without a warning
        assert torch.equal(read_image_folder(root).train["image"], good.train["image"])


class FullAfter:
    """A file that takes ``writes`` writes, then reports a full disk."""

    def __init__(self, fh, writes: int) -> None:
        self.fh, self.left = fh, writes

    def write(self, data):
        self.left -= 1
        if self.left < 0:
            raise OSError(errno.ENOSPC, "No space left on device")
        return self.fh.write(data)

    def __getattr__(self, name):
        return getattr(self.fh, name)


def test_a_full_disk_while_caching_is_one_line_and_leaves_no_file(tmp_path, fresh_cache, monkeypatch):
    root = colour_folder(tmp_path / "d")
    from condgen.data import cache

    real_init = cache.RowWriter.__init__

    def init(self, *args):
        real_init(self, *args)
        self.fh = FullAfter(self.fh, 4)

    monkeypatch.setattr(cache.RowWriter, "__init__", init)
    with pytest.raises(DataError) as err:
        read_image_folder(root)
    message = str(err.value)
    assert "\n" not in message and "no space left on the device" in message and "cache=false" in message
    (entry,) = entries()
    assert sorted(p.name for p in entry.iterdir()) == ["lock"]  # no half-written rows, nothing committed


def test_an_unwritable_cache_folder_is_one_line_with_the_fix(tmp_path, monkeypatch, capsys):
    root = colour_folder(tmp_path / "d")
    (tmp_path / "file").write_text("not a folder")
    monkeypatch.setenv("CONDGEN_CACHE_DIR", str(tmp_path / "file" / "cache"))
    assert main(["train", "--dataset", "image-folder", "--data-dir", str(root), "--conditioner", "label:num_classes=2",
                 "--epochs", "1", "--device", "cpu", "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot make the data cache folder" in err[0] and "CONDGEN_CACHE_DIR" in err[0], err
    assert not (tmp_path / "run").exists()
    # without the cache it trains
    assert main(["train", "--dataset", "image-folder", "--data-dir", str(root), "--conditioner", "label:num_classes=2",
                 "--data-option", "cache=false", "--epochs", "1", "--hidden", "16", "--device", "cpu",
                 "--out", str(tmp_path / "run")]) == 0


def test_an_interrupted_build_leaves_no_file_and_the_next_run_builds_it(tmp_path, fresh_cache, monkeypatch):
    root = colour_folder(tmp_path / "d")
    real = folder._decode
    seen = []

    def interrupt(path, options):
        seen.append(path)
        if len(seen) == 6:
            raise KeyboardInterrupt
        return real(path, options)

    monkeypatch.setattr(folder, "_decode", interrupt)
    with pytest.raises(KeyboardInterrupt):
        read_image_folder(root)
    (entry,) = entries()
    assert sorted(p.name for p in entry.iterdir()) == ["lock"]
    monkeypatch.undo()
    assert read_image_folder(root).train["image"].shape[0] == 22


def test_unreadable_files_are_remembered_by_the_cache(tmp_path, fresh_cache, monkeypatch):
    root = colour_folder(tmp_path / "d")
    (root / "red" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    with pytest.warns(UserWarning, match=r"skipped 1 file\(s\)"):
        first = read_image_folder(root, ImageFolderOptions(bad_files="skip"))
    never_decode(monkeypatch)  # what a file's problem was is kept with the pixels: no run decodes again
    with pytest.raises(DataError, match=r"broken.png' is not a readable image \(UnidentifiedImageError"):
        read_image_folder(root)
    with pytest.warns(UserWarning, match=r"skipped 1 file\(s\)"):
        data = read_image_folder(root, ImageFolderOptions(bad_files="skip"))
    assert data.train["image"].shape[0] + data.test["image"].shape[0] == 24
    assert torch.equal(data.train["image"], first.train["image"])


def test_keep_disk_reads_the_cache_a_batch_at_a_time(tmp_path, fresh_cache):
    root = colour_folder(tmp_path / "d")
    memory = read_image_folder(root, ImageFolderOptions(keep="memory"))
    disk = read_image_folder(root, ImageFolderOptions(keep="disk"))
    images = disk.train["image"]
    assert isinstance(images, StoredArray) and isinstance(memory.train["image"], torch.Tensor)
    assert images.shape == memory.train["image"].shape and images.dtype == torch.uint8 and images.dim() == 4
    assert torch.equal(images[:], memory.train["image"])
    head = disk.limited(5, 3)
    assert isinstance(head.train["image"], StoredArray) and torch.equal(head.train["image"][:],
                                                                       memory.train["image"][:5])


def test_keep_disk_without_the_cache_is_refused():
    with pytest.raises(ConfigError, match="keep=disk reads the images from the cache"):
        RunConfig.parse({"data": {"dataset": "image-folder", "options": {"keep": "disk", "cache": False}}})


@pytest.mark.parametrize("chunk", [4096, 3])  # one read in file order, or many chunks of 3
def test_a_stored_array_indexes_like_the_tensor_it_holds(tmp_path, monkeypatch, chunk):
    from condgen.data import stored as stored_module

    monkeypatch.setattr(stored_module, "READ_CHUNK", chunk)
    data = torch.randint(0, 256, (40, 3, 2, 5), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    path = tmp_path / "rows"
    path.write_bytes(data.numpy().tobytes())
    order = np.random.default_rng(1).permutation(40)[:30]
    stored = StoredArray(path, (3, 2, 5)).select(order)
    held = data[torch.from_numpy(order)]
    assert stored.shape == held.shape and len(stored) == 30 and stored.numel() == held.numel()
    idx = torch.tensor([4, 4, 29, 0, 5, 6, 7, 8, -1])  # repeats, a run of neighbours, a negative index
    for key in (3, -2, slice(None), slice(2, 20, 3), idx, idx.numpy(), [1, 0], held[:, 0, 0, 0] > 128):
        assert torch.equal(stored[key], held[key]), key
    floats = stored.as_floats()
    assert floats.dtype == torch.float32 and floats.is_floating_point() and not stored.is_floating_point()
    assert torch.equal(floats[idx], held[idx].float() / 255)
    assert torch.equal(stored.head(4)[:], held[:4]) and stored.to("cpu")[2].shape == (3, 2, 5)
    assert repr(stored).startswith("StoredArray([30, 3, 2, 5], uint8")
    with pytest.raises(ValueError, match="rows must be a 1-D array of row numbers below 40"):
        StoredArray(path, (3, 2, 5), np.array([40]))


def test_a_stored_array_whose_file_is_cut_short_is_a_data_error(tmp_path):
    path = tmp_path / "rows"
    path.write_bytes(bytes(200))
    stored = StoredArray(path, (10,), file_rows=20)
    path.write_bytes(bytes(150))  # the file shrinks under it
    with pytest.raises(DataError, match=r"is cut short \(row 15 and after are missing\)"):
        stored[15:]


def test_training_from_the_disk_gives_the_numbers_of_training_in_memory(tmp_path, fresh_cache):
    root = colour_folder(tmp_path / "d", per_class=20)
    rows = {}
    for keep in ("memory", "disk"):
        run = tmp_path / keep
        assert main(["train", "--dataset", "image-folder", "--data-dir", str(root), "--data-option", f"keep={keep}",
                     "--conditioner", "label:num_classes=2", "--epochs", "2", "--hidden", "16", "--batch-size", "8",
                     "--device", "cpu", "--out", str(run)]) == 0
        rows[keep] = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        assert (run / "samples.png").exists() and (run / "latent.png").exists()
    keys = ("train_loss", "test_neg_elbo")
    assert [[r[k] for k in keys] for r in rows["disk"]] == [[r[k] for k in keys] for r in rows["memory"]]
    assert main(["evaluate", str(tmp_path / "disk")]) == 0


def test_worker_processes_decode_what_threads_decode_and_pass_on_errors(tmp_path, fresh_cache, monkeypatch):
    root = colour_folder(tmp_path / "d")
    threads = read_image_folder(root, ImageFolderOptions(cache=False))
    monkeypatch.setattr(folder, "PROCESS_FILES", 0)  # a folder of any size in processes, 5 files a chunk
    monkeypatch.setattr(folder, "CHUNK_FILES", 5)
    processes = read_image_folder(root, ImageFolderOptions(cache=False))
    for split in ("train", "test"):
        assert torch.equal(getattr(threads, split)["image"], getattr(processes, split)["image"])
    (root / "red" / "05.png").write_bytes(b"not a png")  # a file's problem comes back from its worker
    with pytest.raises(DataError, match=r"05.png' is not a readable image"):
        read_image_folder(root)
    # its split was cached, the file's problem with it, before the refusal: the next run refuses without decoding
    assert {"train.json", "train.rows"} <= {p.name for p in entries()[0].iterdir()}


def test_an_inpainting_run_on_images_read_from_the_disk_trains_and_evaluates(tmp_path, fresh_cache, capsys):
    root = colour_folder(tmp_path / "d", per_class=10)
    run = tmp_path / "run"
    assert main(["train", "--dataset", "image-folder", "--data-dir", str(root), "--data-option", "keep=disk",
                 "--conditioner", "inpaint", "--epochs", "1", "--hidden", "16", "--device", "cpu",
                 "--out", str(run)]) == 0
    capsys.readouterr()
    # the test split is a StoredArray here: its conditions are checked batch by batch, not made whole
    assert main(["evaluate", str(run), "--samples", "2", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["test_is_nll"] > 0
