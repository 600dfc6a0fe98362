"""Model configurations: a model is one or more stages (Multidimensional Upscaling) over one image."""
import json
import os

import torch

from .model import check_order, raster_order, to_slices

# configs by name: scripts/configs, or SPN_CONFIGS (scripts/experiment-width.sh's variants)
CONFIG_DIR = os.environ.get("SPN_CONFIGS") or os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs")


def load_config(name_or_path):
    path = name_or_path if name_or_path.endswith(".json") else os.path.join(CONFIG_DIR, name_or_path + ".json")
    with open(path) as f:
        cfg = json.load(f)
    # the order the slices are generated in: offsets [i, j] (raster order unless the config says)
    cfg["slice_order"] = check_order(cfg.get("slice_order") or raster_order(cfg["subscale"]), cfg["subscale"])
    for st in cfg["stages"]:
        st.setdefault("last_slice", cfg["subscale"] ** 2)
        st["aux_bits"] = cfg["bit_depth"] - st["shift"] - st["bits"]
    return cfg


def stage_model_config(cfg, stage):
    out = {k: cfg[k] for k in ("image_size", "channels", "subscale")}
    out.update({k: stage[k] for k in ("bits", "first_slice", "last_slice", "aux_bits")})
    out.update(stage.get("net", {}))
    return out


def stage_planes(cfg, stage, images):
    """uint8 images [B, C, N, N] -> (slices of this stage's plane, slices of the aux plane or None),
    both int64 [B, SS, C, h, w]."""
    x = images.to(torch.int64)
    S = cfg["subscale"]
    plane = (x >> stage["shift"]) & ((1 << stage["bits"]) - 1)
    aux = (x >> (stage["shift"] + stage["bits"])) if stage["aux_bits"] else None
    order = cfg.get("slice_order")   # (a config not read by load_config: raster order)
    return to_slices(plane, S, order), (to_slices(aux, S, order) if aux is not None else None)
