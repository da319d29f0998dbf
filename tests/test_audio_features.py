"""log_mel equals transformers' WhisperFeatureExtractor (80 and 128 bins, short/long/batched clips)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import WhisperFeatureExtractor

from zoo.audio.features import log_mel, mel_filter_bank, num_frames


def _clips() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    out = []
    for n, f in ((16000, 440.0), (8123, 1500.0), (500_000, 220.0), (1, 0.0)):
        t = np.arange(n) / 16000
        out.append((0.3 * np.sin(2 * np.pi * f * t) + 0.01 * rng.standard_normal(n)).astype(np.float32))
    return out


@pytest.mark.parametrize("n_mels", [80, 128])
def test_log_mel_matches_whisper_feature_extractor(n_mels):
    clips = _clips()
    fe = WhisperFeatureExtractor(feature_size=n_mels)
    np.testing.assert_allclose(mel_filter_bank(n_mels).numpy(), fe.mel_filters, atol=1e-7)
    ref = fe(clips, sampling_rate=16000, return_tensors="np", return_attention_mask=True)
    ours, lengths = log_mel(clips, n_mels=n_mels, return_lengths=True)
    assert ours.shape == (len(clips), n_mels, 3000)
    diff = np.abs(ours.numpy() - ref["input_features"]).max()
    print(f"max |log_mel - WhisperFeatureExtractor| = {diff:.2e}")
    assert diff <= 1e-4
    np.testing.assert_array_equal(lengths.numpy(), ref["attention_mask"].sum(-1))


def test_batched_equals_single_and_accepts_tensors():
    clips = _clips()[:2]
    batch = log_mel(clips)
    for i, c in enumerate(clips):
        torch.testing.assert_close(log_mel(torch.from_numpy(c))[0], batch[i], atol=0, rtol=0)
    # A (batch, samples) array is padded as a whole: equal rows of equal length.
    two = np.stack([clips[0], clips[0]])
    torch.testing.assert_close(log_mel(two)[1], batch[0], atol=0, rtol=0)


def test_num_frames_and_errors():
    assert num_frames(torch.tensor([1, 160, 161, 480_000, 10**7])).tolist() == [1, 1, 2, 3000, 3000]
    with pytest.raises(ValueError, match="16000 Hz"):
        log_mel(np.zeros(10, np.float32), sampling_rate=8000)
    with pytest.raises(ValueError, match=r"clip 1 must be 1-D"):
        log_mel([np.zeros(10, np.float32), np.zeros((2, 10), np.float32)])
