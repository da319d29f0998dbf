"""zoo.audio.io on real files written here: wav/flac/ogg/mp3 via soundfile, m4a/mp4 via PyAV, stereo, 8/44.1 kHz."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from zoo.audio.io import AudioError, as_waveform, load_audio, resample

SR = 16000


def _tone(freq: float, seconds: float, sr: int, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def _dominant_hz(x: np.ndarray, sr: int) -> float:
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / sr)[spec.argmax()])


def _write_av(path, samples: np.ndarray, sr: int, codec: str) -> None:
    """Encode (frames, channels) float32 with PyAV (AAC in an mp4/m4a container)."""
    import av

    channels = samples.shape[1]
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=sr, layout="stereo" if channels == 2 else "mono")
        frame_len = 1024
        for i in range(0, samples.shape[0], frame_len):
            chunk = np.ascontiguousarray(samples[i : i + frame_len].T)  # planar (channels, n)
            frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout=stream.layout.name)
            frame.sample_rate = sr
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)


@pytest.mark.parametrize(
    "fmt,subtype", [("wav", "PCM_16"), ("flac", "PCM_16"), ("ogg", "VORBIS"), ("mp3", "MPEG_LAYER_III")]
)
def test_soundfile_formats_roundtrip(tmp_path, fmt, subtype):
    x = _tone(440.0, 1.0, SR)
    path = tmp_path / f"tone.{fmt}"
    sf.write(str(path), x, SR, format=fmt.upper() if fmt != "mp3" else "MP3", subtype=subtype)
    y = load_audio(path)
    assert y.dtype == np.float32 and y.ndim == 1
    assert abs(len(y) - len(x)) <= 2000  # lossy codecs add encoder delay/padding
    assert abs(_dominant_hz(y, SR) - 440.0) < 3.0
    if fmt in ("wav", "flac"):  # lossless: sample-exact up to 16-bit quantisation
        np.testing.assert_allclose(y, x, atol=1e-4)


def test_stereo_is_mixed_down_and_44k_resampled(tmp_path):
    sr = 44100
    left, right = _tone(300.0, 0.5, sr, 0.4), _tone(300.0, 0.5, sr, 0.2)
    path = tmp_path / "stereo.wav"
    sf.write(str(path), np.stack([left, right], axis=1), sr, subtype="FLOAT")
    y = load_audio(path)
    assert len(y) == round(0.5 * sr * SR / sr)
    # Mixdown of two in-phase sines of amplitude 0.4 and 0.2 has amplitude 0.3; soxr keeps it (away from edges).
    assert abs(np.abs(y[800:-800]).max() - 0.3) < 0.01
    assert abs(_dominant_hz(y, SR) - 300.0) < 3.0


def test_8k_upsampled_matches_direct_synthesis(tmp_path):
    path = tmp_path / "low.wav"
    sf.write(str(path), _tone(1000.0, 1.0, 8000), 8000, subtype="FLOAT")
    y = load_audio(path)
    assert len(y) == SR
    ref = _tone(1000.0, 1.0, SR)
    # A proper band-limited resampler reproduces the 16 kHz sine (edges excluded: filter ramp-up).
    np.testing.assert_allclose(y[400:-400], ref[400:-400], atol=2e-3)


def test_clicks_survive_resampling_in_place(tmp_path):
    sr = 44100
    x = np.zeros(sr, dtype=np.float32)
    x[[11025, 22050, 33075]] = 0.9  # clicks at 0.25 / 0.5 / 0.75 s
    path = tmp_path / "clicks.flac"
    sf.write(str(path), x, sr)
    y = load_audio(path)
    peaks = sorted(np.argsort(np.abs(y))[-3:])
    assert all(abs(p - q) <= 2 for p, q in zip(peaks, [4000, 8000, 12000]))


@pytest.mark.parametrize("suffix", ["m4a", "mp4"])
def test_pyav_container_stereo_44k(tmp_path, suffix):
    sr = 44100
    x = np.stack([_tone(660.0, 1.0, sr, 0.4), _tone(660.0, 1.0, sr, 0.4)], axis=1)
    path = tmp_path / f"clip.{suffix}"
    _write_av(path, x, sr, "aac")
    y = load_audio(path)
    assert abs(len(y) - SR) < 0.1 * SR  # AAC priming/padding frames
    assert abs(_dominant_hz(y, SR) - 660.0) < 3.0
    assert 0.3 < np.abs(y).max() < 0.5


def test_missing_empty_and_corrupt_files_name_the_file(tmp_path):
    with pytest.raises(AudioError, match="nope.wav: audio file not found"):
        load_audio(tmp_path / "nope.wav")
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    with pytest.raises(AudioError, match="empty.wav: audio file is empty"):
        load_audio(empty)
    junk = tmp_path / "junk.mp3"
    junk.write_bytes(b"this is not audio at all" * 50)
    with pytest.raises(AudioError, match="junk.mp3: cannot decode audio"):
        load_audio(junk)
    silent = tmp_path / "zero_frames.wav"
    sf.write(str(silent), np.zeros(0, dtype=np.float32), SR)
    with pytest.raises(AudioError, match="zero_frames.wav: audio file contains no samples"):
        load_audio(silent)
    with pytest.raises(AudioError, match="not a file"):
        load_audio(tmp_path)


def test_as_waveform_inputs(tmp_path):
    x = _tone(440.0, 0.25, SR)
    np.testing.assert_array_equal(as_waveform(x), x)
    import torch

    np.testing.assert_array_equal(as_waveform(torch.from_numpy(x)), x)
    stereo = np.stack([x, x], axis=1)
    assert as_waveform((stereo, 8000)).shape == (2 * len(x),)
    with pytest.raises(AudioError, match=r"audios\[1\]: expected 1-D"):
        as_waveform(stereo, name="audios[1]")
    with pytest.raises(AudioError, match="no samples"):
        as_waveform(np.zeros(0, np.float32))
    assert resample(x, SR, SR) is x
