"""Dev tool, run once by hand: convert resemblyzer's pretrained speaker encoder to .npz and
compute the reference embeddings that tests/audio/test_speaker_encoder.py checks against.

Never imported by the project: it needs torch and resemblyzer, which the project does not
install. Run it in a throwaway virtualenv:

    python -m venv "$TMPDIR/rz"
    "$TMPDIR/rz/bin/pip" install torch==2.13.0        # a CPU build
    "$TMPDIR/rz/bin/pip" install --no-deps resemblyzer==0.1.4
    "$TMPDIR/rz/bin/pip" install librosa==0.11.0 webrtcvad-wheels numpy scipy
    "$TMPDIR/rz/bin/python" tools/speaker_encoder/convert_resemblyzer.py

It writes, relative to the repository root:
  shared/data/speaker_encoder/resemblyzer_encoder.npz  the weights, float32, torch's names
  tests/audio/data/speaker_reference.npz               per fixture: the utterance embedding,
      the partial embeddings and the first 160 mel frames, from resemblyzer's own code
and prints the sha256 of the source checkpoint for SOURCE.md.
"""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import numpy as np
import resemblyzer
import torch
from resemblyzer import VoiceEncoder, audio

ROOT = Path(__file__).resolve().parents[2]
WEIGHTS_OUT = ROOT / "shared" / "data" / "speaker_encoder" / "resemblyzer_encoder.npz"
REFERENCE_OUT = ROOT / "tests" / "audio" / "data" / "speaker_reference.npz"
FIXTURES = {"sample_en_49s": ROOT / "fixtures" / "voice" / "sample_en_49s.mp3",
            "librivox_austen_25s": ROOT / "fixtures" / "voice" / "librivox_austen_25s.mp3"}


def decode_16k(path: Path) -> np.ndarray:
    """The same ffmpeg decode as shared.audio.codec.decode_to_mono(data, 16000), so the test
    feeds the numpy encoder exactly the samples the reference was computed on."""
    raw = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-map", "0:a:0", "-vn", "-sn",
                          "-dn", "-ac", "1", "-ar", "16000", "-f", "f32le", "-acodec", "pcm_f32le", "pipe:1"],
                         capture_output=True, check=True).stdout
    samples = np.frombuffer(raw[: len(raw) // 4 * 4], dtype="<f4").astype(np.float32)
    return np.clip(np.nan_to_num(samples, nan=0.0, posinf=1.0, neginf=-1.0), -1.0, 1.0)


def main() -> None:
    checkpoint_path = Path(resemblyzer.__file__).resolve().parent / "pretrained.pt"
    digest = hashlib.sha256(checkpoint_path.read_bytes()).hexdigest()
    state = torch.load(checkpoint_path, map_location="cpu")["model_state"]
    wanted = [k for k in state if k.startswith(("lstm.", "linear."))]
    arrays = {k.replace(".", "_"): state[k].detach().cpu().numpy().astype(np.float32) for k in wanted}
    WEIGHTS_OUT.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(WEIGHTS_OUT, **arrays)
    print(f"checkpoint {checkpoint_path.name} sha256 {digest}")
    print(f"wrote {WEIGHTS_OUT.relative_to(ROOT)}: " + ", ".join(f"{k}{v.shape}" for k, v in arrays.items()))

    encoder = VoiceEncoder(device="cpu", verbose=False)
    reference: dict[str, np.ndarray] = {}
    for name, path in FIXTURES.items():
        wav = decode_16k(path)
        embed, partials, _ = encoder.embed_utterance(wav, return_partials=True)
        reference[f"{name}__embedding"] = embed.astype(np.float32)
        reference[f"{name}__partials"] = partials.astype(np.float32)
        reference[f"{name}__mel_head"] = audio.wav_to_mel_spectrogram(wav)[:160].astype(np.float32)
        reference[f"{name}__n_samples"] = np.array(len(wav))
        print(f"{name}: {len(wav) / 16000:.2f} s, {len(partials)} partials")
    a, b = (reference[f"{n}__embedding"] for n in FIXTURES)
    print(f"cosine between the two fixtures' speakers: {float(a @ b):.4f}")
    REFERENCE_OUT.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(REFERENCE_OUT, **reference)
    print(f"wrote {REFERENCE_OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
