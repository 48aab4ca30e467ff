// Interface text in English and Spanish. The language follows the user's `language` setting
// once logged in, and the browser's language before that.

const STRINGS = {
  en: {
    "skip": "Skip to content",
    "nav.perform": "Perform", "nav.voice": "Your voice", "nav.library": "All recordings",
    "nav.settings": "Settings", "nav.logout": "Log out",
    "login.title": "Log in", "login.username": "Username or email", "login.password": "Password",
    "login.submit": "Log in", "login.toSignup": "New here? Sign up with an activation code",
    "login.expired": "Your session ended. Log in again.",
    "signup.title": "Sign up", "signup.username": "Username", "signup.email": "Email",
    "signup.password": "Password (8 characters or more)", "signup.code": "Activation code",
    "signup.submit": "Create account", "signup.toLogin": "Already have an account? Log in",
    "quota.label": "Characters this month", "quota.text": "{used} of {limit} used · resets {date}",
    "voice.title": "Your voice", "voice.state": "State",
    "voice.state.none": "No voice yet", "voice.state.pending": "Your voice is being made",
    "voice.state.ready": "Ready", "voice.state.failed": "The last sample was not accepted",
    "voice.state.evicted": "Resting (it is brought back with your next note)",
    "voice.sample": "The sample in use", "voice.update": "Update voice sample", "voice.record": "Record your voice",
    "voice.none": "Record your voice once; every note is then spoken in it.",
    "record.title": "Record your voice",
    "record.intro": "Read the text below aloud in a quiet room, at your usual pace. At least 30 seconds, at most 3 minutes.",
    "record.guide": "Good morning. Today I am recording my voice so that my notes sound like me. I speak calmly and clearly, as I would to a friend. Every morning I take a moment to think about what matters to me: my health, the people I love and the small steps that bring me closer to my goals. Yesterday I walked in the park and listened to the birds. Tomorrow I will try something new, even if it feels difficult at first. I remind myself that progress is made one day at a time, and that rest is part of the work. When I feel tired, I breathe slowly and count to five. When I feel proud, I say it out loud. This is my voice, and I am glad to hear it.",
    "record.start": "Start recording", "record.stop": "Stop", "record.again": "Record again",
    "record.listen": "Listen back", "record.upload": "Use this recording", "record.level": "Input level",
    "record.elapsed": "Elapsed", "record.minmax": "{elapsed} · minimum 0:30 · maximum 3:00",
    "record.tooShort": "Keep reading: at least 30 seconds are needed.",
    "record.file": "Or choose a file", "record.fileHint": "mp3, wav, m4a, ogg, webm or flac; 30 s to 3 min",
    "record.uploading": "Uploading", "record.micDenied": "The microphone could not be used: {reason}. Choose a file instead.",
    "record.maxReached": "3 minutes reached: the recording stopped.",
    "clone.title": "Making your voice", "clone.done": "Your voice is ready.",
    "clone.rejected": "This sample was not accepted.",
    "quality.title": "How your sample sounded",
    "quality.speech": "{s} seconds of speech (of {total} s recorded)",
    "quality.loudness": "Loudness: {lufs} LUFS as recorded ({verdict})",
    "quality.loud.ok": "good", "quality.loud.quiet": "quiet; we raised it", "quality.loud.loud": "loud; we lowered it",
    "quality.noise": "Background noise: {verdict} (your voice is {db} dB above it)",
    "quality.noise.low": "low", "quality.noise.some": "some", "quality.noise.high": "high",
    "quality.clipping": "Clipping: {verdict} ({pct}% of the speech)",
    "quality.clip.none": "none", "quality.clip.some": "a little", "quality.clip.much": "noticeable",
    "match.title": "How much your voice sounds like you", "match.meter": "Voice match",
    "match.line": "Sounds like you: {score} / 100, {band}",
    "match.close": "close: it sounds like you", "match.fair": "fair: like you, but not quite",
    "match.far": "far: it does not sound much like you", "match.none": "Not measured for this voice.",
    "perform.title": "Perform", "perform.locked": "Perform opens once your voice is ready.",
    "perform.toVoice": "Go to Your voice", "perform.routine": "Routine", "perform.topic": "Topic",
    "perform.topicHint": "What the note is about", "perform.counter": "{n} / 200",
    "perform.left": "{n} characters left this month", "perform.submit": "Make my note",
    "perform.done": "Your note is ready.", "perform.download": "Download",
    "stages.title": "Progress",
    "stage.queued": "Waiting for a worker", "stage.decoding": "Reading the file", "stage.normalizing": "Cleaning up the sound",
    "stage.checking": "Checking the quality", "stage.uploading": "Creating the voice", "stage.saving": "Saving",
    "stage.reserving": "Holding your characters", "stage.composing": "Writing the note",
    "stage.acquiring_voice": "Getting your voice ready", "stage.synthesizing": "Speaking in your voice",
    "stage.mixing": "Adding the background", "stage.storing": "Saving the note", "stage.done": "Done", "stage.failed": "Failed",
    "library.title": "All recordings", "library.empty": "No notes yet.", "library.more": "Show more",
    "library.delete": "Delete", "library.download": "Download", "library.inProgress": "Your note is being made",
    "library.confirm": "Delete “{title}”? This cannot be undone.", "library.cancel": "Cancel",
    "library.deleted": "Deleted.", "library.duration": "{s} s",
    "settings.title": "Settings", "settings.language": "Language", "settings.english": "English",
    "settings.spanish": "Spanish", "settings.stability": "Voice stability", "settings.similarity": "Voice similarity",
    "settings.background": "Background sound", "settings.volume": "Background volume",
    "settings.noteName": "Note name", "settings.save": "Save", "settings.saved": "Saved.",
    "error.retry": "Try again", "error.network": "The connection was lost.",
    "error.networkAction": "Check your connection and try again.", "error.reconnecting": "Connection lost; reconnecting…",
    "error.dismiss": "Dismiss",
  },
  es: {
    "skip": "Saltar al contenido",
    "nav.perform": "Crear nota", "nav.voice": "Tu voz", "nav.library": "Todas las grabaciones",
    "nav.settings": "Ajustes", "nav.logout": "Cerrar sesión",
    "login.title": "Iniciar sesión", "login.username": "Usuario o correo", "login.password": "Contraseña",
    "login.submit": "Entrar", "login.toSignup": "¿Eres nuevo? Regístrate con un código de activación",
    "login.expired": "Tu sesión terminó. Vuelve a iniciar sesión.",
    "signup.title": "Registrarse", "signup.username": "Usuario", "signup.email": "Correo",
    "signup.password": "Contraseña (8 caracteres o más)", "signup.code": "Código de activación",
    "signup.submit": "Crear cuenta", "signup.toLogin": "¿Ya tienes cuenta? Inicia sesión",
    "quota.label": "Caracteres este mes", "quota.text": "{used} de {limit} usados · se renueva el {date}",
    "voice.title": "Tu voz", "voice.state": "Estado",
    "voice.state.none": "Aún no hay voz", "voice.state.pending": "Estamos creando tu voz",
    "voice.state.ready": "Lista", "voice.state.failed": "La última muestra no fue aceptada",
    "voice.state.evicted": "En reposo (vuelve con tu próxima nota)",
    "voice.sample": "La muestra en uso", "voice.update": "Actualizar muestra de voz", "voice.record": "Graba tu voz",
    "voice.none": "Graba tu voz una vez; cada nota se dirá con ella.",
    "record.title": "Graba tu voz",
    "record.intro": "Lee en voz alta el texto de abajo en un lugar tranquilo, a tu ritmo. Al menos 30 segundos, como mucho 3 minutos.",
    "record.guide": "Buenos días. Hoy grabo mi voz para que mis notas suenen como yo. Hablo con calma y claridad, como le hablaría a un amigo. Cada mañana me tomo un momento para pensar en lo que me importa: mi salud, las personas que quiero y los pequeños pasos que me acercan a mis metas. Ayer caminé por el parque y escuché a los pájaros. Mañana probaré algo nuevo, aunque al principio me cueste. Me recuerdo que el progreso se hace día a día y que descansar también es parte del trabajo. Cuando me siento cansado, respiro despacio y cuento hasta cinco. Cuando me siento orgulloso, lo digo en voz alta. Esta es mi voz y me alegra escucharla.",
    "record.start": "Empezar a grabar", "record.stop": "Detener", "record.again": "Grabar de nuevo",
    "record.listen": "Escuchar", "record.upload": "Usar esta grabación", "record.level": "Nivel de entrada",
    "record.elapsed": "Tiempo", "record.minmax": "{elapsed} · mínimo 0:30 · máximo 3:00",
    "record.tooShort": "Sigue leyendo: hacen falta al menos 30 segundos.",
    "record.file": "O elige un archivo", "record.fileHint": "mp3, wav, m4a, ogg, webm o flac; de 30 s a 3 min",
    "record.uploading": "Subiendo", "record.micDenied": "No se pudo usar el micrófono: {reason}. Elige un archivo.",
    "record.maxReached": "Se alcanzaron los 3 minutos: la grabación se detuvo.",
    "clone.title": "Creando tu voz", "clone.done": "Tu voz está lista.",
    "clone.rejected": "Esta muestra no fue aceptada.",
    "quality.title": "Cómo sonó tu muestra",
    "quality.speech": "{s} segundos de voz (de {total} s grabados)",
    "quality.loudness": "Volumen: {lufs} LUFS al grabar ({verdict})",
    "quality.loud.ok": "bien", "quality.loud.quiet": "bajo; lo subimos", "quality.loud.loud": "alto; lo bajamos",
    "quality.noise": "Ruido de fondo: {verdict} (tu voz está {db} dB por encima)",
    "quality.noise.low": "bajo", "quality.noise.some": "algo", "quality.noise.high": "alto",
    "quality.clipping": "Saturación: {verdict} ({pct}% de la voz)",
    "quality.clip.none": "ninguna", "quality.clip.some": "un poco", "quality.clip.much": "notable",
    "match.title": "Cuánto se parece tu voz a ti", "match.meter": "Parecido de la voz",
    "match.line": "Se parece a ti: {score} / 100, {band}",
    "match.close": "cercana: suena como tú", "match.fair": "media: se parece, pero no del todo",
    "match.far": "lejana: no suena mucho a ti", "match.none": "No se midió para esta voz.",
    "perform.title": "Crear nota", "perform.locked": "Podrás crear notas cuando tu voz esté lista.",
    "perform.toVoice": "Ir a Tu voz", "perform.routine": "Rutina", "perform.topic": "Tema",
    "perform.topicHint": "De qué trata la nota", "perform.counter": "{n} / 200",
    "perform.left": "Te quedan {n} caracteres este mes", "perform.submit": "Crear mi nota",
    "perform.done": "Tu nota está lista.", "perform.download": "Descargar",
    "stages.title": "Progreso",
    "stage.queued": "Esperando turno", "stage.decoding": "Leyendo el archivo", "stage.normalizing": "Limpiando el sonido",
    "stage.checking": "Comprobando la calidad", "stage.uploading": "Creando la voz", "stage.saving": "Guardando",
    "stage.reserving": "Reservando tus caracteres", "stage.composing": "Escribiendo la nota",
    "stage.acquiring_voice": "Preparando tu voz", "stage.synthesizing": "Hablando con tu voz",
    "stage.mixing": "Añadiendo el fondo", "stage.storing": "Guardando la nota", "stage.done": "Hecho", "stage.failed": "Falló",
    "library.title": "Todas las grabaciones", "library.empty": "Aún no hay notas.", "library.more": "Ver más",
    "library.delete": "Borrar", "library.download": "Descargar", "library.inProgress": "Estamos creando tu nota",
    "library.confirm": "¿Borrar «{title}»? No se puede deshacer.", "library.cancel": "Cancelar",
    "library.deleted": "Borrada.", "library.duration": "{s} s",
    "settings.title": "Ajustes", "settings.language": "Idioma", "settings.english": "Inglés",
    "settings.spanish": "Español", "settings.stability": "Estabilidad de la voz", "settings.similarity": "Parecido de la voz",
    "settings.background": "Sonido de fondo", "settings.volume": "Volumen del fondo",
    "settings.noteName": "Nombre de la nota", "settings.save": "Guardar", "settings.saved": "Guardado.",
    "error.retry": "Reintentar", "error.network": "Se perdió la conexión.",
    "error.networkAction": "Revisa tu conexión y vuelve a intentarlo.", "error.reconnecting": "Conexión perdida; reconectando…",
    "error.dismiss": "Cerrar",
  },
};

let current = (navigator.language || "en").toLowerCase().startsWith("es") ? "es" : "en";

/** `english`/`spanish` (the API's setting) or `en`/`es`. */
export function setLanguage(language) {
  current = language === "spanish" || language === "es" ? "es" : "en";
  document.documentElement.lang = current;
}

export function lang() {
  return current;
}

/** The API's name for the interface language (routines are asked for in it). */
export function apiLanguage() {
  return current === "es" ? "spanish" : "english";
}

export function t(key, vars = {}) {
  const text = STRINGS[current][key] ?? STRINGS.en[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => String(vars[name] ?? ""));
}

export function formatDate(value) {
  return new Date(value).toLocaleDateString(current === "es" ? "es-ES" : "en-GB",
    { year: "numeric", month: "short", day: "numeric", timeZone: "UTC" });
}
