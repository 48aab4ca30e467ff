// Recording from the microphone: MediaRecorder for the file, an AnalyserNode for the live
// input level. The browser's own encoder (Opus in WebM or Ogg, or AAC in MP4 on Safari) is
// fine: the API accepts all of them and normalizes the sample itself.

export const MIN_SECONDS = 30;
export const MAX_SECONDS = 180;

function pickMimeType() {
  for (const type of ["audio/webm;codecs=opus", "audio/ogg;codecs=opus", "audio/mp4"]) {
    if (window.MediaRecorder && MediaRecorder.isTypeSupported(type)) return type;
  }
  return "";
}

export function extensionFor(mimeType) {
  if (mimeType.startsWith("audio/ogg")) return "ogg";
  if (mimeType.startsWith("audio/mp4")) return "m4a";
  return "webm";
}

export class VoiceRecorder {
  /** onLevel(0..1) about 20 times a second; onTick(seconds); onMax() when 3 minutes are reached. */
  constructor({ onLevel, onTick, onMax }) {
    this.onLevel = onLevel;
    this.onTick = onTick;
    this.onMax = onMax;
  }

  async start() {
    this.stream = await navigator.mediaDevices.getUserMedia({
      audio: { echoCancellation: false, noiseSuppression: false, autoGainControl: true },
    });
    this.context = new AudioContext();
    const analyser = this.context.createAnalyser();
    analyser.fftSize = 1024;
    this.context.createMediaStreamSource(this.stream).connect(analyser);
    const samples = new Float32Array(analyser.fftSize);
    const mimeType = pickMimeType();
    this.recorder = new MediaRecorder(this.stream, mimeType ? { mimeType } : {});
    this.chunks = [];
    this.recorder.ondataavailable = (event) => event.data.size && this.chunks.push(event.data);
    this.recorder.start(1000);
    this.startedAt = performance.now();
    this.timer = setInterval(() => {
      analyser.getFloatTimeDomainData(samples);
      let sum = 0;
      for (const value of samples) sum += value * value;
      // RMS in dBFS mapped onto 0..1 over -60..0 dB: speech sits in the upper half
      const db = 10 * Math.log10(sum / samples.length + 1e-12);
      this.onLevel(Math.max(0, Math.min(1, (db + 60) / 60)));
      const seconds = this.elapsed();
      this.onTick(seconds);
      if (seconds >= MAX_SECONDS) this.onMax();
    }, 50);
  }

  elapsed() {
    return (performance.now() - this.startedAt) / 1000;
  }

  /** Resolves with `{blob, seconds}` once the recorder has flushed its last chunk. */
  stop() {
    const seconds = this.elapsed();
    clearInterval(this.timer);
    return new Promise((resolve) => {
      this.recorder.onstop = () => {
        this.stream.getTracks().forEach((track) => track.stop());
        this.context.close();
        resolve({ blob: new Blob(this.chunks, { type: this.recorder.mimeType }), seconds });
      };
      this.recorder.stop();
    });
  }
}
