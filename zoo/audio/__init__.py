"""Audio for the zoo: file loading, Whisper log-mel features, the Whisper/Qwen2-Audio encoder, the audio-language
model on the shared backbone, the DCASE 2025 Task 5 AQA harness and a synthetic AQA set (see docs/audio.md)."""

from zoo.audio.features import log_mel, mel_filter_bank
from zoo.audio.io import AudioError, as_waveform, load_audio
from zoo.audio.whisper import AudioProjector, WhisperEncoder, WhisperEncoderConfig, audio_token_counts

__all__ = [
    "AudioError",
    "AudioProjector",
    "WhisperEncoder",
    "WhisperEncoderConfig",
    "as_waveform",
    "audio_token_counts",
    "load_audio",
    "log_mel",
    "mel_filter_bank",
]
