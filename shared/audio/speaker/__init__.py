"""Speaker embeddings in numpy: who is speaking, as a 256-number vector.

The model is resemblyzer's pretrained speaker encoder (a GE2E d-vector network: 3-layer LSTM
over 40-band mel frames, see shared/data/speaker_encoder/SOURCE.md), run here with numpy only,
so workers carry no torch. Two recordings of the same voice give embeddings with a cosine near
1; different voices fall well below (figures in docs/VOICE_MATCH.md).

    mel.py      the encoder's input features, matching librosa's mel spectrogram
    encoder.py  the weights and the LSTM forward pass; utterance and window embeddings
"""
