"""Model configurations: a model is one or more stages (Multidimensional Upscaling) over one image."""
import json
import os

import torch

from .model import check_order, raster_order, to_slices

# configs by name: scripts/configs, or SPN_CONFIGS (scripts/experiment-width.sh's variants)
CONFIG_DIR = os.environ.get("SPN_CONFIGS") or os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs")


# the channels of an image as files and the API hold them, by channel count
IMAGE_CHANNELS = {1: ["gray"], 2: ["gray", "A"], 3: ["R", "G", "B"], 4: ["R", "G", "B", "A"]}


def channel_perm(cfg):
    """The image channel each of the model's channels is: the model generates a pixel's channels in
    the config's channel_order (e.g. ["G", "R", "B"]); images come and go in IMAGE_CHANNELS order."""
    names = IMAGE_CHANNELS[cfg["channels"]]
    order = [c.lower() for c in cfg.get("channel_order") or names]
    if sorted(order) != sorted(n.lower() for n in names):
        raise ValueError(f"channel_order {cfg.get('channel_order')} must name each of the channels {names} once")
    return [[n.lower() for n in names].index(c) for c in order]


def to_model_channels(cfg, images):
    """Images [B, C, N, N] in IMAGE_CHANNELS order -> the model's channel order."""
    perm = channel_perm(cfg)
    return images if perm == sorted(perm) else images[:, perm]


def to_image_channels(cfg, images):
    """Inverse of to_model_channels."""
    perm = channel_perm(cfg)
    if perm == sorted(perm):
        return images
    inverse = [perm.index(c) for c in range(len(perm))]
    return images[:, inverse]


def load_config(name_or_path):
    path = name_or_path if name_or_path.endswith(".json") else os.path.join(CONFIG_DIR, name_or_path + ".json")
    with open(path) as f:
        cfg = json.load(f)
    # the order the slices are generated in: offsets [i, j] (raster order unless the config says)
    cfg["slice_order"] = check_order(cfg.get("slice_order") or raster_order(cfg["subscale"]), cfg["subscale"])
    cfg["channel_order"] = cfg.get("channel_order") or IMAGE_CHANNELS[cfg["channels"]]
    channel_perm(cfg)   # (checked here: a bad channel_order stops training before it starts)
    for st in cfg["stages"]:
        st.setdefault("last_slice", cfg["subscale"] ** 2)
        st["aux_bits"] = cfg["bit_depth"] - st["shift"] - st["bits"]
    return cfg


def check_checkpoint_orders(cfg, ck_cfg, path):
    """A checkpoint's weights were trained for its config's slice and channel orders: refuse to
    resume or export them under others (absent in a checkpoint: raster, the image's own order)."""
    if ck_cfg is None:
        return
    S, C = ck_cfg["subscale"], ck_cfg["channels"]
    same = {"slice_order": lambda a, b: [list(x) for x in a] == [list(x) for x in b],
            "channel_order": lambda a, b: [x.lower() for x in a] == [x.lower() for x in b]}
    for key, default in (("slice_order", raster_order(S)), ("channel_order", IMAGE_CHANNELS[C])):
        was = ck_cfg.get(key) or default
        now = cfg[key]
        if not same[key](was, now):
            raise SystemExit(f"{path} was trained with {key} {was}; the config now says {now}: "
                             "train afresh in another --runs folder")


def stage_model_config(cfg, stage):
    out = {k: cfg[k] for k in ("image_size", "channels", "subscale")}
    out.update({k: stage[k] for k in ("bits", "first_slice", "last_slice", "aux_bits")})
    out.update(stage.get("net", {}))
    return out


def stage_planes(cfg, stage, images):
    """uint8 images [B, C, N, N] (channels in IMAGE_CHANNELS order) -> (slices of this stage's plane,
    slices of the aux plane or None), both int64 [B, SS, C, h, w], channels in the model's order."""
    x = to_model_channels(cfg, images.to(torch.int64))
    S = cfg["subscale"]
    plane = (x >> stage["shift"]) & ((1 << stage["bits"]) - 1)
    aux = (x >> (stage["shift"] + stage["bits"])) if stage["aux_bits"] else None
    order = cfg.get("slice_order")   # (a config not read by load_config: raster order)
    return to_slices(plane, S, order), (to_slices(aux, S, order) if aux is not None else None)
