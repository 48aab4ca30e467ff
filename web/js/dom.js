// A few helpers to build the page from data without innerHTML, so no API text is ever parsed
// as markup.

/** h("button", {class: "primary", onclick: fn, disabled: true}, "Save") */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") el.addEventListener(name.slice(2), value);
    else if (name === "class") el.className = value;
    else if (name in el && typeof value !== "string") el[name] = value;
    else el.setAttribute(name, value === true ? "" : value);
  }
  el.append(...children.flat().filter((child) => child !== null && child !== undefined && child !== false));
  return el;
}

let ids = 0;

/** A labelled form field with a place for its error, tied together for screen readers. */
export function field(label, input, hint) {
  const id = input.id || `f${++ids}`;
  input.id = id;
  const error = h("p", { class: "field-error", id: `${id}-error`, hidden: true });
  const described = [hint ? `${id}-hint` : null, `${id}-error`].filter(Boolean).join(" ");
  input.setAttribute("aria-describedby", described);
  const wrap = h("div", { class: "field", "data-field": input.name || "" },
    h("label", { for: id }, label),
    hint ? h("p", { class: "hint", id: `${id}-hint` }, hint) : null,
    input, error);
  return wrap;
}

/** Show `{name: message}` at the fields of `form`; returns whether any matched. */
export function showFieldErrors(form, errors) {
  let shown = false;
  for (const wrap of form.querySelectorAll(".field")) {
    const input = wrap.querySelector("input, select, textarea");
    const error = wrap.querySelector(".field-error");
    const message = errors[input.name];
    error.hidden = !message;
    error.textContent = message || "";
    if (message) {
      input.setAttribute("aria-invalid", "true");
      if (!shown) input.focus();
      shown = true;
    } else {
      input.removeAttribute("aria-invalid");
    }
  }
  return shown;
}

export function clock(seconds) {
  const whole = Math.floor(seconds);
  return `${Math.floor(whole / 60)}:${String(whole % 60).padStart(2, "0")}`;
}
