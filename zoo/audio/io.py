"""Audio file loading: any common file to a mono float32 waveform at the model's sampling rate.

Decoders: soundfile (libsndfile: wav, flac, ogg/vorbis, opus, mp3) first, PyAV (ffmpeg) for containers such as
mp4/m4a/webm and as the fallback for anything libsndfile cannot open. Resampling uses soxr (band-limited, high
quality), never naive interpolation. torchaudio is deliberately not used: its I/O layer is deprecated upstream and
there is no build for the torch we pin.

Design choices:
* Multi-channel audio is mixed down by averaging channels (what Whisper-style front ends expect).
* Samples are float32 in [-1, 1]; integer PCM is scaled by its full range by the decoder.
* Every failure (missing, empty, undecodable) raises `AudioError` naming the file.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from zoo.errors import ZooError

__all__ = ["AudioError", "SAMPLING_RATE", "load_audio", "resample", "to_mono", "as_waveform"]

SAMPLING_RATE = 16000
# Extensions that only a container demuxer reads; soundfile is not even tried for these.
_CONTAINER_SUFFIXES = {".mp4", ".m4a", ".m4b", ".aac", ".mov", ".mkv", ".webm", ".wma", ".3gp", ".avi"}


class AudioError(ZooError, ValueError):
    """An audio file or array that cannot be used: missing, empty, corrupt or of the wrong shape."""


# ---------------------------------------------------------------------------------------------------------------
# Decoders
# ---------------------------------------------------------------------------------------------------------------


def _decode_soundfile(path: Path) -> tuple[np.ndarray, int]:
    """Decode with libsndfile. Returns samples (frames, channels) float32 and the file's rate."""
    import soundfile as sf

    data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    return data, int(rate)


def _decode_av(path: Path) -> tuple[np.ndarray, int]:
    """Decode the first audio stream with PyAV. Returns samples (frames, channels) float32 and the stream's rate."""
    import av

    with av.open(str(path)) as container:
        streams = container.streams.audio
        if not streams:
            raise AudioError(f"{path}: the file has no audio stream")
        stream = streams[0]
        # Resample to packed float32 inside ffmpeg so planar/int formats all come out the same way;
        # the sample rate is kept (soxr does rate conversion, with better quality than swresample defaults).
        chunks: list[np.ndarray] = []
        rate = stream.rate or stream.codec_context.sample_rate
        resampler = None
        for frame in container.decode(stream):
            if resampler is None:
                layout = frame.layout.name if frame.layout is not None else "mono"
                resampler = av.AudioResampler(format="flt", layout=layout, rate=frame.sample_rate)
                rate = frame.sample_rate
            for out in resampler.resample(frame):
                # Packed float32: ndarray (1, frames * channels), interleaved.
                chunks.append(out.to_ndarray().reshape(-1, len(out.layout.channels)))
        if resampler is not None:
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray().reshape(-1, len(out.layout.channels)))
    if not chunks:
        return np.zeros((0, 1), dtype=np.float32), int(rate or 0)
    return np.concatenate(chunks, axis=0).astype(np.float32, copy=False), int(rate)


# ---------------------------------------------------------------------------------------------------------------
# Signal helpers
# ---------------------------------------------------------------------------------------------------------------


def to_mono(samples: np.ndarray) -> np.ndarray:
    """Average channels.

    Args:
        samples: (frames,) or (frames, channels).

    Returns:
        (frames,) float32.
    """
    if samples.ndim == 1:
        return samples.astype(np.float32, copy=False)
    if samples.ndim != 2:
        raise AudioError(f"expected audio of shape (frames,) or (frames, channels), got {tuple(samples.shape)}")
    return samples.mean(axis=1, dtype=np.float64).astype(np.float32)


def resample(samples: np.ndarray, orig_rate: int, target_rate: int) -> np.ndarray:
    """Band-limited resampling with soxr ("HQ" quality). No-op when the rates already agree.

    Args:
        samples: (frames,) float32.
        orig_rate: rate of `samples` in Hz.
        target_rate: wanted rate in Hz.

    Returns:
        (round(frames * target_rate / orig_rate),) float32.
    """
    if orig_rate <= 0 or target_rate <= 0:
        raise AudioError(f"sampling rates must be positive, got {orig_rate} -> {target_rate}")
    if orig_rate == target_rate:
        return samples.astype(np.float32, copy=False)
    import soxr

    return soxr.resample(samples.astype(np.float32, copy=False), orig_rate, target_rate, quality="HQ").astype(
        np.float32, copy=False
    )


# ---------------------------------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------------------------------


def load_audio(path: str | os.PathLike, sampling_rate: int = SAMPLING_RATE) -> np.ndarray:
    """Load an audio file as a mono float32 waveform at `sampling_rate`.

    Args:
        path: wav/flac/ogg/mp3 (soundfile) or a container with an audio stream such as mp4/m4a (PyAV).
        sampling_rate: output rate in Hz.

    Returns:
        (samples,) float32 in [-1, 1].

    Raises:
        AudioError: the file is missing, is not a file, has no samples, or cannot be decoded.
    """
    p = Path(path)
    if not p.exists():
        raise AudioError(f"{p}: audio file not found")
    if not p.is_file():
        raise AudioError(f"{p}: not a file")
    if p.stat().st_size == 0:
        raise AudioError(f"{p}: audio file is empty (0 bytes)")

    errors: list[str] = []
    decoded: tuple[np.ndarray, int] | None = None
    decoders = [_decode_av] if p.suffix.lower() in _CONTAINER_SUFFIXES else [_decode_soundfile, _decode_av]
    for decode in decoders:
        try:
            decoded = decode(p)
            break
        except AudioError:
            raise
        except Exception as e:  # noqa: BLE001 - each backend has its own exception types; we report them all
            errors.append(f"{decode.__name__.removeprefix('_decode_')}: {type(e).__name__}: {e}")
    if decoded is None:
        raise AudioError(f"{p}: cannot decode audio ({'; '.join(errors)})")

    samples, rate = decoded
    if samples.shape[0] == 0:
        raise AudioError(f"{p}: audio file contains no samples")
    if not np.isfinite(samples).all():
        raise AudioError(f"{p}: audio contains NaN or infinite samples")
    return resample(to_mono(samples), rate, sampling_rate)


def as_waveform(audio: object, sampling_rate: int = SAMPLING_RATE, *, name: str = "audio") -> np.ndarray:
    """Normalise any accepted audio input to a mono float32 waveform at `sampling_rate`.

    Accepted: a path (str or PathLike), a 1-D numpy array or torch tensor already at `sampling_rate`, or a
    `(samples, rate)` tuple whose samples are (frames,) or (frames, channels).

    Args:
        audio: the input.
        sampling_rate: output rate in Hz.
        name: how to call the input in error messages (for example "audios[1]").

    Returns:
        (samples,) float32.
    """
    if isinstance(audio, (str, os.PathLike)):
        return load_audio(audio, sampling_rate)
    rate = sampling_rate
    from_tuple = isinstance(audio, tuple)
    if from_tuple:
        if len(audio) != 2:
            raise AudioError(f"{name}: expected a (samples, sampling_rate) tuple, got a tuple of {len(audio)}")
        audio, rate = audio
    if hasattr(audio, "detach"):  # torch.Tensor, without importing torch here
        audio = audio.detach().cpu().float().numpy()
    if not isinstance(audio, np.ndarray):
        raise AudioError(f"{name}: expected a path, a numpy array, a tensor or (samples, rate); got {type(audio)}")
    if audio.ndim == 2 and from_tuple:  # a bare 2-D array is ambiguous ((frames, ch) or (ch, frames)): refuse it
        audio = to_mono(audio)
    if audio.ndim != 1:
        raise AudioError(f"{name}: expected 1-D samples (or (frames, channels)), got shape {tuple(audio.shape)}")
    if audio.shape[0] == 0:
        raise AudioError(f"{name}: audio has no samples")
    if not np.isfinite(audio).all():
        raise AudioError(f"{name}: audio contains NaN or infinite samples")
    return resample(audio.astype(np.float32, copy=False), int(rate), sampling_rate)
