"""Vision: Eagle 2.5 tiling, frame sampling, video reading, SigLIP tower, projector, processor and model.

Model-free parts are importable without the language backbone; `EagleVLModel` lives in `zoo.vision.model`.
"""

from zoo.vision.projector import build_mlp1, pixel_shuffle, project
from zoo.vision.sampling import DegradePlan, FramePlan, SampleRejected, degrade_plan, plan_frames
from zoo.vision.siglip import SiglipConfig, SiglipTower, siglip_key_map
from zoo.vision.tiling import ImageSizeError, num_tiles, plan_tiles, tile_image
from zoo.vision.video import VideoError, VideoInfo, open_video, read_frames

__all__ = [
    "DegradePlan",
    "FramePlan",
    "ImageSizeError",
    "SampleRejected",
    "SiglipConfig",
    "VideoError",
    "VideoInfo",
    "build_mlp1",
    "SiglipTower",
    "degrade_plan",
    "num_tiles",
    "open_video",
    "pixel_shuffle",
    "plan_frames",
    "plan_tiles",
    "project",
    "read_frames",
    "siglip_key_map",
    "tile_image",
]
