"""Eagle 2.5 processor: text with `<image-k>` / `<video-k>` placeholders + media -> token ids and pixel tiles.

Follows the `nvidia/Eagle2.5-8B` processor (`processing_eagle2_5_vl.py`, `image_processing_eagle2_5_vl_fast.py`):

* image k  -> `<image k><img>` + `<IMG_CONTEXT>` x (tokens_per_tile * tiles) + `</img>`, tiles from IAP tiling;
* video k  -> "The {first|second|...} video sampled with {fps:.2f} fps: " then per frame
  "Frame {i} sample at {t:.2f}s: <img>" + `<IMG_CONTEXT>` x tokens_per_tile + "</img>" (one tile per frame);
* the conversation is ChatML: `<|im_start|>{role}\\n{content}<|im_end|>\\n`, default system prompt
  "You are a helpful assistant.", and `<|im_start|>assistant\\n` to generate.

Settings come from the checkpoint's files, never from constants: `config.json` (force_image_size, min/max
dynamic tiles, use_thumbnail, downsample_ratio, vision patch size, image token) and `preprocessor_config.json`
(image_mean, image_std, tiles, thumbnail, tokens_per_tile, resample); a disagreement between the two about the token
geometry raises. Deviation: tiles are resized with PIL (the upstream fast processor resizes tensors with torchvision);
both are bicubic, so pixels differ by interpolation rounding only.

With `max_len`, Automatic Degrade Sampling (`zoo.vision.sampling.degrade_plan`) caps frames, then image tiles, so
the whole sample fits; the text is never cut.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from zoo.errors import ConfigError, ZooError
from zoo.vision.sampling import FramePlan, clip_range, degrade_plan, plan_frames
from zoo.vision.tiling import num_tiles, tile_image
from zoo.vision.video import open_video

PLACEHOLDER = re.compile(r"<(image|video)-(\d+)>")
ORDINALS = ("first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth")
DEFAULT_SYSTEM = "You are a helpful assistant."
USER_HEADER = "<|im_start|>user\n"

ImageInput = Image.Image | np.ndarray | str | os.PathLike


@dataclass(frozen=True)
class Video:
    """A video to sample: a file (optionally a clip of it) or frames already decoded.

    Attributes:
        path: Video file, or None when `frames` is given.
        start: Clip start in seconds.
        end: Clip end in seconds.
        frames: Already decoded frames (each PIL or (H, W, 3) uint8), all used; no timestamps then unless `fps`.
        fps: Frame rate of `frames` (gives timestamps and the sampled fps).
    """

    path: str | None = None
    start: float | None = None
    end: float | None = None
    frames: Sequence[Any] | None = None
    fps: float | None = None


@dataclass(frozen=True)
class ProcessorConfig:
    """Everything the processor needs, read from a checkpoint's files (see `from_files`).

    Attributes:
        tile_size: Tile side in pixels.
        min_tiles: IAP minimum tiles per image.
        max_tiles: IAP maximum tiles per image.
        use_thumbnail: Append a thumbnail tile to multi-tile images.
        tokens_per_tile: `<IMG_CONTEXT>` tokens per tile.
        image_mean: Per-channel mean after rescaling to [0, 1].
        image_std: Per-channel std.
        resample: PIL resampling filter id (3 = bicubic).
        video_fps: Target frame rate of video sampling.
        video_min_frames: Fewest frames per video.
        video_max_frames: Most frames per video.
        frame_factor: Frame counts are multiples of this.
        video_max_tiles: Tiles per video frame (1 upstream: no tiling, no thumbnail).
        system_prompt: Default system prompt.
        image_token: The context placeholder token.
        image_start_token: Token before an image's context tokens.
        image_end_token: Token after them.
    """

    tile_size: int = 448
    min_tiles: int = 1
    max_tiles: int = 12
    use_thumbnail: bool = True
    tokens_per_tile: int = 256
    image_mean: tuple[float, ...] = (0.5, 0.5, 0.5)
    image_std: tuple[float, ...] = (0.5, 0.5, 0.5)
    resample: int = 3
    video_fps: float = 2.0
    video_min_frames: int = 4
    video_max_frames: int = 256
    frame_factor: int = 2
    video_max_tiles: int = 1
    system_prompt: str = DEFAULT_SYSTEM
    image_token: str = "<IMG_CONTEXT>"
    image_start_token: str = "<img>"
    image_end_token: str = "</img>"

    def __post_init__(self) -> None:
        if not 1 <= self.min_tiles <= self.max_tiles:
            raise ConfigError(
                f"processor: need 1 <= min_dynamic_tiles <= max_dynamic_tiles, got {self.min_tiles}, {self.max_tiles}"
            )
        if len(self.image_mean) != 3 or len(self.image_std) != 3 or min(self.image_std) <= 0:
            raise ConfigError(
                f"processor: image_mean/image_std must be 3 values with std > 0, got "
                f"{self.image_mean}, {self.image_std}"
            )

    @classmethod
    def from_files(
        cls, config: dict[str, Any], preprocessor: dict[str, Any] | None = None, source: str = "checkpoint"
    ) -> ProcessorConfig:
        """Settings from config.json contents and (optionally) preprocessor_config.json contents.

        Raises:
            ConfigError: the files disagree on tile size or tokens per tile, naming both.
        """
        vision = config.get("vision_config") or {}
        tile = int(config.get("force_image_size") or vision.get("image_size") or 448)
        patch = int(vision.get("patch_size", 14))
        ratio = float(config.get("downsample_ratio", 0.5))
        tokens = round((tile // patch) ** 2 * ratio * ratio)
        kw: dict[str, Any] = {
            "tile_size": tile,
            "tokens_per_tile": tokens,
            "min_tiles": int(config.get("min_dynamic_tiles", 1)),
            "max_tiles": int(config.get("max_dynamic_tiles", 12)),
            "use_thumbnail": bool(config.get("use_thumbnail", True)),
        }
        pre = preprocessor or {}
        if "size" in pre and isinstance(pre["size"], dict) and pre["size"].get("height"):
            size = int(pre["size"]["height"])
            if size != tile:
                raise ConfigError(
                    f"{source}: preprocessor_config.json size {size} disagrees with config.json tile "
                    f"size {tile} (force_image_size / vision_config.image_size)"
                )
        if "tokens_per_tile" in pre and int(pre["tokens_per_tile"]) != tokens:
            raise ConfigError(
                f"{source}: preprocessor_config.json tokens_per_tile {pre['tokens_per_tile']} "
                f"disagrees with config.json geometry ({tile}/{patch})^2 * {ratio}^2 = {tokens}"
            )
        for ours, theirs in (("min_tiles", "min_dynamic_tiles"), ("max_tiles", "max_dynamic_tiles")):
            if theirs in pre:
                kw[ours] = int(pre[theirs])
        if "use_thumbnail" in pre:
            kw["use_thumbnail"] = bool(pre["use_thumbnail"])
        for k in ("image_mean", "image_std"):
            if k in pre:
                kw[k] = tuple(float(v) for v in pre[k])
        if "resample" in pre:
            kw["resample"] = int(pre["resample"])
        return cls(**kw)

    def to_preprocessor_config(self) -> dict[str, Any]:
        """preprocessor_config.json contents in the upstream field names."""
        return {
            "image_processor_type": "Eagle2_5_VLImageProcessorFast",
            "processor_class": "Eagle2_5_VLProcessor",
            "do_convert_rgb": True,
            "do_normalize": True,
            "do_rescale": True,
            "do_pad": False,
            "pad_during_tiling": False,
            "rescale_factor": 1 / 255,
            "image_mean": list(self.image_mean),
            "image_std": list(self.image_std),
            "resample": self.resample,
            "size": {"height": self.tile_size, "width": self.tile_size},
            "min_dynamic_tiles": self.min_tiles,
            "max_dynamic_tiles": self.max_tiles,
            "use_thumbnail": self.use_thumbnail,
            "tokens_per_tile": self.tokens_per_tile,
        }


def _load_image(image: ImageInput) -> Image.Image:
    if isinstance(image, Image.Image):
        return image
    if isinstance(image, np.ndarray):
        if image.ndim != 3 or image.shape[-1] not in (3, 4) or image.dtype != np.uint8:
            raise ZooError(f"image array must be (H, W, 3|4) uint8, got {image.shape} {image.dtype}")
        return Image.fromarray(image)
    path = os.fspath(image)
    try:
        img = Image.open(path)
        img.load()
        return img
    except FileNotFoundError:
        raise ZooError(f"{path}: no such image file") from None
    except Exception as e:
        raise ZooError(f"{path}: cannot read image ({type(e).__name__}: {e})") from None


class EagleProcessor:
    """Turns a conversation plus images and videos into `input_ids` and `pixel_values`.

    Shapes: L tokens, N tiles (all images' tiles, then all frames, in placeholder order), s tile side.
    """

    def __init__(self, tokenizer: Any, config: ProcessorConfig | None = None) -> None:
        self.tokenizer = tokenizer
        self.config = config or ProcessorConfig()
        c = self.config
        self.mean = torch.tensor(c.image_mean).view(1, 3, 1, 1)
        self.std = torch.tensor(c.image_std).view(1, 3, 1, 1)
        if tokenizer is not None:
            for tok in (c.image_token, c.image_start_token, c.image_end_token):
                ids = tokenizer.encode(tok, add_special_tokens=False)
                if len(ids) != 1:
                    raise ConfigError(f"tokenizer does not have {tok!r} as a single token (got {len(ids)} ids)")
            self.image_token_id = tokenizer.convert_tokens_to_ids(c.image_token)

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike, tokenizer: Any = None) -> EagleProcessor:
        """Read config.json (+ preprocessor_config.json when present) and the tokenizer from a checkpoint dir."""
        path = Path(path)
        try:
            config = json.loads((path / "config.json").read_text())
        except FileNotFoundError:
            raise ConfigError(f"{path / 'config.json'}: missing") from None
        except json.JSONDecodeError as e:
            raise ConfigError(f"{path / 'config.json'}: invalid JSON ({e})") from None
        pre = None
        if (path / "preprocessor_config.json").exists():
            try:
                pre = json.loads((path / "preprocessor_config.json").read_text())
            except json.JSONDecodeError as e:
                raise ConfigError(f"{path / 'preprocessor_config.json'}: invalid JSON ({e})") from None
        if tokenizer is None:
            from transformers import AutoTokenizer

            tokenizer = AutoTokenizer.from_pretrained(str(path))
        return cls(tokenizer, ProcessorConfig.from_files(config, pre, source=str(path)))

    def save_pretrained(self, path: str | os.PathLike) -> None:
        """Write preprocessor_config.json (the caller writes the tokenizer and config.json)."""
        Path(path, "preprocessor_config.json").write_text(json.dumps(self.config.to_preprocessor_config(), indent=2))

    # ------------------------------------------------------------------------------------------------- pixels
    def _to_tensor(self, tiles: list[Image.Image]) -> torch.Tensor:
        """PIL tiles -> (n, 3, s, s) float32, rescaled to [0, 1] and normalised."""
        arr = torch.from_numpy(np.stack([np.asarray(t, dtype=np.uint8) for t in tiles]))  # (n, s, s, 3)
        x = arr.permute(0, 3, 1, 2).float().div_(255.0)
        return (x - self.mean) / self.std

    def image_pixels(self, image: ImageInput, max_tiles: int | None = None) -> torch.Tensor:
        """One image -> (tiles, 3, s, s): IAP tiles row-major, then the thumbnail."""
        c = self.config
        tiles = tile_image(
            _load_image(image),
            tile=c.tile_size,
            min_tiles=c.min_tiles,
            max_tiles=max_tiles or c.max_tiles,
            use_thumbnail=c.use_thumbnail,
            resample=c.resample,
        )
        return self._to_tensor(tiles)

    def _frame_tensor(self, frames: Sequence[Any]) -> torch.Tensor:
        c = self.config
        tiles = []
        for f in frames:
            img = f if isinstance(f, Image.Image) else Image.fromarray(np.asarray(f))
            tiles += tile_image(
                img,
                tile=c.tile_size,
                min_tiles=1,
                max_tiles=c.video_max_tiles,
                use_thumbnail=False,
                resample=c.resample,
            )
        return self._to_tensor(tiles)

    def video_pixels(
        self, video: Video | str | os.PathLike, max_frames: int | None = None
    ) -> tuple[torch.Tensor, FramePlan | None]:
        """One video -> ((frames * video_max_tiles), 3, s, s) and its frame plan (None for pre-decoded frames
        without fps). Frames are decoded a chunk at a time and resized at once, so memory holds tiles, not frames."""
        c = self.config
        v = video if isinstance(video, Video) else Video(path=os.fspath(video))
        if v.frames is not None:
            frames = list(v.frames)
            if not frames:
                raise ZooError("video has no frames")
            plan = None
            if v.fps:
                plan = FramePlan(tuple(range(len(frames))), tuple(i / v.fps for i in range(len(frames))), v.fps)
            return self._frame_tensor(frames), plan
        reader = open_video(v.path)
        try:
            info = reader.info
            plan = plan_frames(
                info.num_frames,
                info.fps,
                target_fps=c.video_fps,
                min_frames=c.video_min_frames,
                max_frames=max_frames or c.video_max_frames,
                frame_factor=c.frame_factor,
                start=v.start,
                end=v.end,
            )
            parts = [self._frame_tensor(list(chunk)) for chunk in reader.read(plan.indices)]
        finally:
            reader.close()
        return torch.cat(parts), plan

    # ------------------------------------------------------------------------------------------------- text
    def _context(self, tiles: int) -> str:
        c = self.config
        return c.image_start_token + c.image_token * (tiles * c.tokens_per_tile) + c.image_end_token

    def _video_text(self, k: int, n_frames: int, plan: FramePlan | None) -> str:
        per_frame = self.config.video_max_tiles
        if plan is not None:
            frames = "".join(
                f"Frame {i + 1} sample at {t:.2f}s: {self._context(per_frame)}" for i, t in enumerate(plan.timestamps)
            )
            head = f"The {ORDINALS[k] if k < len(ORDINALS) else f'{k + 1}th'} video sampled with {plan.fps:.2f} fps: "
        else:
            frames = "".join(f"Frame {i + 1}: {self._context(per_frame)}" for i in range(n_frames))
            head = f"The {ORDINALS[k] if k < len(ORDINALS) else f'{k + 1}th'} video: "
        return head + frames

    def render_chat(self, messages: str | Sequence[dict[str, str]], *, add_generation_prompt: bool = True) -> str:
        """ChatML text of a conversation (a plain string is one user turn); adds the default system prompt."""
        if isinstance(messages, str):
            messages = [{"role": "user", "content": messages}]
        msgs = list(messages)
        if not msgs or msgs[0].get("role") != "system":
            msgs.insert(0, {"role": "system", "content": self.config.system_prompt})
        out = "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in msgs)
        return out + ("<|im_start|>assistant\n" if add_generation_prompt else "")

    @staticmethod
    def add_placeholders(text: str, n_images: int, n_videos: int) -> str:
        """Insert `<image-k>` / `<video-k>` placeholders for media the text does not mention (one per line).

        They go at the start of the last user turn when `text` is a rendered ChatML prompt, else at the start.
        """
        used = {(m.group(1), int(m.group(2))) for m in PLACEHOLDER.finditer(text)}
        missing = [f"<image-{k}>" for k in range(1, n_images + 1) if ("image", k) not in used]
        missing += [f"<video-{k}>" for k in range(1, n_videos + 1) if ("video", k) not in used]
        at = text.rfind(USER_HEADER)
        at = at + len(USER_HEADER) if at >= 0 else 0
        return text[:at] + "".join(p + "\n" for p in missing) + text[at:]

    # ------------------------------------------------------------------------------------------------- main
    def __call__(
        self,
        text: str | Sequence[dict[str, str]],
        images: Sequence[ImageInput] | None = None,
        videos: Sequence[Video | str | os.PathLike] | None = None,
        *,
        chat: bool = True,
        add_generation_prompt: bool = True,
        max_len: int | None = None,
    ) -> dict[str, torch.Tensor]:
        """Tokenize a prompt and preprocess its media.

        Args:
            text: A user message, or a list of {"role", "content"} messages, or (with chat=False) a rendered prompt,
                with `<image-k>` / `<video-k>` placeholders (1-based). Media the text does not reference are put
                at the start of the last user turn.
            images: Images, PIL / (H, W, 3) uint8 / paths.
            videos: Videos, paths or `Video`.
            chat: Wrap a string in the ChatML template (False: `text` is an already rendered prompt, used as is).
            add_generation_prompt: End with the assistant header.
            max_len: Token budget; when given, ADS degrades frames then tiles to fit it.

        Returns:
            {"input_ids": (1, L), "attention_mask": (1, L), "pixel_values": (N, 3, s, s) when there are media}.
        """
        images, videos = list(images or []), list(videos or [])
        if isinstance(text, str):
            body = self.add_placeholders(text, len(images), len(videos))
            prompt = self.render_chat(body, add_generation_prompt=add_generation_prompt) if chat else body
        else:
            prompt = self.add_placeholders(
                self.render_chat(text, add_generation_prompt=add_generation_prompt), len(images), len(videos)
            )

        refs = [(m.group(1), int(m.group(2))) for m in PLACEHOLDER.finditer(prompt)]
        for kind, k in refs:
            n = len(images) if kind == "image" else len(videos)
            if not 1 <= k <= n:
                raise ZooError(f"placeholder <{kind}-{k}> but {n} {kind}(s) were given")

        max_tiles, frame_caps = None, [None] * len(videos)
        if max_len is not None:
            max_tiles, frame_caps = self._degrade(prompt, images, videos, max_len)

        pixels: list[torch.Tensor] = []
        image_cache: dict[int, torch.Tensor] = {}

        def expand(m: re.Match) -> str:
            kind, k = m.group(1), int(m.group(2)) - 1
            if kind == "image":
                if k not in image_cache:
                    image_cache[k] = self.image_pixels(images[k], max_tiles)
                px = image_cache[k]
                pixels.append(px)
                return f"<image {k + 1}>" + self._context(px.shape[0])
            px, plan = self.video_pixels(videos[k], frame_caps[k])
            pixels.append(px)
            return self._video_text(k, px.shape[0] // self.config.video_max_tiles, plan)

        expanded = PLACEHOLDER.sub(expand, prompt)
        ids = torch.tensor([self.tokenizer.encode(expanded, add_special_tokens=False)], dtype=torch.long)
        out = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
        if pixels:
            out["pixel_values"] = torch.cat(pixels)
        n_ctx = int((ids == self.image_token_id).sum())
        n_px = sum(p.shape[0] for p in pixels) * self.config.tokens_per_tile
        if n_ctx != n_px:  # the image token inside user text would silently shift every feature
            raise ZooError(
                f"prompt has {n_ctx} {self.config.image_token} tokens but the media give {n_px}; "
                f"do not write {self.config.image_token} in the text"
            )
        return out

    def _degrade(self, prompt: str, images: list[Any], videos: list[Any], max_len: int) -> tuple[int, list[int | None]]:
        """ADS: (image tile cap, per-video frame cap) so that the expanded prompt fits in max_len tokens."""
        c = self.config
        enc = self.tokenizer.encode
        text_tokens = len(enc(PLACEHOLDER.sub("", prompt), add_special_tokens=False))
        # Wrapper text is charged to the media it wraps; counts are worst-case upper bounds.
        image_overhead = len(enc("<image 99>", add_special_tokens=False)) + 2
        frame_overhead = len(enc("Frame 9999 sample at 99999.99s: ", add_special_tokens=False)) + 2
        video_head = len(enc("The seventh video sampled with 999.99 fps: ", add_special_tokens=False))
        text_tokens += video_head * len(videos)
        sizes = [_load_image(im).size for im in images]
        infos = []
        for v in videos:
            v = v if isinstance(v, Video) else Video(path=os.fspath(v))
            if v.frames is not None:
                infos.append((len(v.frames), v.fps or 1.0))
                continue
            reader = open_video(v.path)
            info = reader.info
            reader.close()
            first, last = clip_range(info.num_frames, info.fps, v.start, v.end)  # ADS sees the clip only
            infos.append((last - first + 1, info.fps))
        plan = degrade_plan(
            text_tokens,
            sizes,
            infos,
            max_len,
            tokens_per_tile=c.tokens_per_tile,
            tile_options=[t for t in (12, 8, 6, 4, 2, 1) if c.min_tiles <= t <= c.max_tiles] or [c.max_tiles],
            tile=c.tile_size,
            min_tiles=c.min_tiles,
            use_thumbnail=c.use_thumbnail,
            target_fps=c.video_fps,
            min_frames=c.video_min_frames,
            max_frames=c.video_max_frames,
            frame_factor=c.frame_factor,
            image_overhead=image_overhead,
            frame_overhead=frame_overhead * c.video_max_tiles,
        )
        return plan.max_tiles, list(plan.frames) or [None] * len(videos)


def tile_count(config: ProcessorConfig, width: int, height: int) -> int:
    """Tiles an image of this size gets under `config` (thumbnail included), without touching pixels."""
    return num_tiles(
        width,
        height,
        tile=config.tile_size,
        min_tiles=config.min_tiles,
        max_tiles=config.max_tiles,
        use_thumbnail=config.use_thumbnail,
    )


__all__ = ["EagleProcessor", "ProcessorConfig", "Video", "tile_count"]
