"""Fashion-MNIST from Debian's dataset-fashion-mnist (IDX files, gzip). Nothing is downloaded."""
import gzip
import os
import struct

import numpy as np
import torch

DATA_DIR = os.environ.get("SPN_DATA_DIR", "/usr/share/datasets/fashion-mnist")


def read_idx_images(path):
    with gzip.open(path, "rb") as f:
        magic, n, rows, cols = struct.unpack(">IIII", f.read(16))
        if magic != 2051:
            raise ValueError(f"{path}: not an IDX image file (magic {magic})")
        data = np.frombuffer(f.read(n * rows * cols), dtype=np.uint8)
    return data.reshape(n, 1, rows, cols)


def load_split(split, data_dir=DATA_DIR):
    """Returns uint8 images [n, 1, 28, 28]. split: 'train' (60k) or 'test' (10k)."""
    name = {"train": "train-images-idx3-ubyte.gz", "test": "t10k-images-idx3-ubyte.gz"}[split]
    return read_idx_images(os.path.join(data_dir, name))


def colourize(images, seed=0):
    """A C = 3 variant for the colour configurations: each garment gets a random tint.

    Fashion-MNIST is grayscale; this exists so that the C = 3 path is exercised end to end."""
    rng = np.random.default_rng(seed)
    tint = rng.uniform(0.35, 1.0, size=(images.shape[0], 3, 1, 1))
    return np.clip(np.round(images.astype(np.float64) * tint), 0, 255).astype(np.uint8)


def datasets(channels=1, validation=5000, limit=None, seed=0):
    """Train / validation / test tensors (uint8, [n, C, 28, 28]). Validation is held out of the
    60,000 training images (a fixed random subset) and drives early stopping."""
    train = load_split("train")
    test = load_split("test")
    if channels == 3:
        train, test = colourize(train, seed), colourize(test, seed + 1)
    elif channels != 1:
        raise ValueError("channels must be 1 or 3")
    perm = np.random.default_rng(seed).permutation(train.shape[0])
    val, tr = train[perm[:validation]], train[perm[validation:]]
    if limit:
        tr, val, test = tr[:limit], val[: max(limit // 4, 16)], test[: max(limit // 4, 16)]
    return torch.from_numpy(tr.copy()), torch.from_numpy(val.copy()), torch.from_numpy(test.copy())
